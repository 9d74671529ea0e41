#!/usr/bin/env bash
# A firmware upgrade through a real GenieACS v1.2.9 (issue 11 item 2): one TR-181 CPE bootstraps,
# a firmware image is uploaded to GenieACS's file server through the NBI, a `download` task is
# pushed with a connection request, the CPE fetches the image from genieacs-fs, reboots into it
# (1 BOOT + 7 TRANSFER COMPLETE + M Download) and GenieACS then reports the new
# Device.DeviceInfo.SoftwareVersion, the version the profile's firmware rule takes from the file
# name (SimGW-181-2.0.1.bin → 2.0.1). CI has no GenieACS; run it by hand after setup.sh.
#
# Usage (from the project root): bash scripts/genieacs-firmware.sh
# Exits 0 iff GenieACS reports SoftwareVersion 2.0.1 within 90 s and has no faults.
# Env: CPE_SIM (default target/debug/cpe-sim), FIRMWARE_OUT (default ${TMPDIR:-/tmp}/cpe-sim-genieacs-firmware),
#      GENIEACS_PEER_DIR (default ../shared/peers/genieacs) and GENIEACS_*_PORT as for up.sh. The CPE's
#      connection request listener is 127.0.0.1:23631.
set -uo pipefail
PEER_DIR=${GENIEACS_PEER_DIR:-../shared/peers/genieacs}
OUT=${FIRMWARE_OUT:-${TMPDIR:-/tmp}/cpe-sim-genieacs-firmware}
SIM=${CPE_SIM:-target/debug/cpe-sim}
export GENIEACS_RUN=$OUT/peer GENIEACS_CWMP_PORT=${GENIEACS_CWMP_PORT:-29547} GENIEACS_NBI_PORT=${GENIEACS_NBI_PORT:-29557}
say() { echo "[firmware] $*"; }
die() { echo "[firmware] ERROR: $*" >&2; exit 1; }

[ -x "$SIM" ] || die "no cpe-sim binary at $SIM: run cargo build first (or set CPE_SIM)"
[ -f "$PEER_DIR/up.sh" ] || die "no GenieACS peer at $PEER_DIR (set GENIEACS_PEER_DIR)"
[ -d profiles/example-tr181-gateway ] || die "run this from the project root"

PIDS=() # up.sh, then cpe-sim; stopped by pid, last first
cleanup() {
  local i
  trap - EXIT INT TERM
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[i]}" 2>/dev/null
    wait "${PIDS[i]}" 2>/dev/null
  done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$OUT" "$GENIEACS_RUN"
rm -f "$OUT"/{up,sim}.log "$GENIEACS_RUN/ready"
HOLD=600 bash "$PEER_DIR/up.sh" >"$OUT/up.log" 2>&1 & PIDS+=($!)
for _ in $(seq 1 600); do
  [ -f "$GENIEACS_RUN/ready" ] && break
  kill -0 "${PIDS[0]}" 2>/dev/null || die "GenieACS did not start: $(tail -n 3 "$OUT/up.log")"
  sleep 0.1
done
[ -f "$GENIEACS_RUN/ready" ] || die "GenieACS not ready after 60 s"
say "GenieACS up (logs: $GENIEACS_RUN)"

timeout 600 "$SIM" --profile profiles/example-tr181-gateway/ --acs-url "http://127.0.0.1:$GENIEACS_CWMP_PORT/" \
  --cr-bind-addr 127.0.0.1:23631 --duration 8m --log-level debug >"$OUT/sim.log" 2>&1 & PIDS+=($!)

timeout 200 python3 - "http://127.0.0.1:$GENIEACS_NBI_PORT" <<'PY'
import json, sys, time, urllib.error, urllib.parse, urllib.request
NBI = sys.argv[1]
DEV = "FEFEFE-SimGW%2D181-FEFEFE000000"
SW = "Device.DeviceInfo.SoftwareVersion"

def http(method, path, body=None, headers=None, timeout=60):
    req = urllib.request.Request(NBI + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.reason, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.reason, e.read().decode(errors="replace")

def device():
    q = urllib.parse.quote(json.dumps({"_id": DEV}), safe="")
    code, _, body = http("GET", f"/devices/?query={q}&projection={SW},_lastBoot,Events")
    docs = json.loads(body) if code == 200 else []
    return docs[0] if docs else None

def version(d):
    node = d
    for part in SW.split("."):
        node = (node or {}).get(part)
    return (node or {}).get("_value")

deadline = time.time() + 60
while device() is None:
    if time.time() > deadline:
        sys.exit("[firmware] ERROR: the CPE did not bootstrap into GenieACS within 60 s")
    time.sleep(0.5)
before = device()
print(f"[firmware] bootstrapped: SoftwareVersion {version(before)}")
image = b"cpe-sim firmware image 2.0.1\n" * 1024
code, reason, _ = http("PUT", "/files/SimGW-181-2.0.1.bin", image,
                       {"fileType": "1 Firmware Upgrade Image", "oui": "FEFEFE", "productClass": "SimGW-181",
                        "version": "2.0.1", "Content-Type": "application/octet-stream"})
print(f"[firmware] PUT /files/SimGW-181-2.0.1.bin: {code} {reason}")
if code not in (200, 201):
    sys.exit(1)
task = json.dumps({"name": "download", "fileType": "1 Firmware Upgrade Image", "fileName": "SimGW-181-2.0.1.bin"}).encode()
code, reason, _ = http("POST", f"/devices/{urllib.parse.quote(DEV, safe='')}/tasks?connection_request&timeout=30000", task,
                       {"Content-Type": "application/json"}, timeout=120)
print(f"[firmware] download task: {code} {reason}")
t0 = time.time()
while time.time() - t0 < 90:
    d = device()
    if d and version(d) == "2.0.1":
        print(f"[firmware] GenieACS reports SoftwareVersion 2.0.1 after {time.time() - t0:.1f} s (boot {d.get('_lastBoot')})")
        break
    time.sleep(0.5)
else:
    sys.exit(f"[firmware] ERROR: SoftwareVersion still {version(device())} after 90 s")
code, _, body = http("GET", "/faults/")
faults = json.loads(body) if code == 200 else ["?"]
print(f"[firmware] GenieACS faults: {len(faults)}")
sys.exit(0 if not faults else 1)
PY
rc=$?
grep -h "transfer\|session started" "$OUT/sim.log" | sed 's/^\S* *//' | cut -c1-200 | tail -n 6
[ $rc -eq 0 ] && say "ok" || say "FAILED (logs: $OUT)"
exit $rc
