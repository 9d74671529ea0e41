#!/usr/bin/env bash
# Memory of a fleet fetching a large image (issue 10 item 9): N CPEs (10,000) each told to
# Download a 64 MiB file must not need more than tens of MiB. Downloads are streamed (counted and
# dropped) and at most --max-transfers run at once, so the peak RSS is the fleet's own plus a
# bounded amount per transfer slot, whatever the file size.
# A sparse 64 MiB file in a temp dir is served by python3's http.server on 127.0.0.1; the embedded
# `cpe-sim acs` pushes the Download in every session. Prints the peak RSS of a fleet without
# downloads (baseline) and with them, and the downloads the file server served.
# Usage: scripts/bench-transfers.sh [cpes=10000] [seconds=30] [max_transfers=64]  (NO_BUILD=1: use the built binary)
set -euo pipefail
cd "$(dirname "$0")/.."
cpes=${1:-10000}
secs=${2:-30}
slots=${3:-64}
[ -n "${NO_BUILD:-}" ] || cargo build --release -q
bin=target/release/cpe-sim
dir=$(mktemp -d)
truncate -s 64M "$dir/image.bin"
fport=$((20000 + RANDOM % 20000))
aport=$((fport + 1))
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
python3 -m http.server "$fport" --bind 127.0.0.1 --directory "$dir" 2>"$dir/files.log" >/dev/null &
pids+=($!)
$bin acs --bind 127.0.0.1:$aport --no-provisioning --log-level warn \
  --push "Download http://127.0.0.1:$fport/image.bin fw" &
pids+=($!)
sleep 0.5
peak() { python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["process"]["peak_rss_bytes"])' "$1"; }
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
# Baseline: the same fleet against an ACS that pushes nothing.
$bin acs --bind 127.0.0.1:$((aport + 1)) --no-provisioning --log-level warn &
pids+=($!)
sleep 0.3
$bin --acs-url "http://127.0.0.1:$((aport + 1))/" --cpes "$cpes" --boot-spread 5s --duration "${secs}s" \
  --progress-interval 60s --log-level warn --report-json "$dir/base.json" >/dev/null 2>&1 || true
base=$(peak "$dir/base.json")
$bin --acs-url "http://127.0.0.1:$aport/" --cpes "$cpes" --boot-spread 5s --duration "${secs}s" \
  --max-transfers "$slots" --progress-interval 60s --log-level warn --report-json "$dir/dl.json" >/dev/null 2>&1 || true
dl=$(peak "$dir/dl.json")
served=$(grep -c '"GET /image.bin HTTP/1.1" 200' "$dir/files.log" || true)
echo "$cpes CPEs, ${secs}s, --max-transfers $slots, 64 MiB image"
echo "baseline (no downloads): peak RSS $((base / 1048576)) MiB"
echo "fetching the image:      peak RSS $((dl / 1048576)) MiB (+$(((dl - base) / 1048576)) MiB); downloads started: $served ($((served * 64)) MiB)"
echo "command: cpe-sim --acs-url http://127.0.0.1:$aport/ --cpes $cpes --boot-spread 5s --duration ${secs}s --max-transfers $slots"
