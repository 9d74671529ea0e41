#!/usr/bin/env bash
# The simulator's ceiling against one fast ACS on loopback (`cpe-sim acs`, no provisioning):
# wrk, then cpe-sim with the same number of connections and one shard, each for the same time.
# Sessions are counted by the ACS itself, so every tool is measured the same way.
#
# Two modes: pooled (keep-alive connections) and per-session (a new connection per session;
# wrk ends each session with `Connection: close`). Two baselines:
#   - wrk (scripts/wrk-session.lua, one thread): Inform and empty POST written together. The
#     issue's baseline, and faster than CWMP allows: a CPE must read the InformResponse before
#     its next POST. (wrk cannot do that: its request() is not told which connection asks.)
#   - bare (examples/bare_client.rs): the floor of cpe-sim's own stack, tokio + hyper POSTing
#     the same Inform and empty POST one after the other, with no CPE behind them. What cpe-sim
#     loses to it is our overhead; what it loses to wrk is the stack's and CWMP's.
# cpe-sim runs 2,000 CPEs informing every 20 ms: more than the connections can carry (the rest
# is counted late), while the ACS keeps as little per-device state as it can.
#
# On a machine with 2+ cores, the client runs on core 0 and the ACS on core 1 (taskset). Each
# run gets a fresh ACS on a fresh port, the order of the tools rotates between rounds, and the
# figures are medians over the rounds. Each run also prints how busy the ACS's core was (near
# 100%: the ACS was the limit, not the client) and, where `perf` can count them, the client's
# CPU cycles per session in user space and in the kernel: on a shared, noisy machine they tell
# more than sessions/s do.
# Floor (issue 9): cpe-sim ≥ 0.9× wrk pooled and ≥ 0.85× wrk with a connection per session.
# Usage: scripts/bench-ceiling.sh [seconds=5] [connections=32] [rounds=3]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
conns=${2:-32}
rounds=${3:-3}
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null 2>&1 || true; }
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)"; exit 1; }
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
if perf stat -x, -e cycles:u true >/dev/null 2>&1; then
  client+=(perf stat -x, -e cycles:u,cycles:k -o "$tmp/stat")
fi
ticks=$(getconf CLK_TCK)

# Runs a fresh ACS for one measurement; prints "sessions/s ACS-busy-%" and appends the client's
# cycles per session to $tmp/cycles.<mode>.
measure() { # mode(keepalive|close) tool(wrk|bare|cpe-sim)
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
  local close=0 acs_cpu0 acs_cpu1
  [ "$1" = close ] && close=1
  acs_cpu0=$(awk '{print $14 + $15}' /proc/$acs/stat)
  case $2 in
    wrk) INFORM="$tmp/inform.xml" CLOSE=$close \
           "${client[@]}" wrk -t1 -c"$conns" -d"${secs}s" -s scripts/wrk-session.lua "$url" > "$tmp/tool.out" 2>&1 || true ;;
    bare) "${client[@]}" target/release/examples/bare_client "$url" "$tmp/inform.xml" "$1" "$conns" "$secs" > "$tmp/tool.out" 2>&1 || true ;;
    cpe-sim)
      local mode=pooled
      [ "$1" = close ] && mode=per-session
      "${client[@]}" $bin --acs-url "$url" --cpes 2000 --shards 1 --max-connections "$conns" \
        --connection-mode $mode --inform-interval 1s --interval-multiplier 0.02 --boot-spread 20ms --duration "${secs}s" \
        --progress-interval 60s --log-level warn > "$tmp/tool.out" 2>&1 || true ;;
  esac
  acs_cpu1=$(awk '{print $14 + $15}' /proc/$acs/stat)
  kill -INT $acs; wait $acs 2>/dev/null || true
  local n
  n=$(grep -o 'sessions_completed=[0-9]*' "$tmp/acs.log" | tail -1 | cut -d= -f2)
  n=${n:-0}
  if [ -s "$tmp/stat" ] && [ "$n" -gt 0 ]; then
    local cu ck
    cu=$(grep 'cycles:u' "$tmp/stat" | cut -d, -f1)
    ck=$(grep 'cycles:k' "$tmp/stat" | cut -d, -f1)
    # A VM without a PMU says "<not supported>": no cycle figures then.
    if [[ $cu =~ ^[0-9]+$ && $ck =~ ^[0-9]+$ ]]; then
      echo "$2 $((cu / n / 1000)) $((ck / n / 1000))" >> "$tmp/cycles.$1"
    fi
    rm -f "$tmp/stat"
  fi
  echo "$((n / secs)) $(((acs_cpu1 - acs_cpu0) * 100 / ticks / secs))"
}

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "machine: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1); ${secs}s per run, $conns connections, $rounds rounds${client:+, client on core 0 and ACS on core 1}"
tools=(wrk bare cpe-sim)
for mode in keepalive close; do
  declare -A runs=([wrk]="" [bare]="" [cpe-sim]="")
  for r in $(seq 0 $((rounds - 1))); do
    line="  round $((r + 1)):"
    for i in 0 1 2; do
      t=${tools[$(((i + r) % 3))]}
      read -r rate busy < <(measure $mode "$t")
      runs[$t]+=" $rate"
      line+=" $t $rate/s (ACS ${busy}% busy)"
    done
    echo "$line"
  done
  w=$(echo "${runs[wrk]}" | median)
  b=$(echo "${runs[bare]}" | median)
  c=$(echo "${runs[cpe-sim]}" | median)
  label=$([ $mode = keepalive ] && echo "pooled     " || echo "per-session")
  echo "$label cpe-sim $c sessions/s | wrk $w (ratio $(echo "scale=2; $c / $w" | bc)) | bare tokio+hyper $b (ratio $(echo "scale=2; $c / $b" | bc))"
  if [ -s "$tmp/cycles.$mode" ]; then
    line="            client CPU cycles per session (user + kernel, median):"
    for t in wrk bare cpe-sim; do
      u=$(awk -v t=$t '$1 == t {print $2}' "$tmp/cycles.$mode" | median)
      k=$(awk -v t=$t '$1 == t {print $3}' "$tmp/cycles.$mode" | median)
      line+=" $t ${u}k + ${k}k"
    done
    echo "$line"
  fi
  unset runs
done
echo "commands: wrk -t1 -c$conns -s scripts/wrk-session.lua; bare_client URL INFORM close|keepalive $conns $secs; cpe-sim --cpes 2000 --shards 1 --max-connections $conns --connection-mode pooled|per-session --inform-interval 1s --interval-multiplier 0.02"
