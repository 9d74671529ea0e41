#!/usr/bin/env bash
# USP Agents on one local mosquitto (issue 14): the Boot! storm rate (every Agent connects at
# once; Boot! answered by the embedded Controller per second of the run), memory per connected
# Agent (RSS slope between two fleet sizes started at a steady rate), and how many Agents one
# broker holds here (bounded by the open-files limit: one descriptor per Agent on each side).
# Usage: scripts/bench-usp.sh [storm=10000] [small=1000] [large=10000] [most=19000] [rate=2000]
set -euo pipefail
cd "$(dirname "$0")/.."
storm=${1:-10000}
small=${2:-1000}
large=${3:-10000}
most=${4:-19000}
rate=${5:-2000}
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
# Without it a small publish waits ~40 ms behind the ACK of the one before (Nagle).
set_tcp_nodelay true
# The Controller gets every Boot! on one connection: mosquitto's default of 1,000 queued drops a storm.
max_queued_messages 1000000
max_connections -1
CONF
(ulimit -n "$(ulimit -Hn)"; exec "$mosq" -c "$dir/m.conf") >"$dir/mosquitto.log" 2>&1 &
broker=$!
trap 'kill $broker 2>/dev/null || true; rm -rf "$dir"' EXIT
sleep 0.5
run() { # agents [extra flags] → "rss_kb elapsed_s booted held boot_p50_ms"
  local n=$1; shift
  /usr/bin/time -f "%M" -o "$dir/rss" "$bin" --protocol usp --usp-url "mqtt://127.0.0.1:$port" --cpes "$n" "$@" \
    --timeout 60s --progress-interval 60s --report-json "$dir/r.json" >/dev/null 2>"$dir/err" || true
  python3 - "$dir/r.json" "$(tail -1 "$dir/rss")" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(sys.argv[2], round(r["elapsed_s"], 2), r["booted"], r["connections"]["held"], r["notify"]["Boot!"]["round_trip"]["p50_ms"])
PY
}
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
read -r r e b h p < <(run "$storm")
echo "Boot! storm: $storm agents at once: $b booted in ${e}s = $(python3 -c "print(round($b/$e))")/s (Boot! round trip p50 ${p} ms)"
read -r rs es bs hs ps < <(run "$small" --boot-rate "$rate")
read -r rl el bl hl pl < <(run "$large" --boot-rate "$rate")
echo "$small agents at $rate/s: $bs booted, $hs held, peak RSS $((rs / 1024)) MiB, Boot! p50 ${ps} ms"
echo "$large agents at $rate/s: $bl booted, $hl held, peak RSS $((rl / 1024)) MiB, Boot! p50 ${pl} ms"
echo "memory per connected agent (RSS slope $small → $large): $(( (rl - rs) * 1024 / (large - small) )) B"
read -r rm em bm hm pm < <(run "$most" --boot-rate "$rate")
echo "$most agents at $rate/s (open-files limit $(ulimit -Hn)): $bm booted, $hm held on one broker, peak RSS $((rm / 1024)) MiB, Boot! p50 ${pm} ms"
echo "broker peak RSS: $(( $(awk '/VmHWM/{print $2}' /proc/$broker/status) / 1024 )) MiB"
echo "command: cpe-sim --protocol usp --usp-url mqtt://127.0.0.1:$port --cpes N [--boot-rate R] --timeout 60s --report-json FILE"
