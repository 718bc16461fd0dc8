#!/usr/bin/env bash
# Builds the Node.js binding with Debian's own node (bookworm: nodejs 18,
# libnode-dev, node-addon-api) and runs its tests (`npm test`'s command)
# against a build tree's broker, on a machine whose node comes from elsewhere
# (nodesource's, which Debian's nodejs conflicts with). Nothing is installed:
# apt-get download fetches Debian's packages, dpkg -x unpacks them into a
# scratch directory, and node runs from there in a private mount namespace
# where the unpacked usr/share overlays /usr/share (Debian's node loads
# acorn, cjs-module-lexer and undici from /usr/share/nodejs). The addon is
# built as `npm install` builds it (CMakeLists.txt standalone, the client
# library of the build tree), with node's headers from the unpacked
# libnode-dev and Debian's node-addon-api. Needs root (unshare, mount).
#   ./scripts/test-node-debian.sh [BUILD_DIR]    default: build
# Exits 77 (skipped, and says why) where it cannot or need not run: not root,
# apt knows no Debian nodejs, or node is Debian's own already (then the
# ctest node_binding runs on it). ctest runs it as node_binding.debian_node18.
# MODELPOOL_DEBIAN_NODE_DIR: unpack and build there and keep it (default: a
# temporary directory, removed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

build=$(realpath "${1:-build}")
if [[ ! -x $build/broker/modelpoold || ! -e $build/clientlib/libmodelpool_client.so ]]; then
  echo "test-node-debian: no modelpool build in $build (cmake --build it first)" >&2
  exit 2
fi

skip() {
  echo "test-node-debian: skipped: $1"
  exit 77
}
if [[ $(id -u) != 0 ]]; then skip "needs root (a private mount namespace)"; fi
if dpkg-query -W -f='${Version}' nodejs 2>/dev/null | grep -q dfsg; then
  skip "node is Debian's own: the tests run on it as they are"
fi
# Debian's nodejs is the dfsg repack; the newest first.
version=$(apt-cache madison nodejs 2>/dev/null | awk -F' [|] ' '$2 ~ /dfsg/ { print $2; exit }')
if [[ -z $version ]]; then skip "apt knows no Debian nodejs (apt-get update?)"; fi
libnode=$(apt-cache show "nodejs=$version" | sed -n 's/^Depends:.*\(libnode[0-9]*\) (=.*/\1/p')
pkgs=("nodejs=$version" "$libnode=$version" "libnode-dev=$version" node-addon-api)
# libnode's dependencies this machine lacks (libc-ares2, the node-* packages
# of its externalized builtins, ...).
for dep in $(apt-cache depends "$libnode=$version" | sed -n 's/^ *Depends: \([^< ]*\)$/\1/p'); do
  dpkg-query -W -f='${Status}' "$dep" 2>/dev/null | grep -q 'ok installed' || pkgs+=("$dep")
done

scratch=${MODELPOOL_DEBIAN_NODE_DIR:-}
if [[ -z $scratch ]]; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
fi
rm -rf "$scratch/debs" "$scratch/root"  # from an earlier run
mkdir -p "$scratch/debs" "$scratch/root"
scratch=$(realpath "$scratch")
(cd "$scratch/debs" && apt-get download -q -o APT::Sandbox::User=root "${pkgs[@]}" >/dev/null)
for deb in "$scratch"/debs/*.deb; do dpkg -x "$deb" "$scratch/root"; done
root=$scratch/root
libdir=$(dirname "$(find "$root/usr/lib" -name 'libnode.so.*' -print -quit)")
if LD_LIBRARY_PATH=$libdir ldd "$root/usr/bin/node" | grep 'not found'; then
  echo "test-node-debian: Debian's node lacks the libraries above" >&2
  exit 1
fi

export ROOT=$root LIBDIR=$libdir SCRATCH=$scratch MODELPOOL_BUILD_DIR=$build
# shellcheck disable=SC2016  # the inner shell expands them
unshare --mount --propagation private bash -euo pipefail -c '
  mount -t overlay overlay -o "lowerdir=$ROOT/usr/share:/usr/share" /usr/share
  export PATH=$ROOT/usr/bin:$PATH LD_LIBRARY_PATH=$LIBDIR
  echo "test-node-debian: node $(node --version), $(dpkg-deb -f "$SCRATCH"/debs/nodejs_*.deb Version)"
  cmake -S clientlib/node -B "$SCRATCH/addon" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DMODELPOOL_NODE_EXECUTABLE="$ROOT/usr/bin/node" | grep "modelpool node"
  cmake --build "$SCRATCH/addon" --target modelpool_node >/dev/null
  cd clientlib/node
  export MODELPOOL_NODE_ADDON=$SCRATCH/addon/modelpool.node
  export MODELPOOL_TEST_BROKER=$MODELPOOL_BUILD_DIR/broker/modelpoold
  sh -c "$(node -p "require(\"./package.json\").scripts.test")"
'
