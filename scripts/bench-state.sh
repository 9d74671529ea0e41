#!/usr/bin/env bash
# --state-dir at fleet scale: N CPEs (default 100k) bootstrap against `cpe-sim acs` (GenieACS-like
# provisioning on 0 BOOTSTRAP: GPN, GPV, SPV), then the simulator restarts on the same directory.
# Prints the store's size, the syncs the writer did, how long loading took, and the provisioning
# RPCs of each run (the second run should have none: nothing re-bootstraps).
# Usage: scripts/bench-state.sh [cpes=100000] [boot_spread_s=20]
set -euo pipefail
cd "$(dirname "$0")/.."
cpes=${1:-100000}
spread=${2:-20}
cargo build --release -q
bin=target/release/cpe-sim
dir=$(mktemp -d /tmp/cpe-sim-state.XXXXXX)
port=$((20000 + RANDOM % 20000))
$bin acs --bind 127.0.0.1:$port --log-level warn &
acs=$!
trap 'kill $acs 2>/dev/null || true; rm -rf "$dir"' EXIT
sleep 0.4
echo "machine: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
for run in first restart; do
  cmd=($bin --acs-url "http://127.0.0.1:$port/" --cpes "$cpes" --boot-spread "${spread}s" --state-dir "$dir"
       --duration "$((spread + 20))s" --progress-interval 1h --report-json "$dir/$run.json")
  echo "command ($run): ${cmd[*]}"
  "${cmd[@]}" > /dev/null 2> "$dir/$run.err"
  python3 - "$dir" "$run" <<'PY'
import json, os, re, sys
d, run = sys.argv[1], sys.argv[2]
r = json.load(open(f"{d}/{run}.json"))
rpc = r["rpc"]
err = open(f"{d}/{run}.err").read()
saved = re.search(r"saved_cpes=(\d+)", err)
size = os.path.getsize(f"{d}/cpe-sim-state.log")
w = re.search(r"device state saved \(one fdatasync per batch\) snapshots=(\d+) batches=(\d+)", err)
print(f"  {run}: sessions {r['sessions']['completed']} completed, {r['sessions']['failed']} failed; "
      f"GetParameterNames {rpc.get('GetParameterNames', {}).get('count', 0)}, SetParameterValues {rpc.get('SetParameterValues', {}).get('count', 0)}; "
      f"CPEs resumed {saved.group(1) if saved else '?'}; store {size/1e6:.1f} MB; "
      f"{w.group(1) if w else '?'} snapshots in {w.group(2) if w else '?'} batches (one fdatasync each) over {r['run']['duration_s']:.0f} s")
PY
done
