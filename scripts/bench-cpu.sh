#!/usr/bin/env bash
# The simulator's CPU per periodic session at a fixed offered load: 100k CPEs informing every
# 20 s (5,000 sessions/s) against an ACS on loopback (`cpe-sim acs`, no provisioning). Prints
# cpe-sim's own CPU seconds ÷ completed sessions (floor ≤ 12 µs, issue 9) and the scheduler lag p99
# (floor ≤ 1 ms). One shard: the ACS shares this 2-core machine and gets the other core (two
# shards plus the ACS contend for 2 cores: ~+50% CPU per session, measured back to back).
# Usage: scripts/bench-cpu.sh [seconds=60] [cpes=100000] [interval=20s]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
cpes=${2:-100000}
interval=${3:-20s}
cargo build --release -q
bin=target/release/cpe-sim
port=$((20000 + RANDOM % 20000))
$bin acs --bind 127.0.0.1:$port --no-provisioning --keep-alive --log-level warn &
acs=$!
trap 'kill $acs 2>/dev/null || true' EXIT
sleep 0.4
echo "machine: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
cmd=($bin --acs-url "http://127.0.0.1:$port/" --cpes "$cpes" --shards 1 --inform-interval "$interval" --boot-spread "$interval" \
     --duration "${secs}s" --progress-interval 10s --report-json /tmp/cpe-sim-cpu.json)
echo "command: ${cmd[*]}"
"${cmd[@]}" > /dev/null
python3 - <<'PY'
import json
r = json.load(open("/tmp/cpe-sim-cpu.json"))
s = r["sessions"]
cpu = r["process"]["cpu_seconds"]
per = cpu / max(s["completed"], 1) * 1e6
print(f"sessions: {s['completed']} completed ({s['per_second']}/s), {s['failed']} failed, {s['late']} late")
print(f"CPU per session: {per:.1f} µs (cpe-sim {cpu:.2f} s over the run incl. start-up; floor 12 µs)")
lag = r["scheduler_lag"]
print(f"scheduler lag: p50 {lag['p50_us']} µs, p99 {lag['p99_us']} µs, max {lag['max_us']} µs (floor p99 1000 µs)")
inf = r["rpc"]["Inform"]
print(f"Inform: p50 {inf['p50_us']} µs, p99 {inf['p99_us']} µs; from scheduled p99 {inf['from_scheduled']['p99_us']} µs")
PY
