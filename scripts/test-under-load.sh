#!/usr/bin/env bash
# Runs the whole test suite R times in a row while N busy loops occupy the CPUs.
#
#   scripts/test-under-load.sh [HOGS] [RUNS]     (defaults: 2 busy loops, 3 runs)
#
# Each busy loop is bounded by `timeout` and killed by its pid when the script exits, however it
# exits. Stops at, and exits non-zero on, the first failing run. Build first (`cargo test
# --no-run`) so that the runs measure the tests, not the compiler under load.
set -euo pipefail

hogs=${1:-2}
runs=${2:-3}
limit=${HOG_TIMEOUT:-1800}   # seconds; a safety bound should the trap never run

cd "$(dirname "$0")/.."
# The peers the tests drive are scripts/test.sh's to install; its PyPI tool lives in the venv.
if [[ ! -x target/test-tools/venv/bin/kubernetes-validate ]]; then
    echo "test-under-load: run scripts/test.sh once first: it installs the peers the tests drive" >&2
    exit 1
fi
export PATH="$PWD/target/test-tools/venv/bin:$PATH"
cargo test --no-run --quiet

pids=()
stop_hogs() {
    if ((${#pids[@]})); then
        kill "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
}
trap stop_hogs EXIT
trap 'exit 130' INT TERM

for ((i = 0; i < hogs; i++)); do
    timeout "$limit" sh -c 'while :; do :; done' &
    pids+=("$!")
done
echo "test-under-load: ${hogs} busy loop(s) (pids ${pids[*]}), ${runs} run(s)" >&2

for ((r = 1; r <= runs; r++)); do
    echo "test-under-load: run ${r}/${runs}" >&2
    if ! cargo test; then
        echo "test-under-load: run ${r}/${runs} failed with ${hogs} busy loop(s)" >&2
        exit 1
    fi
done
echo "test-under-load: ${runs} run(s) passed with ${hogs} busy loop(s)" >&2
