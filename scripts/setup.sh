#!/usr/bin/env bash
# Installs the Debian packages modelpool builds, tests and benches with.
# Idempotent: packages already present are not reinstalled. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config clang
  libboost-dev liburing-dev libspdlog-dev nlohmann-json3-dev libxxhash-dev libssl-dev
  libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev python3-yaml
  pybind11-dev python3-dev python3-numpy python3-pytest python3-matplotlib
  libsystemd-dev systemd
  libcurl4-openssl-dev nginx-light curl openssl
  prometheus
)
if [[ "${MODELPOOL_WITH_TORCH:-1}" == 1 ]]; then PACKAGES+=(python3-torch); fi
# The Node.js binding (clientlib/node). Debian's node-* packages depend on
# Debian's nodejs; where node came from elsewhere (a nodesource package) they
# cannot install, and the build fetches node-addon-api with npm instead.
NODE_PACKAGES=(nodejs node-addon-api)
if ! command -v node >/dev/null || dpkg-query -W -f='${Version}' nodejs 2>/dev/null | grep -q deb; then
  PACKAGES+=("${NODE_PACKAGES[@]}")
else
  echo "setup: node $(node --version) is not Debian's: skipping ${NODE_PACKAGES[*]}"
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=""
if [[ $(id -u) != 0 ]]; then SUDO=sudo; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# nginx is for the tests, which start their own on loopback: the package must
# not start a system-wide one on port 80 (policy-rc.d 101: "action forbidden",
# as in container images), nor fail to install where port 80 is taken.
# prometheus is there for its promtool (`promtool check metrics` on a scrape),
# and its server must not start either.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  trap '$SUDO rm -f "$policy"' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
