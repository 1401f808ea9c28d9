#!/usr/bin/env bash
# Where the time goes (issue 6): a system-wide CPU profile of both cores
# while sluice-bench drives a fresh sluiced (flush=always) on loopback.
#
#   tests/bench/profile.sh [DATA_PARENT_DIR]
#
# Builds the release build (build-release/), then, for each workload, starts
# sluiced on an empty data directory in DATA_PARENT_DIR (default
# ./bench-data), warms up for a second, samples every CPU with
# `perf record -e cpu-clock -a` (the machine has no hardware counters) for
# PROFILE_SECONDS while the client runs, and stops the server. Workloads
# (1 KiB records, 1 partition, single client, as in compare.sh's goal rows):
#   produce   max-rate produce, acks=all
#   produce16 the same on 16 partitions
#   e2e       hot-tail consume: max-rate produce (acks=1) and a consumer
#             reading right behind it
#   one       one request in flight at ONE_RATE records/s, acks=all (where
#             the CPU goes between requests; the wait for the disk shows
#             as idle)
# For each it prints the samples split by who ran them (sluiced's shard
# threads, its io_uring workers, the client's threads, kernel threads,
# idle), by kernel or user space, and the hottest symbols overall and
# within sluiced, as percentages of all samples (both cores); with the
# client's figures. perf.data files and the reports are kept in
# DATA_PARENT_DIR/profile-TIME.XXXX/.
#
# Environment: PROFILE_SECONDS=8  ONE_RATE=1000  PROFILE_PORT=19500
#   WORKLOADS="produce produce16 e2e one"  TOP=25 (symbols shown per table)
# Needs perf (apt-get install linux-perf) and root, or
# kernel.perf_event_paranoid <= -1, for kernel samples of every process.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
bench_help "$0" "${1:-}"

say() { echo "profile.sh: $*" >&2; }
command -v perf >/dev/null || { say "perf missing (apt-get install linux-perf)"; exit 2; }

parent=${1:-bench-data}
mkdir -p "$parent"
parent=$(cd "$parent" && pwd)
secs=${PROFILE_SECONDS:-8}
one_rate=${ONE_RATE:-1000}
port=${PROFILE_PORT:-19500}
top=${TOP:-25}
workloads=${WORKLOADS:-produce produce16 e2e one}

bench_build_release
bench_binaries profile.sh
work=$(mktemp -d "$parent/profile-$(date -u +%Y%m%dT%H%M%SZ).XXXX")
server=

cleanup() {
  [ -z "$server" ] || bench_stop "$server"
  server=
}
trap cleanup EXIT

start_sluiced() {
  local dir=$work/data-$1
  mkdir -p "$dir"
  bench_port_free "$port" || { say "127.0.0.1:$port is taken (set PROFILE_PORT)"; exit 2; }
  "$sluiced" --listen "127.0.0.1:$port" --data-dir "$dir" --set flush=always \
    --set log.level=warn > "$work/$1.sluiced.log" 2>&1 &
  server=$!
  bench_wait_listen sluiced "$port" "$server"
}

client_args() {
  local common=(--bootstrap "127.0.0.1:$port" --json)
  local total=$((secs + 3))
  case $1 in
  produce) echo "${common[*]} produce --topic prof --partitions 1 --record-size 1024 --acks all --duration $total --warmup 1" ;;
  produce16) echo "${common[*]} produce --topic prof --partitions 16 --record-size 1024 --acks all --duration $total --warmup 1" ;;
  e2e) echo "${common[*]} e2e --topic prof --partitions 1 --record-size 1024 --acks 1 --duration $total --warmup 1" ;;
  one) echo "${common[*]} produce --topic prof --partitions 1 --record-size 1024 --acks all --duration $total --warmup 1 --rate $one_rate --linger-ms 0 --inflight 1" ;;
  *) say "unknown workload $1 (produce, produce16, e2e, one)"; exit 2 ;;
  esac
}

# report WORKLOAD SERVER_PID CLIENT_PID: the tables from WORKLOAD.perf.data.
report() {
  local data=$work/$1.perf.data
  # comm, pid, dso and symbol of every sample; the split is done here
  # rather than with perf's own sort keys so one pass gives every table.
  perf script -i "$data" -F comm,pid,ip,sym,dso 2>/dev/null |
    /usr/bin/python3 "$(dirname "$0")/profile_report.py" --top "$top" \
      --server-pid "$2" --client-pid "$3"
}

profile_one() {
  local w=$1 args
  args=$(client_args "$w")
  start_sluiced "$w"
  # shellcheck disable=SC2086 # args is a word list built above
  "$bench" $args > "$work/$w.json" 2> "$work/$w.client.err" &
  local client=$!
  sleep 2
  perf record -q -e cpu-clock -F 4000 -a -o "$work/$w.perf.data" -- sleep "$secs" \
    > "$work/$w.perf.log" 2>&1 || { say "$w: perf record failed: $(tail -1 "$work/$w.perf.log")"; return 1; }
  if ! wait "$client"; then
    say "$w: sluice-bench failed: $(tail -1 "$work/$w.client.err")"
    cleanup
    return 1
  fi
  local pid=$server
  cleanup
  echo "### $w"
  echo
  echo "Client: \`sluice-bench $args\`"
  echo
  echo "Client result: $(tail -1 "$work/$w.json" | /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
p = d.get("produce", d)
c = d.get("fetch")
lat = p.get("latency_us") or {}
s = "produce %.0f MB/s, %.0f records/s" % (p["mb_per_s"], p["records_per_s"])
if lat:
    s += ", ack p50 %.0f us, p99 %.0f us" % (lat.get("p50", 0), lat.get("p99", 0))
if c:
    s += "; consume %.0f MB/s" % c["mb_per_s"]
print(s)')"
  echo
  report "$w" "$pid" "$client"
  echo
}

echo "## Profile, $(date -u +%Y-%m-%d)"
echo
echo "perf record -e cpu-clock -F 4000 -a for $secs s of each workload, both cores; sluiced $("$sluiced" --version 2>&1 | head -1) (release build, flush=always); percentages of all samples."
echo
rc=0
for w in $workloads; do
  profile_one "$w" || rc=1
done
say "perf data and reports in $work"
exit $rc
