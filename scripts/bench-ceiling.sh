#!/usr/bin/env bash
# The simulator's ceiling against one fast ACS on loopback (`cpe-sim acs`, no provisioning):
# wrk, then cpe-sim with the same number of connections and one shard, each for the same time.
# Sessions are counted by the ACS itself, so every tool is measured the same way.
#
# Two modes: pooled (keep-alive connections) and per-session (a new connection per session;
# wrk ends each session with `Connection: close`). Two wrk baselines:
#   - pipelined  (scripts/wrk-session.lua): Inform and empty POST written together, one wrk
#     thread. The issue's baseline, and faster than CWMP allows: a CPE must read the
#     InformResponse before its next POST.
#   - sequential (scripts/wrk-sequential.lua): each POST waits for the previous answer, as in
#     CWMP; one connection per wrk thread, all threads on the client's core.
# On a machine with 2+ cores, the client runs on core 0 and the ACS on core 1 (taskset), so the
# tools do not fight the ACS for a core; each run has a fresh ACS on a fresh port, and the order
# of the tools rotates between rounds. The figures are medians over the rounds.
# Floor (issue 4): cpe-sim ≥ 0.8× wrk, pooled and per-session.
# Usage: scripts/bench-ceiling.sh [seconds=5] [connections=32] [rounds=3]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
conns=${2:-32}
rounds=${3:-3}
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null 2>&1 || true; }
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)"; exit 1; }
cargo build --release -q
bin=target/release/cpe-sim
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
$bin check --profile profiles/example-tr181-gateway | sed -n '/^<?xml/,$p' > "$tmp/inform.xml"
client=() server=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  client=(taskset -c 0) server=(taskset -c 1)
fi

# Runs a fresh ACS for one measurement and prints the sessions it completed per second.
measure() { # mode(keepalive|close) tool(wrk|wrkseq|cpe-sim)
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
  local close=0
  [ "$1" = close ] && close=1
  case $2 in
    wrk) INFORM="$tmp/inform.xml" CLOSE=$close \
           "${client[@]}" wrk -t1 -c"$conns" -d"${secs}s" -s scripts/wrk-session.lua "$url" > "$tmp/tool.out" 2>&1 ;;
    wrkseq) INFORM="$tmp/inform.xml" CLOSE=$close \
           "${client[@]}" wrk -t"$conns" -c"$conns" -d"${secs}s" -s scripts/wrk-sequential.lua "$url" > "$tmp/tool.out" 2>&1 ;;
    cpe-sim)
      local mode=pooled
      [ "$1" = close ] && mode=per-session
      # Enough CPEs informing every second to keep every connection busy.
      "${client[@]}" $bin --acs-url "$url" --cpes 100000 --shards 1 --max-connections "$conns" \
        --connection-mode $mode --inform-interval 1s --boot-spread 1s --duration "${secs}s" \
        --progress-interval 60s --log-level warn > "$tmp/tool.out" 2>&1 ;;
  esac
  kill -INT $acs; wait $acs 2>/dev/null || true
  local n
  n=$(grep -o 'sessions_completed=[0-9]*' "$tmp/acs.log" | tail -1 | cut -d= -f2)
  echo "$n / $secs" | bc
}

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "machine: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1); ${secs}s per run, $conns connections, $rounds rounds${client:+, client on core 0 and ACS on core 1}"
tools=(wrk wrkseq cpe-sim)
for mode in keepalive close; do
  declare -A runs=([wrk]="" [wrkseq]="" [cpe-sim]="")
  for r in $(seq 0 $((rounds - 1))); do
    line="  round $((r + 1)):"
    for i in 0 1 2; do
      t=${tools[$(((i + r) % 3))]}
      v=$(measure $mode "$t")
      runs[$t]+=" $v"
      line+=" $t $v/s"
    done
    echo "$line"
  done
  w=$(echo "${runs[wrk]}" | median)
  s=$(echo "${runs[wrkseq]}" | median)
  c=$(echo "${runs[cpe-sim]}" | median)
  label=$([ $mode = keepalive ] && echo "pooled     " || echo "per-session")
  echo "$label cpe-sim $c sessions/s | wrk pipelined $w (ratio $(echo "scale=2; $c / $w" | bc)) | wrk sequential $s (ratio $(echo "scale=2; $c / $s" | bc))"
  unset runs
done
echo "commands: wrk -t1 -c$conns -s scripts/wrk-session.lua; wrk -t$conns -c$conns -s scripts/wrk-sequential.lua; cpe-sim --cpes 100000 --shards 1 --max-connections $conns --connection-mode pooled|per-session --inform-interval 1s"
