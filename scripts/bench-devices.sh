#!/usr/bin/env bash
# Real devices at scale (issue 11 item 5): CPEs whose data model is a real device imported from
# tests/fixtures/devices/ (default: the GenieACS export of a TP-Link EC220-G5, TR-181, ~750
# parameters), against `cpe-sim acs` on loopback.
#
#   1. 2,000 CPEs bootstrap against the ACS with its GenieACS-like provisioning: each session reads
#      the whole device (GPN of the tree, GPV batches of 32, SPV of the credentials).
#   2. 100,000 CPEs bootstrap within --boot-spread (ACS without provisioning: Inform + 204), then
#      inform periodically: sessions, failures, peak RSS and bytes per CPE.
#
# Usage: scripts/bench-devices.sh [fixture-file] [cpes=100000] [spread_s=60]
set -euo pipefail
cd "$(dirname "$0")/.."
file=${1:-genieacs-export-EC220-G5-tr181.csv}
cpes=${2:-100000}
spread=${3:-60}
cargo build --release -q
bin=target/release/cpe-sim
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
acs=
cleanup() { [ -n "$acs" ] && kill "$acs" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
cat >"$dir/profile.yaml" <<EOF
name: $file
identity: {oui: 0A1B2C, serial: "SIM{index:08}"}
data_model: $PWD/tests/fixtures/devices/$file
EOF
$bin check --profile "$dir" | head -1
start_acs() { # flags → ACS pid in $acs
  [ -n "$acs" ] && { kill "$acs"; wait "$acs" 2>/dev/null || true; }
  $bin acs --bind 127.0.0.1:$port --log-level warn "$@" &
  acs=$!
  for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && return; sleep 0.1; done
  echo "the ACS did not start" >&2; exit 1
}
summary() { # report json → one line
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s, p, sess = r["sessions"], r["process"], r["rpc"].get("Session", {})
print(f'sessions completed={s["completed"]} failed={s["failed"]} per_second={s["per_second"]:.0f}; '
      f'session p50={sess.get("p50_us", 0)/1000:.1f} ms p99={sess.get("p99_us", 0)/1000:.1f} ms; '
      f'peak RSS {p["peak_rss_bytes"]/1048576:.0f} MiB, CPU {p["cpu_seconds"]:.1f} s; limited by {r["limited_by"]["what"]}')
PY
}
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"

start_acs
$bin --acs-url "http://127.0.0.1:$port/" --profile "$dir" --cpes 2000 --boot-spread 10s --duration 40s \
  --progress-interval 60s --report-json "$dir/full.json" >/dev/null 2>&1 || true
echo "2,000 CPEs, whole-device bootstrap read: $(summary "$dir/full.json")"

start_acs --no-provisioning
$bin --acs-url "http://127.0.0.1:$port/" --profile "$dir" --cpes 2 --duration 3s \
  --progress-interval 60s --report-json "$dir/base.json" >/dev/null 2>&1 || true
$bin --acs-url "http://127.0.0.1:$port/" --profile "$dir" --cpes "$cpes" --boot-spread "${spread}s" \
  --inform-interval 300s --duration "$((spread + 30))s" --progress-interval 60s --report-json "$dir/fleet.json" >/dev/null 2>&1 || true
echo "$cpes CPEs, bootstrap over ${spread}s then periodic: $(summary "$dir/fleet.json")"
python3 - "$dir/base.json" "$dir/fleet.json" "$cpes" <<'PY'
import json, sys
base = json.load(open(sys.argv[1]))["process"]["peak_rss_bytes"]
fleet = json.load(open(sys.argv[2]))["process"]["peak_rss_bytes"]
print(f"memory: {(fleet - base) / int(sys.argv[3]):.0f} B per CPE above a 2-CPE run ({base/1048576:.0f} MiB)")
PY
echo "command: cpe-sim --acs-url http://127.0.0.1:$port/ --profile <dir importing $file> --cpes $cpes --boot-spread ${spread}s --inform-interval 300s --duration $((spread + 30))s"
