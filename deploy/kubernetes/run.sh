#!/usr/bin/env bash
# Runs a scenario as a Kubernetes Indexed Job of N slices and merges their reports.
#
#   deploy/kubernetes/run.sh SCENARIO.yaml [SLICES] [ACS_URL]
#
# Needs kubectl with a context whose namespace holds the image (cpe-sim:latest, or set IMAGE) and
# a ReadWriteMany storage class for results-pvc.yaml. Each run gets its own directory on the
# results volume (RUN_NAME), every slice waits for the same start time (LEAD seconds from now,
# default 60: time for the pods to be scheduled and pull the image), and the merged report is
# printed at the end (and kept as fleet.json in the run's directory).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
scenario="${1:?usage: run.sh SCENARIO.yaml [SLICES] [ACS_URL]}"
slices="${2:-4}"
acs_url="${3:-}"
image="${IMAGE:-cpe-sim:latest}"
lead="${LEAD:-60}"
[[ -f "$scenario" ]] || { echo "run.sh: $scenario is not a file" >&2; exit 2; }
[[ "$slices" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: SLICES must be a whole number ≥ 1" >&2; exit 2; }

run_name="cpe-sim-$(date -u +%Y%m%d-%H%M%S)"
start_at="$(date -u -d "+${lead} seconds" +%Y-%m-%dT%H:%M:%SZ)"
echo "run.sh: run $run_name, $slices slices, starting at $start_at" >&2

kubectl delete job cpe-sim cpe-sim-merge --ignore-not-found --wait=true >/dev/null
kubectl create configmap cpe-sim-scenario --from-file=scenario.yaml="$scenario" --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -f "$here/env-configmap.yaml"
patch="{\"data\":{\"RUN_NAME\":\"$run_name\",\"CPE_SIM_START_AT\":\"$start_at\""
[[ -n "$acs_url" ]] && patch+=",\"CPE_SIM_ACS_URL\":\"$acs_url\""
kubectl patch configmap cpe-sim-env --type merge -p "$patch}}"
kubectl apply -f "$here/results-pvc.yaml"

# The Job with this run's slice count and image.
sed -e "s/^  completions: .*/  completions: $slices/" \
    -e "s/^  parallelism: .*/  parallelism: $slices/" \
    -e "/name: CPE_SIM_SLICES/{n;s/value: .*/value: \"$slices\"/}" \
    -e "s|image: cpe-sim:latest|image: $image|" \
    "$here/job.yaml" | kubectl apply -f -
kubectl wait --for=condition=complete job/cpe-sim --timeout=24h &
ok=$!
kubectl wait --for=condition=failed job/cpe-sim --timeout=24h &
failed=$!
wait -n "$ok" "$failed" || true
kill "$ok" "$failed" 2>/dev/null || true
if kubectl get job cpe-sim -o jsonpath='{.status.conditions[?(@.type=="Failed")].status}' | grep -q True; then
  echo "run.sh: the fleet Job failed; kubectl logs -l job-name=cpe-sim shows why" >&2
  exit 1
fi

sed -e "s|image: cpe-sim:latest|image: $image|" "$here/merge-job.yaml" | kubectl apply -f -
kubectl wait --for=condition=complete job/cpe-sim-merge --timeout=10m
kubectl logs job/cpe-sim-merge
