#!/usr/bin/env bash
# File: clientlib/python/tests/venv/venv_install_test.sh
#
# The Python package installed the way a worker installs it, offline: in a
# `python3 -m venv` of an interpreter other than Debian's (the first on PATH
# with the wheel's Python version: pyenv's, conda's, a venv's base), with
# `pip install --no-index`, first the wheel this build made, then from the
# source tree through the in-tree build backend (reusing this build tree).
# Each time installed_worker.py reads a model's bytes from a real broker.
# Then a venv of Debian's python3 that sees its numpy and torch
# (--system-site-packages) installs the wheel and reads tensors with both.
# ctest python.venv_install (clientlib/python/CMakeLists.txt).
#   venv_install_test.sh MODELPOOLD WHEEL SOURCE_DIR BUILD_DIR
set -euo pipefail
broker=${1:?usage: venv_install_test.sh MODELPOOLD WHEEL SOURCE_DIR BUILD_DIR}
wheel=${2:?} tree=${3:?} build_dir=${4:?}
here=$(cd "$(dirname "$0")" && pwd)
worker=$here/installed_worker.py

# modelpool-0.1.0-cp311-cp311-linux_x86_64.whl -> 3.11
tag=$(basename "$wheel" | cut -d- -f3)
want="${tag:2:1}.${tag:3}"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# Nothing from the machine's pip configuration or an index; nothing from
# the build tree on sys.path.
unset PYTHONPATH PYTHONHOME PIP_FIND_LINKS PIP_INDEX_URL PIP_EXTRA_INDEX_URL VIRTUAL_ENV
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
export PYTHONDONTWRITEBYTECODE=1

say() { echo "venv_install: $*"; }

# Prints "EXECUTABLE BASE_PREFIX X.Y" for a python command, or fails.
describe() {
  "$1" -c 'import sys; print(sys.executable, sys.base_prefix, "%d.%d" % sys.version_info[:2])' \
    2>/dev/null
}

# The first python3.X or python3 on PATH that is not Debian's (its base
# prefix is not /usr) and has the wheel's version.
other_python() {
  local name cmd exe base ver
  for name in "python$want" python3; do
    cmd=$(command -v "$name") || continue
    read -r exe base ver < <(describe "$cmd") || continue
    if [[ $ver == "$want" && $base != /usr ]]; then
      echo "$exe"
      return 0
    fi
  done
  return 1
}

# make_venv DIR PYTHON [venv options]: false when this interpreter cannot.
make_venv() {
  local dir=$1 py=$2
  shift 2
  "$py" -m venv "$@" "$dir" >"$scratch/venv.log" 2>&1 || {
    say "$py -m venv failed:"; cat "$scratch/venv.log"; return 1; }
}

pip_install() {  # pip_install VENV ARGS...
  local venv=$1
  shift
  "$venv/bin/python" -m pip install --no-index --no-cache-dir --quiet "$@"
}

ran=0
if py=$(other_python); then
  say "interpreter $py ($(describe "$py" | cut -d' ' -f3)), not Debian's"
else
  py=/usr/bin/python3
  say "no python$want other than Debian's on PATH; using $py"
fi
if make_venv "$scratch/other" "$py"; then
  pip_install "$scratch/other" "$wheel"
  say "installed $(basename "$wheel") with pip --no-index"
  "$scratch/other/bin/python" "$worker" "$broker"
  pip_install "$scratch/other" --force-reinstall --config-settings "build-dir=$build_dir" \
    "$tree/clientlib/python"
  say "installed from the source tree with pip --no-index (in-tree backend)"
  "$scratch/other/bin/python" "$worker" "$broker"
  ran=1
fi

# numpy and torch: Debian's, seen from a venv.
if [[ -x /usr/bin/python3 ]] &&
   make_venv "$scratch/debian" /usr/bin/python3 --system-site-packages; then
  require=()
  /usr/bin/python3 -c 'import numpy' 2>/dev/null && require+=(--require-numpy)
  /usr/bin/python3 -c 'import torch' 2>/dev/null && require+=(--require-torch)
  pip_install "$scratch/debian" "$wheel"
  say "venv of /usr/bin/python3 with its site packages: installed $(basename "$wheel")"
  "$scratch/debian/bin/python" "$worker" "$broker" "${require[@]}"
  ran=1
fi

if ((ran == 0)); then
  say "SKIP: no interpreter here can make a venv (Debian: python3-venv)"
  exit 77
fi
