#!/usr/bin/env bash
# Fleet scale on this machine: RSS per idle CPE as the slope from 100k to 1M CPEs (floor ≤ 128 B,
# issue 9), the time to schedule them all, and whether 10M CPEs start and run.
# First contacts are spread over an hour, so the fleet is idle while measured; an idle
# `cpe-sim acs` listens on loopback. Usage: scripts/bench-scale.sh [seconds=5]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
cargo build --release -q
bin=target/release/cpe-sim
port=$((20000 + RANDOM % 20000))
$bin acs --bind 127.0.0.1:$port --log-level warn &
acs=$!
trap 'kill $acs 2>/dev/null || true' EXIT
sleep 0.4
run() { # cpes → "peak_rss_bytes schedule_ms"
  local out
  out=$($bin --acs-url "http://127.0.0.1:$port/" --cpes "$1" --boot-spread 1h --duration "${secs}s" \
        --progress-interval 60s --report-json /tmp/cpe-sim-scale.json 2>&1 >/dev/null)
  local rss ms
  rss=$(python3 -c 'import json;print(json.load(open("/tmp/cpe-sim-scale.json"))["process"]["peak_rss_bytes"])')
  ms=$(echo "$out" | grep -o 'scheduled every CPE in [0-9]* ms' | grep -o '[0-9]* ms' | cut -d' ' -f1)
  echo "$rss ${ms:-?}"
}
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
read -r base base_ms < <(run 2)
read -r k100 k100_ms < <(run 100000)
read -r m1 m1_ms < <(run 1000000)
per=$(( (m1 - k100) / 900000 ))
echo "100k CPEs: peak RSS $((k100 / 1048576)) MiB; scheduled in ${k100_ms} ms"
echo "1M CPEs: peak RSS $((m1 / 1048576)) MiB (baseline $((base / 1048576)) MiB) → $per B per CPE from 100k to 1M (floor 128); scheduled in ${m1_ms} ms"
read -r m10 m10_ms < <(run 10000000)
echo "10M CPEs: started and ran ${secs}s; peak RSS $((m10 / 1048576)) MiB → $(( (m10 - base) / 10000000 )) B per CPE; scheduled in ${m10_ms} ms"
echo "command: cpe-sim --acs-url http://127.0.0.1:$port/ --cpes N --boot-spread 1h --duration ${secs}s --report-json FILE"
