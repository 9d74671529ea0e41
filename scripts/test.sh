#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the real peers the tests drive, then runs
# `cargo test --locked` (extra arguments go to cargo test). .ci/run runs this after fmt and clippy.
#
# Peers: from Debian's packages, buildah, podman and runc (the container image test), chromium
# (the HTML report opened headless) and mosquitto (the MQTT broker of the USP tests); from PyPI,
# the Kubernetes manifest validator (kubernetes-validate, into target/test-tools/venv); from npm,
# the usp-js Controller (tests/usp-js, from its package-lock.json).
# Installing Debian packages needs root (or passwordless sudo); every test that needs a missing
# peer fails and names what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

debian=(buildah podman runc chromium mosquitto)
missing=()
for p in "${debian[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo -n)
  echo "test.sh: installing ${missing[*]} (Debian packages)" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    "${sudo[@]}" apt-get update >/dev/null
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

tools=target/test-tools
if [[ ! -x $tools/venv/bin/kubernetes-validate ]]; then
  echo "test.sh: installing kubernetes-validate (PyPI) into $tools/venv" >&2
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate
fi
export PATH="$PWD/$tools/venv/bin:$PATH"

if [[ ! -d tests/usp-js/node_modules ]]; then
  echo "test.sh: installing the usp-js Controller (npm ci in tests/usp-js)" >&2
  (cd tests/usp-js && npm ci --no-audit --no-fund --ignore-scripts >/dev/null)
fi

exec cargo test --locked "$@"
