#!/usr/bin/env bash
# Instructions per CWMP session, counted by callgrind (valgrind): the same figure on an idle or a
# busy machine, unlike sessions/s or CPU seconds. Prints cpe-sim's and the bare tokio+hyper
# client's (examples/bare_client.rs: the floor of cpe-sim's own stack, see bench-ceiling.sh) for
# the same exchange (Inform → InformResponse, empty POST → 204), pooled (kept-alive connections)
# and per-session (a new connection per session), and their ratio.
#
# Each client runs twice under callgrind, for the same time at a low and a high fixed offered load
# (LOW and 4×LOW sessions/s), against a fresh `cpe-sim acs` (not under valgrind; on its own core
# where there are 2). The figure is the difference in instructions over the difference in
# sessions: the marginal cost of a session, with start-up, shut-down and the work a run does per
# second whatever its load (progress ticks, reports) cancelled out. Sessions are counted by the
# ACS. cpe-sim runs LOW CPEs (one shard) informing every second, then every 250 ms
# (--interval-multiplier 0.25); bare_client the same rates on CONNECTIONS connections, spread
# over the period. Instructions are user space only (callgrind does not see the kernel).
# With ANNOTATE=DIR, the runs' callgrind files are kept in DIR (callgrind.TOOL.MODE.LOAD) and
# DIR/TOOL.MODE.txt lists the functions by their own instructions per session, high load minus
# low over the extra sessions (inlined code counted in the function it was inlined into).
# Usage: scripts/bench-instructions.sh [seconds=8] [low=25] [connections=32]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
low=${2:-25}
conns=${3:-32}
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)"; exit 1; }
cargo build --release -q
cargo build --release -q --example bare_client
bin=target/release/cpe-sim
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
$bin check --profile profiles/example-tr181-gateway | sed -n '/^<?xml/,$p' > "$tmp/inform.xml"
client=() server=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  client=(taskset -c 0) server=(taskset -c 1)
fi

# One run under callgrind; prints "instructions sessions".
run() { # mode(keepalive|close) tool(bare|cpe-sim) load(1: low, 4: high)
  local acs_flags=(--bind 127.0.0.1:0 --no-provisioning --log-level info)
  [ "$1" = keepalive ] && acs_flags+=(--keep-alive)
  "${server[@]}" $bin acs "${acs_flags[@]}" 2> "$tmp/acs.log" &
  local acs=$! url=""
  for _ in $(seq 50); do
    url=$(grep -o 'http://127.0.0.1:[0-9]*/' "$tmp/acs.log" | head -1 || true)
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { echo "the ACS did not start:" >&2; cat "$tmp/acs.log" >&2; exit 1; }
  local out="$tmp/cg.$2.$1.$3"
  local vg=("${client[@]}" valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no)
  case $2 in
    bare) "${vg[@]}" target/release/examples/bare_client "$url" "$tmp/inform.xml" "$1" "$conns" "$secs" $((low * $3)) > "$tmp/tool.out" 2>&1 || true ;;
    cpe-sim)
      local mode=pooled
      [ "$1" = close ] && mode=per-session
      "${vg[@]}" $bin --acs-url "$url" --cpes "$low" --shards 1 --max-connections "$conns" \
        --connection-mode $mode --inform-interval 1s --interval-multiplier "$(echo "scale=2; 1 / $3" | bc)" --boot-spread 1s --duration "${secs}s" \
        --progress-interval 60s --log-level warn > "$tmp/tool.out" 2>&1 || true ;;
  esac
  kill -INT $acs; wait $acs 2>/dev/null || true
  local n ir
  n=$(grep -o 'sessions_completed=[0-9]*' "$tmp/acs.log" | tail -1 | cut -d= -f2)
  ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out" | head -1)
  [ -n "$ir" ] || { echo "callgrind wrote no summary for $2 $1:" >&2; cat "$tmp/tool.out" >&2; exit 1; }
  if [ -n "${ANNOTATE:-}" ]; then
    mkdir -p "$ANNOTATE"
    cp "$out" "$ANNOTATE/callgrind.$2.$1.$3"
  fi
  echo "$ir ${n:-0}"
}

# Own instructions per extra session by function: FILE.4 minus FILE.1 over the extra sessions.
marginal() { # callgrind-file-prefix extra-sessions
  python3 - "$1.1" "$1.4" "$2" <<'PY'
import collections, re, subprocess, sys
def costs(path):
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--auto=no", "--threshold=100", path], capture_output=True, text=True).stdout
    c = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*)", line)
        if m and "PROGRAM TOTALS" not in line:
            name = re.sub(r" \[[^]]*\]$", "", m.group(2)).split(":", 1)[-1]
            c[name] += int(m.group(1).replace(",", ""))
    return c
lo, hi, n = costs(sys.argv[1]), costs(sys.argv[2]), int(sys.argv[3])
d = {k: (hi[k] - lo.get(k, 0)) / n for k in hi}
print(f"instructions per extra session, by function ({n} extra sessions)")
for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:60]:
    print(f"{v:9.0f}  {k}")
PY
}

echo "machine: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1); ${secs}s runs under callgrind at $low and $((4 * low)) sessions/s, $conns connections"
for mode in keepalive close; do
  line=""
  declare -A per=()
  for tool in bare cpe-sim; do
    # A run that made no session (seen now and then: a client that could not reach its ACS) is
    # run once more.
    read -r i1 s1 < <(run $mode $tool 1)
    [ "$s1" -gt 0 ] || { echo "($tool $mode low: no sessions; again)" >&2; cat "$tmp/tool.out" "$tmp/acs.log" | tail -5 >&2; read -r i1 s1 < <(run $mode $tool 1); }
    read -r i2 s2 < <(run $mode $tool 4)
    [ "$s2" -gt 0 ] || { echo "($tool $mode high: no sessions; again)" >&2; cat "$tmp/tool.out" "$tmp/acs.log" | tail -5 >&2; read -r i2 s2 < <(run $mode $tool 4); }
    if [ "$s1" -eq 0 ] || [ "$s2" -le "$s1" ]; then
      echo "$tool $mode: the higher load made no more sessions ($s1 then $s2)" >&2
      exit 1
    fi
    # Under valgrind a client runs ~50× slower: one that falls behind the high load is measured
    # at saturation instead (other costs per session). Say so.
    [ "$s2" -ge $((3 * s1)) ] || echo "warning: $tool $mode made $s1 then $s2 sessions (not ~4×): it fell behind; use a lower load" >&2
    per[$tool]=$(((i2 - i1) / (s2 - s1)))
    [ -n "${ANNOTATE:-}" ] && marginal "$ANNOTATE/callgrind.$tool.$mode" $((s2 - s1)) > "$ANNOTATE/$tool.$mode.txt"
    line+=" $tool ${per[$tool]} (sessions $s1, $s2)"
  done
  label=$([ $mode = keepalive ] && echo "pooled     " || echo "per-session")
  echo "$label instructions/session: cpe-sim ${per[cpe-sim]} | bare tokio+hyper ${per[bare]} | ratio $(echo "scale=2; ${per[cpe-sim]} / ${per[bare]}" | bc)   [$line ]"
  unset per
done
echo "commands: valgrind --tool=callgrind; bare_client URL INFORM close|keepalive $conns $secs RATE; cpe-sim --cpes $low --shards 1 --max-connections $conns --connection-mode pooled|per-session --inform-interval 1s --interval-multiplier 1|0.25 --boot-spread 1s --duration ${secs}s"
