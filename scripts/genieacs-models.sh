#!/usr/bin/env bash
# Issue 11 items 3 and 5 against a real GenieACS 1.2.9 (../shared/peers/genieacs/, built by its
# setup.sh): three CPEs of each imported device in tests/fixtures/devices/ bootstrap through the
# stock provisions; on one W5-2100G, GenieACS refreshes the whole tree, adds a Hosts.Host
# instance and reads HostNumberOfEntries and NATDetected back; then a TR-181 CPE with both
# Connection Request listeners is woken by a task, and the UDP listener's counters are printed.
# Exits 0 iff every task answered 200 and GenieACS has no faults.
#
# Usage (from the project root): scripts/genieacs-models.sh   (CPE_SIM: another binary)
set -uo pipefail
cd "$(dirname "$0")/.."
SIM=${CPE_SIM:-target/debug/cpe-sim}
[ -x "$SIM" ] || cargo build -q
OUT=$(mktemp -d)
export GENIEACS_RUN=$OUT/peer
ACS=http://127.0.0.1:29547/
NBI=http://127.0.0.1:29557
PIDS=()
cleanup() { for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[i]}" 2>/dev/null; wait "${PIDS[i]}" 2>/dev/null; done; }
trap cleanup EXIT
fail=0
mkdir -p "$GENIEACS_RUN"
bash ../shared/peers/genieacs/up.sh >"$OUT/up.log" 2>&1 & PIDS+=($!)
for _ in $(seq 600); do [ -f "$GENIEACS_RUN/ready" ] && break; sleep 0.1; done
[ -f "$GENIEACS_RUN/ready" ] || { echo "GenieACS did not start: $(tail -3 "$OUT/up.log")"; exit 1; }
task() { # device id (escaped once), task json → HTTP status
  curl -s -m 30 -o /dev/null -w "%{http_code}" -X POST "$NBI/devices/${1//%/%25}/tasks?connection_request&timeout=15000" -d "$2"
}
check() { # what, status
  echo "$1: $2"
  [ "$2" = 200 ] || fail=1
}
for f in tests/fixtures/devices/*.csv tests/fixtures/devices/*.json; do
  d=$OUT/$(basename "$f" | tr . -)
  mkdir -p "$d"
  printf 'identity: {oui: 0A1B2C, serial: "SIM{index:08}"}\ndata_model: %s\n' "$PWD/$f" >"$d/profile.yaml"
  "$SIM" --acs-url "$ACS" --profile "$d" --cpes 3 --duration 6s --cr-bind-addr 127.0.0.1:0 2>&1 | grep -o 'sessions: .*' | sed "s|^|$(basename "$f"): |"
done
echo "devices GenieACS registered:"
curl -s "$NBI/devices/?projection=_deviceId" | python3 -c '
import json, sys
for d in json.load(sys.stdin):
    i = d["_deviceId"]; print("  ", d["_id"], "|", i["_Manufacturer"], "|", i["_ProductClass"], "|", i["_SerialNumber"])'

w5=$OUT/w5; mkdir -p "$w5"
printf 'identity: {oui: 0A1B2C, serial: "SIM{index:08}"}\ndata_model: %s\n' "$PWD/tests/fixtures/devices/genieacs-export-W5-2100G-tr098.csv" >"$w5/profile.yaml"
"$SIM" --acs-url "$ACS" --profile "$w5" --first-index 5 --duration 60s --cr-bind-addr 127.0.0.1:23731 >"$OUT/w5.log" 2>&1 & PIDS+=($!)
sleep 4
id=0A1B2C-W5%2D2100G-SIM00000005
check "refreshObject InternetGatewayDevice" "$(task $id '{"name":"refreshObject","objectName":"InternetGatewayDevice"}')"
check "addObject Hosts.Host" "$(task $id '{"name":"addObject","objectName":"InternetGatewayDevice.LANDevice.1.Hosts.Host"}')"
check "getParameterValues" "$(task $id '{"name":"getParameterValues","parameterNames":["InternetGatewayDevice.LANDevice.1.Hosts.HostNumberOfEntries","InternetGatewayDevice.ManagementServer.NATDetected"]}')"
curl -s "$NBI/devices/?query=%7B%22_id%22%3A%22${id//%/%25}%22%7D&projection=InternetGatewayDevice.LANDevice.1.Hosts.HostNumberOfEntries,InternetGatewayDevice.ManagementServer.NATDetected" | python3 -c '
import json, sys
d = json.load(sys.stdin)[0]["InternetGatewayDevice"]
print("   HostNumberOfEntries =", d["LANDevice"]["1"]["Hosts"]["HostNumberOfEntries"]["_value"], "(3 in the file, +1)")
print("   NATDetected =", repr(d["ManagementServer"]["NATDetected"]["_value"]), "(the device reported 2)")'

"$SIM" --acs-url "$ACS" --first-index 9 --duration 20s --cr-bind-addr 127.0.0.1:23741 --udp-cr-bind-addr 127.0.0.1:23743 >"$OUT/udp.log" 2>&1 & udp=$!
sleep 4
check "UDP + HTTP connection request" "$(task FEFEFE-SimGW%2D181-FEFEFE000009 '{"name":"getParameterValues","parameterNames":["Device.DeviceInfo.UpTime"]}')"
sleep 1
kill -TERM $udp; wait $udp
grep -o 'UDP connection requests: .*' "$OUT/udp.log"
grep -o 'session started event_codes=\[6 CONNECTION REQUEST\]' "$OUT/udp.log" | sort | uniq -c
faults=$(curl -s "$NBI/faults/" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "GenieACS faults: $faults"
[ "$faults" = 0 ] || fail=1
exit $fail
