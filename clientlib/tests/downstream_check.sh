#!/usr/bin/env bash
# File: clientlib/tests/downstream_check.sh
#
# Checks that an installed modelpool client can be used by a downstream
# project, the way a user would: find_package(modelpool) + modelpool::client
# from CMake, and `pkg-config --cflags --libs modelpool` from a plain compiler
# command, each for a C++ and a C program. The programs run against no broker
# and check the error they get (exceptions cross the library boundary with
# their code). Also checks that the installed headers do not leak internal
# dependencies and that modelpoolctl runs.
#
#   usage: downstream_check.sh PREFIX      (e.g. after cmake --install B --prefix PREFIX)
#
# Exits 0 when every check passes, non-zero at the first failure.
set -euo pipefail

if [[ $# -ne 1 || ! -d "$1" ]]; then
  echo "usage: $0 PREFIX (an install prefix of modelpool)" >&2
  exit 2
fi
prefix=$(cd "$1" && pwd)
work=$(mktemp -d /tmp/modelpool-downstream-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "downstream_check: FAIL: $*" >&2; exit 1; }
step() { echo "downstream_check: $*"; }

step "installed headers"
for h in client.hpp modelpool.h error_code.hpp; do
  [[ -f "$prefix/include/modelpool/$h" ]] || fail "missing include/modelpool/$h"
done
if grep -E '#include +[<"](nlohmann|shm/|clientlib/|boost)' "$prefix"/include/modelpool/*; then
  fail "an installed header includes an internal dependency"
fi

cat >"$work/cxx_user.cc" <<'EOF'
#include <modelpool/client.hpp>
#include <cstdio>
int main() {
  if (modelpool::to_string(modelpool::ErrorCode::kPoolFull) != "pool_full") return 3;
  try {
    modelpool::Client::connect("/nonexistent-modelpool-dir/pool.sock");
  } catch (const modelpool::Error& e) {
    if (e.code() != modelpool::ErrorCode::kUnavailable) return 4;
    std::printf("cxx ok: %s: %s\n", std::string(e.code_name()).c_str(), e.what());
    return 0;
  }
  return 5;
}
EOF
cat >"$work/c_user.c" <<'EOF'
#include <modelpool/modelpool.h>
#include <stdio.h>
int main(void) {
  mp_client* client = NULL;
  int rc = mp_connect("/nonexistent-modelpool-dir/pool.sock", &client);
  if (mp_abi_version() != MODELPOOL_ABI_VERSION) return 3;
  if (rc != MP_UNAVAILABLE || client != NULL) return 4;
  printf("c ok: %s: %s\n", mp_error_name(rc), mp_last_error_message());
  return 0;
}
EOF

step "CMake: find_package(modelpool) + modelpool::client"
mkdir -p "$work/cmake"
cat >"$work/cmake/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.20)
project(modelpool_downstream LANGUAGES C CXX)
find_package(modelpool 0.1 REQUIRED CONFIG)
add_executable(cxx_user "$work/cxx_user.cc")
target_link_libraries(cxx_user PRIVATE modelpool::client)
add_executable(c_user "$work/c_user.c")
target_link_libraries(c_user PRIVATE modelpool::client)
EOF
cmake -S "$work/cmake" -B "$work/cmake/build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log" >&2; fail "cmake configure"; }
cmake --build "$work/cmake/build" >>"$work/cmake.log" 2>&1 || { cat "$work/cmake.log" >&2; fail "cmake build"; }
"$work/cmake/build/cxx_user" || fail "C++ program built with CMake"
"$work/cmake/build/c_user" || fail "C program built with CMake"

step "pkg-config --cflags --libs modelpool"
pcdir=$(dirname "$(find "$prefix" -name modelpool.pc -path '*pkgconfig*' | head -n 1)")
[[ -f "$pcdir/modelpool.pc" ]] || fail "no modelpool.pc under $prefix"
export PKG_CONFIG_PATH="$pcdir"
flags=$(pkg-config --cflags --libs modelpool) || fail "pkg-config"
libdir=$(pkg-config --variable=libdir modelpool)
[[ -f "$libdir/libmodelpool_client.so" ]] || fail "pkg-config libdir $libdir has no library"
# shellcheck disable=SC2086  # $flags is a list of words
"${CXX:-c++}" -std=c++20 -Wall -Werror "$work/cxx_user.cc" -o "$work/cxx_pc" $flags \
  -Wl,-rpath,"$libdir" || fail "C++ compile with pkg-config flags"
# shellcheck disable=SC2086
"${CC:-cc}" -std=c99 -Wall -Werror -pedantic "$work/c_user.c" -o "$work/c_pc" $flags \
  -Wl,-rpath,"$libdir" || fail "C compile with pkg-config flags"
"$work/cxx_pc" || fail "C++ program built with pkg-config"
"$work/c_pc" || fail "C program built with pkg-config"

step "modelpoolctl"
"$prefix/bin/modelpoolctl" --help >/dev/null || fail "modelpoolctl --help"
set +e
"$prefix/bin/modelpoolctl" --socket /nonexistent-modelpool-dir/a.sock health 2>/dev/null
rc=$?
set -e
[[ $rc -eq 3 ]] || fail "modelpoolctl without a broker exited $rc, want 3"

step "all checks passed"
