#!/usr/bin/env bash
# The cost of the reports of issue 12 on a long, large run: a 1M-CPE fleet for 10 minutes with a
# progress tick a second (600 points on every chart), --report-html, --report-json, --hdr-log
# and --metrics-bind-addr scraped once a second. Prints the HTML file's size, the time to render
# and write it (the engine logs it), the JSON and interval-log sizes, a /metrics scrape's size
# and the run's peak RSS and CPU.
# First contacts are spread over an hour (about 280 bootstraps/s against `cpe-sim acs` on
# loopback), so the machine measures the reports, not the ACS.
# Usage: scripts/bench-report.sh [cpes=1000000] [seconds=600]
set -euo pipefail
cd "$(dirname "$0")/.."
cpes=${1:-1000000}
secs=${2:-600}
cargo build --release -q
bin=${CARGO_TARGET_DIR:-target}/release/cpe-sim
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
mport=$((port + 1))
$bin acs --bind 127.0.0.1:$port --log-level warn &
acs=$!
trap 'kill $acs 2>/dev/null || true; rm -rf "$dir"' EXIT
sleep 0.4
$bin --acs-url "http://127.0.0.1:$port/" --cpes "$cpes" --boot-spread 1h --duration "${secs}s" --progress-interval 1s \
  --report-html "$dir/r.html" --report-json "$dir/r.json" --hdr-log "$dir/r.hlog" --metrics-bind-addr "127.0.0.1:$mport" \
  >"$dir/out.txt" 2>"$dir/err.txt" &
run=$!
scrape=0
while kill -0 $run 2>/dev/null; do
  if curl -sf "http://127.0.0.1:$mport/metrics" -o "$dir/metrics.txt"; then scrape=$(wc -c <"$dir/metrics.txt"); fi
  sleep 1
done
wait $run || true
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
grep -o 'report-html .* written.*' "$dir/err.txt" | sed 's/^/html: /'
echo "html: $(wc -c <"$dir/r.html") bytes; json: $(wc -c <"$dir/r.json") bytes; hdr-log: $(wc -c <"$dir/r.hlog") bytes; last /metrics scrape: $scrape bytes"
python3 - "$dir/r.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print(f"run {j['run']['id']}: {j['run']['cpes']} CPEs, {j['run']['duration_s']} s, {j['sessions']['completed']} sessions completed; "
      f"peak RSS {j['process']['peak_rss_bytes'] / 1048576:.0f} MiB, CPU {j['process']['cpu_seconds']:.1f} s")
PY
echo "command: cpe-sim --acs-url http://127.0.0.1:$port/ --cpes $cpes --boot-spread 1h --duration ${secs}s --progress-interval 1s --report-html FILE ..."
