#!/usr/bin/env bash
# Runs the codec benchmarks (criterion, release build with LTO) and prints each median next to the
# floor from the CPE-core issue, then the allocation counts and the per-CPE size.
# Usage: scripts/bench-codec.sh        (about two minutes on 2 cores; no network)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "machine: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(rustc --version)"
echo "command: cargo bench --bench codec"
cargo bench --bench codec >/tmp/cpe-sim-bench-codec.log 2>&1 || { tail -20 /tmp/cpe-sim-bench-codec.log; exit 1; }
python3 - <<'PY'
import json, pathlib
floors = {
    "render_inform/tr181_bootstrap": 300e-9,
    "parse_inform_response/genieacs": 500e-9,
    "gpv/parse_and_respond_32_names": 15e-6,
}
def fmt(s):
    return f"{s*1e9:.0f} ns" if s < 1e-6 else f"{s*1e6:.2f} µs"
for est in sorted(pathlib.Path("target/criterion").glob("*/*/new/estimates.json")):
    name = f"{est.parts[-4]}/{est.parts[-3]}"
    median = json.loads(est.read_text())["median"]["point_estimate"] * 1e-9
    floor = floors.get(name)
    verdict = "" if floor is None else f"floor {fmt(floor)}: {'ok' if median <= floor else 'MISSED'} ({floor/median:.1f}x headroom)"
    print(f"{name:40} median {fmt(median):>10}   {verdict}")
PY
echo "command: cargo test --release --test alloc -- --nocapture"
cargo test --release --test alloc -- --nocapture 2>/dev/null | grep -E 'allocations|size_of'
