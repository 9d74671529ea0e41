#!/usr/bin/env bash
# Connection Request wake-up latency in a large fleet: N CPEs (default 100k) bootstrap against
# `cpe-sim acs` (which provisions ConnectionRequestUsername = serial, Password = pw-<serial>, like
# GenieACS's default provision), then `curl --digest` wakes K random CPEs through /cr/cpe-N.
# Prints the curl answers and the report's ConnectionRequest row: from the wake-up (the 200) to the
# InformResponse of the `6 CONNECTION REQUEST` session (floor: p99 < 1 s for any CPE of a 100k fleet).
# Usage: scripts/bench-cr.sh [cpes=100000] [requests=200] [boot_spread_s=30]
set -euo pipefail
cd "$(dirname "$0")/.."
cpes=${1:-100000}
requests=${2:-200}
spread=${3:-30}
command -v curl >/dev/null || { echo "needs curl"; exit 2; }
cargo build --release -q
bin=target/release/cpe-sim
acs_port=$((20000 + RANDOM % 20000))
cr_port=$((acs_port + 1))
$bin acs --bind 127.0.0.1:$acs_port --log-level warn &
acs=$!
sim=
trap 'kill $acs $sim 2>/dev/null || true' EXIT
sleep 0.4
echo "machine: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
run_s=$((spread + 30))
cmd=($bin --acs-url "http://127.0.0.1:$acs_port/" --cpes "$cpes" --boot-spread "${spread}s" --cr-bind-addr "127.0.0.1:$cr_port"
     --duration "${run_s}s" --progress-interval 10s --report-json /tmp/cpe-sim-cr.json)
echo "command: ${cmd[*]}"
"${cmd[@]}" > /tmp/cpe-sim-cr.txt 2>/tmp/cpe-sim-cr.err &
sim=$!
# Let every CPE bootstrap (and be provisioned) first.
sleep $((spread + 8))
statuses=$(python3 -c "
import random
random.seed(7)
for i in random.sample(range($cpes), $requests): print(i)
" | while read -r i; do
  serial=$(printf 'FEFEFE%06X' "$i")
  curl --silent --max-time 5 --digest -u "$serial:pw-$serial" -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$cr_port/cr/cpe-$i"
done | sort | uniq -c | awk '{printf "%s×%s ", $1, $2}')
echo "curl answers (count status): $statuses"
wait $sim
sim=
grep '^connection requests' /tmp/cpe-sim-cr.txt || true
python3 - <<'PY'
import json
r = json.load(open("/tmp/cpe-sim-cr.json"))
s = r["sessions"]
print(f"sessions: {s['completed']} completed, {s['failed']} failed")
cr = r["rpc"].get("ConnectionRequest")
if not cr:
    raise SystemExit("no Connection Request session completed")
w = cr["from_scheduled"]
print(f"woken sessions: {cr['count']}; wake-up → InformResponse: p50 {w['p50_us']/1000:.1f} ms, p99 {w['p99_us']/1000:.1f} ms, max {w['max_us']/1000:.1f} ms (floor p99 1000 ms)")
PY
