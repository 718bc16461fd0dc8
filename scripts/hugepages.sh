#!/usr/bin/env bash
# File: scripts/hugepages.sh
#
# Sets up (and tears down) a filesystem on 2 MiB pages for a modelpool
# segment (modelpoold --segment-dir DIR; docs/hugepages.md). Root only. The
# one place that knows how: the bench harness and the tests call it too.
#
#   scripts/hugepages.sh up --size 4G --kind tmpfs|hugetlbfs --dir /mnt/modelpool-huge
#                           [--pagesize 2M|1G] [--pages N] [--huge always|never]
#                           [--owner USER[:GROUP]] [--mode 0755]
#   scripts/hugepages.sh down --dir /mnt/modelpool-huge [--force]
#   scripts/hugepages.sh status [--dir DIR]
#
# up, tmpfs:     mounts a tmpfs with huge=always and size=SIZE on DIR, and
#                checks that the kernel kept huge=always. --huge never mounts
#                a plain tmpfs (huge=never) instead, e.g. a small scratch one.
# up, hugetlbfs: adds SIZE/pagesize pages to the kernel's huge page pool
#                (nr_hugepages of that page size), then mounts hugetlbfs with
#                pagesize= and size=SIZE on DIR. --pages N adds N pages
#                instead; with --pages, --size may be left out: the mount
#                then has no size= limit.
# down:          unmounts DIR (refused while files are in it, unless --force;
#                with --force, a mount still in use is detached, umount -l)
#                and, for hugetlbfs, gives the pages back: nr_hugepages gets
#                its previous value again (when something else changed it in
#                between, only the pages `up` added are taken back).
# SIZE is the whole mount: the budget plus the segment's header and catalog
# (~10 MiB with the default catalog); without --memory the broker takes all.
# What `up` did is kept in $MODELPOOL_HUGEPAGES_STATE_DIR (default
# /run/modelpool-hugepages), one file per DIR, for `down`.
# Exit status: 0 done, 1 failed, 2 bad usage, 3 this host cannot (not root,
# huge pages denied or not available, too little memory for the pages).
set -euo pipefail

state_root=${MODELPOOL_HUGEPAGES_STATE_DIR:-/run/modelpool-hugepages}

die() {
  local code=$1; shift
  echo "hugepages.sh: $*" >&2
  exit "$code"
}
note() { echo "hugepages.sh: $*" >&2; }
# The synopsis (usage) or the whole header comment (--help).
usage() { sed -n '/^#   scripts\/hugepages.sh up/,/^#$/{/^#$/d;s/^#   //;p}' "$0" >&2; exit 2; }
help() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0; }

# SIZE with an optional K/M/G/T suffix (powers of 1024) -> bytes.
to_bytes() {
  local v=${1^^} mult=1
  v=${v%B}; v=${v%I}
  case $v in
    *K) mult=$((1 << 10)); v=${v%K} ;;
    *M) mult=$((1 << 20)); v=${v%M} ;;
    *G) mult=$((1 << 30)); v=${v%G} ;;
    *T) mult=$((1 << 40)); v=${v%T} ;;
  esac
  [[ $v =~ ^[0-9]+$ && $v -gt 0 ]] || die 2 "bad size '$1' (want e.g. 512M, 4G)"
  echo $((v * mult))
}

human() { numfmt --to=iec-i --suffix=B "$1" 2>/dev/null || echo "$1 bytes"; }

state_file() { echo "$state_root/${1//\//%}.state"; }

is_mountpoint() { awk -v d="$1" '$2 == d { found = 1 } END { exit !found }' /proc/mounts; }

mount_options() { awk -v d="$1" '$2 == d { o = $4 } END { print o }' /proc/mounts; }

need_root() { [[ $(id -u) -eq 0 ]] || die 3 "$1 needs root"; }

# Sets nr_hugepages in sysfs dir $1 to $2; prints what the kernel granted.
set_pool() {
  echo "$2" >"$1/nr_hugepages" 2>/dev/null || true
  cat "$1/nr_hugepages"
}

mount_opts_owner() {
  local opts="mode=$mode"
  if [[ -n $owner ]]; then
    local user=${owner%%:*} group=""
    [[ $owner == *:* ]] && group=${owner#*:}
    opts+=",uid=$(id -u "$user")"
    opts+=",gid=$(if [[ -n $group ]]; then getent group "$group" | cut -d: -f3; else id -g "$user"; fi)"
  fi
  echo "$opts"
}

up_tmpfs() {
  local enabled=/sys/kernel/mm/transparent_hugepage/shmem_enabled
  if [[ $huge == always ]]; then
    [[ -r $enabled ]] ||
      { cleanup_dir; die 3 "this kernel has no transparent huge pages for tmpfs ($enabled)"; }
    grep -q '\[deny\]' "$enabled" &&
      { cleanup_dir; die 3 "huge pages on tmpfs are denied ($enabled says deny)"; }
  fi
  mount -t tmpfs -o "size=$bytes,huge=$huge,$(mount_opts_owner)" modelpool-huge "$dir" ||
    { cleanup_dir; die 1 "mount -t tmpfs on $dir failed"; }
  if [[ $huge == always && ,$(mount_options "$dir"), != *,huge=always,* ]]; then
    local opts; opts=$(mount_options "$dir")
    umount "$dir"; cleanup_dir
    die 3 "the kernel ignored huge=always on $dir (options: $opts)"
  fi
  printf 'kind=tmpfs\ndir=%s\ncreated_dir=%s\n' "$dir" "$created_dir" >"$state"
  note "$dir: tmpfs, huge=$huge, size $(human "$bytes")"
}

up_hugetlbfs() {
  local kb=$((page_bytes >> 10))
  local pool=/sys/kernel/mm/hugepages/hugepages-${kb}kB
  [[ -d $pool ]] || { cleanup_dir; die 3 "this kernel has no ${kb} kB huge pages ($pool missing)"; }
  local pages=${add_pages:-$(((bytes + page_bytes - 1) / page_bytes))}
  local limit=""  # size=, rounded up to whole pages; none without --size
  [[ -n $bytes ]] && limit=",size=$(((bytes + page_bytes - 1) / page_bytes * page_bytes))"
  local prev; prev=$(cat "$pool/nr_hugepages")
  local want=$((prev + pages)) got
  got=$(set_pool "$pool" "$want")
  if ((got < want)); then  # fragmented: compact once and retry
    echo 1 >/proc/sys/vm/compact_memory 2>/dev/null || true
    got=$(set_pool "$pool" "$want")
  fi
  if ((got < want)); then
    set_pool "$pool" "$prev" >/dev/null; cleanup_dir
    die 3 "the kernel could only add $((got - prev)) of $pages huge pages of ${kb} kB" \
      "(too little free or too fragmented memory); nr_hugepages restored to $prev"
  fi
  if ! mount -t hugetlbfs -o "pagesize=${kb}K$limit,$(mount_opts_owner)" \
      modelpool-huge "$dir"; then
    set_pool "$pool" "$prev" >/dev/null; cleanup_dir
    die 1 "mount -t hugetlbfs on $dir failed; nr_hugepages restored to $prev"
  fi
  printf 'kind=hugetlbfs\ndir=%s\ncreated_dir=%s\npool=%s\nprev=%s\nset=%s\nadded=%s\n' \
    "$dir" "$created_dir" "$pool" "$prev" "$want" "$pages" >"$state"
  note "$dir: hugetlbfs, $pages pages of ${kb} kB (nr_hugepages $prev -> $want)"
}

cleanup_dir() {
  if [[ $created_dir == 1 ]]; then rmdir "$dir" 2>/dev/null || true; fi
}

cmd_up() {
  [[ -n $kind && -n $dir ]] || usage
  [[ -n $size || ($kind == hugetlbfs && -n $add_pages) ]] || usage
  bytes=""
  [[ -n $size ]] && bytes=$(to_bytes "$size")
  page_bytes=$(to_bytes "$pagesize")
  [[ $kind == tmpfs || $kind == hugetlbfs ]] || die 2 "--kind must be tmpfs or hugetlbfs"
  [[ $kind == tmpfs && $pagesize != 2M ]] && die 2 "--pagesize applies to hugetlbfs only"
  [[ $kind == tmpfs && -n $add_pages ]] && die 2 "--pages applies to hugetlbfs only"
  [[ $kind == hugetlbfs && -n $huge ]] && die 2 "--huge applies to tmpfs only"
  [[ -z $add_pages || $add_pages =~ ^[0-9]+$ ]] || die 2 "bad --pages '$add_pages' (want a count)"
  huge=${huge:-always}
  [[ $huge == always || $huge == never ]] || die 2 "--huge must be always or never"
  need_root "mounting a $kind"
  state=$(state_file "$dir")
  [[ -e $state ]] && die 1 "$dir is already set up ($state); run down first"
  is_mountpoint "$dir" && die 1 "something is already mounted on $dir"
  mkdir -p "$state_root"
  created_dir=0
  if [[ ! -d $dir ]]; then mkdir -p "$dir"; created_dir=1; fi
  "up_$kind"
}

cmd_down() {
  [[ -n $dir ]] || usage
  need_root "unmounting"
  state=$(state_file "$dir")
  [[ -r $state ]] || die 1 "$dir was not set up by hugepages.sh (no $state)"
  local kind="" created_dir=0 pool="" prev=0 set=0 added=0
  while IFS='=' read -r k v; do
    case $k in kind|created_dir|pool|prev|set|added) printf -v "$k" '%s' "$v" ;; esac
  done <"$state"
  if is_mountpoint "$dir"; then
    local files; files=$(find "$dir" -mindepth 1 -maxdepth 1 -printf '%f ')
    if [[ $force != 1 && -n $files ]]; then
      die 1 "$dir still holds ${files}(a broker's segment? stop the broker, or --force to discard)"
    fi
    if ! umount "$dir"; then
      [[ $force == 1 ]] ||
        die 1 "umount $dir failed (still in use?); nothing given back yet (--force detaches it)"
      umount -l "$dir" || die 1 "umount -l $dir failed; nothing given back yet"
      note "$dir was still in use: detached (umount -l); its memory goes when its last user does"
    fi
  else
    note "$dir was not mounted any more"
  fi
  if [[ $kind == hugetlbfs ]]; then
    local now back; now=$(cat "$pool/nr_hugepages")
    if ((now == set)); then
      back=$prev
    else
      back=$((now > added ? now - added : 0))
      note "nr_hugepages changed since up (set to $set, now $now):" \
        "taking back only the $added pages up added"
    fi
    local got; got=$(set_pool "$pool" "$back")
    ((got == back)) ||
      note "nr_hugepages is $got, not $back: pages still in use are freed when released"
    note "nr_hugepages $now -> $got"
  fi
  cleanup_dir
  rm -f "$state"
  note "$dir: down"
}

cmd_status() {
  grep -h -E '^(HugePages_|Hugepagesize|ShmemHugePages|ShmemPmdMapped)' /proc/meminfo
  local f
  for f in "$state_root"/*.state; do
    [[ -e $f ]] || continue
    local d; d=$(sed -n 's/^dir=//p' "$f")
    [[ -z $dir || $d == "$dir" ]] || continue
    echo "$d: $(sed -n 's/^kind=//p' "$f"), $(is_mountpoint "$d" && mount_options "$d" || echo 'not mounted')"
  done
}

[[ $# -ge 1 ]] || usage
action=$1; shift
[[ $action == -h || $action == --help ]] && help
size="" kind="" dir="" pagesize=2M add_pages="" huge="" owner="" mode=0755 force=0
while [[ $# -gt 0 ]]; do
  [[ $1 == --force || $1 == -h || $1 == --help || $# -ge 2 ]] || die 2 "$1 needs a value"
  case $1 in
    --size) size=${2:-}; shift 2 ;;
    --kind) kind=${2:-}; shift 2 ;;
    --dir) dir=${2:-}; shift 2 ;;
    --pagesize) pagesize=${2:-}; shift 2 ;;
    --pages) add_pages=${2:-}; shift 2 ;;
    --huge) huge=${2:-}; shift 2 ;;
    --owner) owner=${2:-}; shift 2 ;;
    --mode) mode=${2:-}; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) help ;;
    *) die 2 "unknown option $1" ;;
  esac
done
if [[ -n $dir ]]; then
  [[ $dir == /* ]] || dir=$PWD/$dir
  dir=${dir%/}
fi

case $action in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) usage ;;
esac
