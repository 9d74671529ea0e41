#!/usr/bin/env bash
# The simulator's ceiling against one fast ACS on loopback (`cpe-sim acs`): wrk doing Inform +
# empty POST per session (scripts/wrk-session.lua), then cpe-sim with the same number of
# connections and one shard, each for the same time. Sessions are counted by the ACS itself, so
# both tools are measured the same way. Prints sessions/s and the ratio, in pooled (keep-alive)
# and per-session (a new connection per session) modes. Floor: cpe-sim ≥ 0.8× wrk in both.
# Usage: scripts/bench-ceiling.sh [seconds=10] [connections=32]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-32}
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null 2>&1 || true; }
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)"; exit 1; }
cargo build --release -q
bin=target/release/cpe-sim
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
$bin check --profile profiles/example-tr181-gateway | sed -n '/^<?xml/,$p' > "$tmp/inform.xml"
port=$((20000 + RANDOM % 20000))

# Runs the ACS for one measurement and prints the sessions it completed per second.
measure() { # mode(keepalive|close) tool(wrk|cpe-sim)
  local acs_flags=(--bind 127.0.0.1:$port --no-provisioning --log-level info)
  [ "$1" = keepalive ] && acs_flags+=(--keep-alive)
  $bin acs "${acs_flags[@]}" 2> "$tmp/acs.log" &
  local acs=$!
  sleep 0.5
  if [ "$2" = wrk ]; then
    INFORM="$tmp/inform.xml" CLOSE=$([ "$1" = close ] && echo 1 || echo 0) \
      wrk -t1 -c"$conns" -d"${secs}s" -s scripts/wrk-session.lua "http://127.0.0.1:$port/" > "$tmp/wrk.out" 2>&1
  else
    local mode=pooled
    [ "$1" = close ] && mode=per-session
    # Enough CPEs informing every second to keep every connection busy.
    $bin --acs-url "http://127.0.0.1:$port/" --cpes 100000 --shards 1 --max-connections "$conns" \
      --connection-mode $mode --inform-interval 1s --boot-spread 1s --duration "${secs}s" \
      --progress-interval 60s --log-level warn > "$tmp/cpe.out" 2>&1
  fi
  kill -INT $acs; wait $acs 2>/dev/null || true
  local n
  n=$(grep -o 'sessions_completed=[0-9]*' "$tmp/acs.log" | tail -1 | cut -d= -f2)
  echo "scale=1; $n / $secs" | bc
}

echo "machine: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1); ${secs}s per run, $conns connections, 1 thread/shard"
for mode in keepalive close; do
  w=$(measure $mode wrk)
  c=$(measure $mode cpe-sim)
  label=$([ $mode = keepalive ] && echo "pooled     " || echo "per-session")
  echo "$label wrk ${w} sessions/s | cpe-sim ${c} sessions/s | ratio $(echo "scale=2; $c / $w" | bc)"
done
echo "commands: wrk -t1 -c$conns -d${secs}s -s scripts/wrk-session.lua; cpe-sim --cpes 100000 --shards 1 --max-connections $conns --connection-mode pooled|per-session --inform-interval 1s"
