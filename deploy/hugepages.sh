#!/usr/bin/env bash
# Reserves 2 MiB hugepages for Sluice's buffer pools (hugepages = auto or
# require in the broker config), or gives them back.
#
# Usage: deploy/hugepages.sh PAGES          at least PAGES 2 MiB pages
#        deploy/hugepages.sh --bytes SIZE   enough pages for SIZE (bytes, or
#                                           with a K, M or G suffix: 512M)
#        deploy/hugepages.sh --release      give every free 2 MiB page back
#        deploy/hugepages.sh --status       only show what is reserved
#
# Idempotent: it never lowers a reserve that is already large enough (other
# programs may use it), so running it again changes nothing. It also mounts
# hugetlbfs at /dev/hugepages when no hugetlbfs is mounted: Sluice maps
# hugepages with MAP_HUGETLB, which needs no mount, but libhugetlbfs falls
# back to a mount on kernels or page sizes where that does not work.
#
# The reserve lasts until reboot. To keep it, add vm.nr_hugepages=N to
# /etc/sysctl.d/ (or hugepages=N to the kernel command line, which also
# avoids the fragmentation that can leave a late reserve short).
set -euo pipefail

page_kb=2048
sysfs=/sys/kernel/mm/hugepages/hugepages-${page_kb}kB
mnt=/dev/hugepages

usage() {
  sed -n '5,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

show() {
  grep -E '^(HugePages_|Hugepagesize|Hugetlb)' /proc/meminfo | sed 's/^/  /'
}

# Bytes, with an optional K/M/G suffix (powers of 1024), as a page count
# rounded up.
pages_for() {
  local s=$1 n mult=1
  case "$s" in
    *[kK]) n=${s%?}; mult=1024 ;;
    *[mM]) n=${s%?}; mult=$((1024 * 1024)) ;;
    *[gG]) n=${s%?}; mult=$((1024 * 1024 * 1024)) ;;
    *) n=$s ;;
  esac
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "hugepages.sh: '$s' is not a size" >&2; exit 2; }
  local bytes=$((n * mult)) page=$((page_kb * 1024))
  echo $(((bytes + page - 1) / page))
}

ensure_mount() {
  if awk '$3 == "hugetlbfs" { found = 1 } END { exit !found }' /proc/mounts; then
    echo "hugetlbfs already mounted: $(awk '$3 == "hugetlbfs" { print $2 }' /proc/mounts | paste -sd ' ')"
    return
  fi
  mkdir -p "$mnt"
  if mount -t hugetlbfs -o pagesize=2M nodev "$mnt"; then
    echo "mounted hugetlbfs at $mnt"
  else
    # Not fatal: MAP_HUGETLB works without it (containers often cannot mount).
    echo "could not mount hugetlbfs at $mnt; MAP_HUGETLB will be used without it" >&2
  fi
}

# The kernel takes what it is asked for while it can, and hugepages are
# never swapped or reclaimed: a reserve that eats the memory programs need
# ends in the OOM killer. Refuse more than 90% of what is available now.
check_room() { # pages wanted, pages held
  local avail_kb extra_kb
  avail_kb=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
  extra_kb=$((($1 - $2) * page_kb))
  if [ "$extra_kb" -gt $((avail_kb * 9 / 10)) ]; then
    echo "hugepages.sh: $1 pages need $((extra_kb / 1024)) MiB more, but only" \
      "$((avail_kb / 1024)) MiB is available; not reserving (ask for fewer)" >&2
    exit 1
  fi
}

reserve() { # pages
  local want=$1 have
  have=$(cat "$sysfs/nr_hugepages")
  if [ "$have" -lt "$want" ]; then
    check_room "$want" "$have"
  fi
  if [ "$have" -ge "$want" ]; then
    echo "already reserved: $have 2 MiB pages (asked for $want), nothing changed"
  else
    echo "$want" > "$sysfs/nr_hugepages"
    have=$(cat "$sysfs/nr_hugepages")
    if [ "$have" -lt "$want" ]; then
      # Memory too fragmented for 2 MiB pages: compact it and try once more.
      echo 1 > /proc/sys/vm/compact_memory 2>/dev/null || true
      echo "$want" > "$sysfs/nr_hugepages"
      have=$(cat "$sysfs/nr_hugepages")
    fi
    echo "reserved $have 2 MiB pages ($((have * 2)) MiB), asked for $want"
  fi
  ensure_mount
  echo "/proc/meminfo:"
  show
  if [ "$have" -lt "$want" ]; then
    echo "hugepages.sh: only $have of $want pages could be reserved (not enough free," \
      "unfragmented memory); reserve them at boot with hugepages=$want" >&2
    exit 1
  fi
}

release() {
  local had
  had=$(cat "$sysfs/nr_hugepages")
  echo 0 > "$sysfs/nr_hugepages"
  local left
  left=$(cat "$sysfs/nr_hugepages")
  echo "released $((had - left)) of $had 2 MiB pages"
  if [ "$left" -gt 0 ]; then
    echo "$left are still in use; they return when the programs holding them exit"
  fi
  echo "/proc/meminfo:"
  show
}

[ $# -ge 1 ] || usage
if [ "$1" = --status ]; then
  show
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "hugepages.sh: reserving hugepages needs root (try: sudo $0 $*)" >&2
  exit 1
fi
if [ ! -w "$sysfs/nr_hugepages" ]; then
  echo "hugepages.sh: $sysfs/nr_hugepages is missing or read-only:" \
    "this kernel (or container) offers no 2 MiB hugepages to reserve" >&2
  exit 1
fi

case "$1" in
  --release) [ $# -eq 1 ] || usage; release ;;
  --bytes)
    [ $# -eq 2 ] || usage
    pages=$(pages_for "$2")
    reserve "$pages"
    ;;
  -h|--help) usage ;;
  *)
    if [ $# -ne 1 ] || ! [[ "$1" =~ ^[0-9]+$ ]]; then
      usage
    fi
    reserve "$1"
    ;;
esac
