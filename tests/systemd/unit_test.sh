#!/usr/bin/env bash
# File: tests/systemd/unit_test.sh
#
# The shipped systemd units (broker/deploy/systemd), as cmake configured them
# into the build tree: `systemd-analyze verify` accepts the service (with
# ExecStart pointed at the daemon just built, since the installed one need
# not exist) and the segment's mount unit (under its installed name), and
# `systemd-analyze security` rates the service's exposure at most 4.0
# (--threshold counts tenths). Also checks what the broker relies on:
# Type=notify, a RuntimeDirectory, a dedicated user, ExecReload sending
# SIGHUP, RemoveIPC=no so that the segment survives a restart, and a huge
# tmpfs for the segment that the service wants, may write and passes to the
# broker at the path the mount unit mounts it.
#   unit_test.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: unit_test.sh BUILD_DIR}
unit="$build/broker/modelpoold.service"
mount_unit="$build/broker/run-modelpool.tmpfs.mount"
[[ -f "$unit" ]] || { echo "FAIL: $unit was not configured"; exit 1; }
[[ -f "$mount_unit" ]] || { echo "FAIL: $mount_unit was not configured"; exit 1; }
if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze is not installed (Debian package systemd)"
  exit 77
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
sed -E "s|^ExecStart=[^ ]*/modelpoold|ExecStart=$build/broker/modelpoold|" "$unit" \
  > "$scratch/modelpoold.service"
where=$(sed -n 's/^Where=//p' "$mount_unit")
mount_name=$(systemd-escape --path --suffix=mount "$where")
cp "$mount_unit" "$scratch/$mount_name"

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

if out=$(systemd-analyze verify "$scratch/$mount_name" 2>&1); then
  echo "ok: systemd-analyze verify $mount_name"
else
  echo "FAIL: systemd-analyze verify $mount_name:"; echo "$out"; fail=1
fi
if grep -F "$mount_name" <<<"$out" | grep -q .; then
  echo "FAIL: systemd-analyze verify has remarks on the mount unit:"; echo "$out"; fail=1
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

# The segment's tmpfs: mounted on huge pages, for the service's user and the
# workers' group, wanted by the service (not required: the broker falls back
# to /dev/shm), ordered before it, writable in its sandbox, and passed to the
# broker as --huge-tmpfs.
has_mount_line() { grep -qxF "$1" "$scratch/$mount_name"; }
options=",$(sed -n 's/^Options=//p' "$mount_unit"),"
check "the mount unit is at /run/modelpool.tmpfs" test "$where" = /run/modelpool.tmpfs
check "the mount unit is named after its path" test "$mount_name" = "$(basename "$mount_unit")"
check "Type=tmpfs" has_mount_line "Type=tmpfs"
check "huge=within_size" grep -qF ",huge=within_size," <<<"$options"
check "uid=modelpool,gid=mlworkers,mode=0750" \
  bash -c '[[ $1 == *,uid=modelpool,* && $1 == *,gid=mlworkers,* && $1 == *,mode=0750,* ]]' _ "$options"
check "Wants= the mount" has_line "Wants=$mount_name"
check "After= the mount" has_line "After=$mount_name"
check "ReadWritePaths has the mount" grep -qE "^ReadWritePaths=.* -?${where//./\\.}( |\$)" \
  "$scratch/modelpoold.service"
check "--huge-tmpfs $where" grep -qF -- "--huge-tmpfs $where " "$scratch/modelpoold.service"
exit "$fail"
