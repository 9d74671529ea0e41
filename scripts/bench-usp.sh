#!/usr/bin/env bash
# USP Agents on one local mosquitto (issue 14): how many Agents one broker holds here, memory per
# connected Agent (RSS slope between two fleet sizes), and the Boot! storm rate (every Agent
# connects at once; Boot! answered by the embedded Controller per second of the run).
# Usage: scripts/bench-usp.sh [small=1000] [large=10000]
set -euo pipefail
cd "$(dirname "$0")/.."
small=${1:-1000}
large=${2:-10000}
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || { echo "needs mosquitto (apt-get install mosquitto)" >&2; exit 1; }
mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
cargo build --release -q
bin=target/release/cpe-sim
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
cat > "$dir/m.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 1000000
max_connections -1
CONF
# The broker holds one descriptor per Agent.
(ulimit -n 1048576 2>/dev/null || ulimit -n 65536; exec "$mosq" -c "$dir/m.conf") >"$dir/mosquitto.log" 2>&1 &
broker=$!
trap 'kill $broker 2>/dev/null || true; rm -rf "$dir"' EXIT
sleep 0.5
run() { # agents → "rss_kb elapsed_s booted held"
  /usr/bin/time -f "%M" -o "$dir/rss" "$bin" --protocol usp --usp-url "mqtt://127.0.0.1:$port" --cpes "$1" \
    --timeout 60s --progress-interval 60s --report-json "$dir/r.json" >/dev/null 2>"$dir/err" || true
  python3 - "$dir/r.json" "$(cat "$dir/rss")" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(sys.argv[2], round(r["elapsed_s"], 2), r["booted"], r["connections"]["held"])
PY
}
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
read -r rs es bs hs < <(run "$small")
read -r rl el bl hl < <(run "$large")
echo "$small agents: $bs booted, $hs held, ${es}s, peak RSS $((rs / 1024)) MiB, Boot! storm $(python3 -c "print(round($bs/$es))")/s"
echo "$large agents: $bl booted, $hl held, ${el}s, peak RSS $((rl / 1024)) MiB, Boot! storm $(python3 -c "print(round($bl/$el))")/s"
echo "memory per connected agent (RSS slope $small → $large): $(( (rl - rs) * 1024 / (large - small) )) B"
echo "broker RSS after the runs: $(( $(awk '/VmHWM/{print $2}' /proc/$broker/status) / 1024 )) MiB peak"
echo "command: cpe-sim --protocol usp --usp-url mqtt://127.0.0.1:$port --cpes N --timeout 60s --report-json FILE"
