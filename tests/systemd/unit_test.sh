#!/usr/bin/env bash
# File: tests/systemd/unit_test.sh
#
# The shipped systemd unit (broker/deploy/systemd), as cmake configured it
# into the build tree: `systemd-analyze verify` accepts it (with ExecStart
# pointed at the daemon just built, since the installed one need not exist),
# and `systemd-analyze security` rates its exposure at most 4.0 (--threshold
# counts tenths). Also checks what the broker relies on: Type=notify, a
# RuntimeDirectory, a dedicated user, ExecReload sending SIGHUP, and
# RemoveIPC=no so that the segment survives a restart.
#   unit_test.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: unit_test.sh BUILD_DIR}
unit="$build/broker/modelpoold.service"
[[ -f "$unit" ]] || { echo "FAIL: $unit was not configured"; exit 1; }
if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze is not installed (Debian package systemd)"
  exit 77
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
sed -E "s|^ExecStart=[^ ]*/modelpoold|ExecStart=$build/broker/modelpoold|" "$unit" \
  > "$scratch/modelpoold.service"

fail=0
check() {  # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}
has_line() { grep -qxF "$1" "$scratch/modelpoold.service"; }

if out=$(systemd-analyze verify "$scratch/modelpoold.service" 2>&1); then
  echo "ok: systemd-analyze verify"
else
  echo "FAIL: systemd-analyze verify:"; echo "$out"; fail=1
fi
# Only complaints about this unit count: verify also reports on units of the
# host it loads alongside (their own problems).
if grep -F "modelpoold.service" <<<"$out" | grep -q .; then
  echo "FAIL: systemd-analyze verify has remarks on the unit:"; echo "$out"; fail=1
fi

if security=$(systemd-analyze security --offline=true --threshold=40 \
                "$scratch/modelpoold.service" 2>&1); then
  echo "ok: $(grep -F 'Overall exposure level' <<<"$security")"
else
  echo "FAIL: exposure over 4.0:"; echo "$security"; fail=1
fi

check "Type=notify" has_line "Type=notify"
check "RuntimeDirectory=modelpool" has_line "RuntimeDirectory=modelpool"
check "User=modelpool" has_line "User=modelpool"
check "ExecReload sends SIGHUP" has_line 'ExecReload=/bin/kill -HUP $MAINPID'
check "RemoveIPC=no" has_line "RemoveIPC=no"
check "a watchdog" grep -qE '^WatchdogSec=[1-9]' "$scratch/modelpoold.service"
exit "$fail"
