#!/usr/bin/env bash
# VALUE CHANGE load from generated values (issue 11 item 6): N CPEs of the TR-181 example, with
# one generated parameter (a walk that moves every STEP s) under active notification and
# DefaultActiveNotificationThrottle THROTTLE s, inform `cpe-sim acs` for DURATION s. Prints the
# sessions per second after the bootstrap (expected: about N / max(THROTTLE, STEP) when the walk
# moves at most steps) and the process's peak RSS.
# Usage: scripts/bench-value-change.sh [cpes=10000] [throttle_s=30] [step_s=10] [duration_s=120]
set -euo pipefail
cd "$(dirname "$0")/.."
cpes=${1:-10000}
throttle=${2:-30}
step=${3:-10}
duration=${4:-120}
cargo build --release -q
bin=target/release/cpe-sim
dir=$(mktemp -d /tmp/cpe-sim-vc.XXXXXX)
port=$((20000 + RANDOM % 20000))
$bin acs --bind 127.0.0.1:$port --log-level warn &
acs=$!
trap 'kill $acs 2>/dev/null || true; rm -rf "$dir"' EXIT
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do kill -0 $acs; sleep 0.05; done
mkdir -p "$dir/profile"
sed "s/Device.ManagementServer.DefaultActiveNotificationThrottle: {type: unsignedInt, value: 0/Device.ManagementServer.DefaultActiveNotificationThrottle: {type: unsignedInt, value: $throttle/" \
  profiles/example-tr181-gateway/profile.yaml >"$dir/profile/profile.yaml"
echo "  Device.DeviceInfo.X_FEFEFE_Temperature: {type: int, dynamic: {walk: {min: 30, max: 80, step: $step}}, notify: active}" >>"$dir/profile/profile.yaml"
echo "machine: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
cmd=($bin --profile "$dir/profile" --acs-url "http://127.0.0.1:$port/" --cpes "$cpes" --boot-spread 10s
     --duration "${duration}s" --progress-interval 10s --report-json "$dir/report.json")
echo "command: ${cmd[*]}"
"${cmd[@]}" >/dev/null 2>"$dir/run.err"
grep -E "^\[" "$dir/run.err" | tail -n 4
python3 - "$dir" "$cpes" "$throttle" "$step" "$duration" <<'PY'
import json, sys
d, cpes, throttle, step, duration = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
r = json.load(open(f"{d}/report.json"))
done = r["sessions"]["completed"]
# Each CPE's first session is its bootstrap; what follows is value changes (plus the periodic
# informs the embedded ACS turns on: one per CPE every 300 s).
later = done - cpes
periodic = cpes * max(0, duration - 10) / 300
print(f"sessions: {done} completed, {r['sessions']['failed']} failed; after the bootstraps {later} "
      f"= {later / max(1, duration - 10):.0f}/s (of which ~{periodic / max(1, duration - 10):.0f}/s periodic); "
      f"expected value changes ≤ {cpes / max(throttle, step):.0f}/s; peak RSS {r['process']['peak_rss_bytes'] / 1048576:.0f} MiB, "
      f"CPU {r['process']['cpu_seconds']:.0f} s")
PY
