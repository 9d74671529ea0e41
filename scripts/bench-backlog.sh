#!/usr/bin/env bash
# A boot storm against the embedded ACS's listen backlog: N CPEs (default 3000) inform at once,
# each on a new connection (--connection-mode per-session), against `cpe-sim acs` with each
# backlog given (default 64, 1024 and 4096). Prints the storm's sessions/s and Connect
# percentiles: when the backlog overflows, connects wait for SYN retransmits (1 s, 3 s, ...).
# The kernel caps the backlog at net.core.somaxconn (printed).
# Usage: scripts/bench-backlog.sh [cpes=3000] [backlogs="64 1024 4096"] [profile=debug|release]
set -euo pipefail
cd "$(dirname "$0")/.."
cpes=${1:-3000}
backlogs=${2:-"64 1024 4096"}
profile=${3:-debug}
if [ "$profile" = release ]; then cargo build --release -q; bin=target/release/cpe-sim; else cargo build -q; bin=target/debug/cpe-sim; fi
echo "machine: $(nproc) cores, somaxconn $(cat /proc/sys/net/core/somaxconn), $profile build, $cpes CPEs at once"
for b in $backlogs; do
  log=$(mktemp)
  $bin acs --bind 127.0.0.1:0 --no-provisioning --backlog "$b" 2>"$log" &
  acs=$!
  url=""
  for _ in $(seq 50); do url=$(grep -o 'http://[0-9.:]*/' "$log" | head -1 || true); [ -n "$url" ] && break; sleep 0.1; done
  echo "backlog $b:"
  $bin --acs-url "$url" --cpes "$cpes" --connection-mode per-session --max-connections $((cpes + 1000)) \
       --progress-interval 60s 2>/dev/null | grep -E '^(sessions:|Connect )' | sed 's/^/  /'
  kill -TERM "$acs"; wait "$acs" 2>/dev/null || true
  rm -f "$log"
done
