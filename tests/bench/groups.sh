#!/usr/bin/env bash
# Consumer groups (issue 5), in one run on a fresh release sluiced:
#   rebalance time of a 10-member group: from the first subscribe to every
#     member consuming (rebalance.py, confluent-kafka consumers), with
#     group.initial.rebalance.delay.ms=0 and with Kafka's default 3000,
#     and the time for an 11th member joining the stable group until every
#     member consumes again;
#   OffsetCommit throughput and latency as group members commit
#     (offset_commit: joined members, one commit in flight each, durable:
#     answered after the record's fdatasync), for 1, 4 and 16 members, 1 and
#     10 partitions per commit.
#
#   tests/bench/groups.sh [DATA_PARENT_DIR]   (default: ./bench-data)
#
# BENCH_RUNS (default 3) runs per figure, the median printed with the
# range; BENCH_SECONDS (default 5) per commit run. Prints a markdown
# section for docs/BENCHMARKS.md. Builds build-release/ if needed.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
bench_help "$0" "${1:-}"
root=$(pwd)
parent=${1:-$root/bench-data}
mkdir -p "$parent"
work=$(mktemp -d "$parent/groups.XXXXXX")
port=${BENCH_PORT:-19292}
runs=${BENCH_RUNS:-3}
secs=${BENCH_SECONDS:-5}
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

bench_build_release
sluiced=build-release/dataplane/sluiced
oc=build-release/tests/bench/offset_commit
py=/usr/bin/python3

start() { # extra sluiced args...
  rm -rf "${work:?}/data"
  $sluiced --listen 127.0.0.1:$port --data-dir "$work/data" --set log.level=warn "$@" \
    2>>"$work/sluiced.log" &
  pid=$!
  bench_wait_port $port
}
stop() { kill -TERM $pid; wait $pid || true; pid=; }
# median and range of the numbers on stdin: "median (min-max)"
summ() { sort -n | awk '{a[NR]=$1} END {printf "%s (%s-%s)", a[int((NR+1)/2)], a[1], a[NR]}'; }

rebalance() { # delay_ms -> "join_runs|rejoin_runs"
  local j= r= out
  for _ in $(seq "$runs"); do
    start --set group.initial.rebalance.delay.ms="$1"
    out=$($py tests/bench/rebalance.py --bootstrap 127.0.0.1:$port --members 10 | tail -1)
    stop
    j="$j $(bench_field "$out" 'join_ms')"
    r="$r $(bench_field "$out" 'rejoin_ms')"
  done
  echo "$j|$r"
}

commits() { # clients partitions -> rows of "rate p50 p99"
  local out
  for _ in $(seq "$runs"); do
    start
    out=$($oc --bootstrap 127.0.0.1:$port --clients "$1" --partitions "$2" --duration "$secs" \
      --topic "oc-$1-$2" | tail -1)
    stop
    echo "$(bench_field "$out" 'commits_per_s') $(bench_field "$out" 'latency_us["p50"]') $(bench_field "$out" 'latency_us["p99"]')"
  done
}

reb0=$(rebalance 0)
reb3=$(rebalance 3000)

echo "## Issue 5: consumer groups, $(date -u +%Y-%m-%d)"
echo
echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB,"
echo "kernel $(uname -r); data on $(df --output=source,fstype "$work" | tail -1 | xargs). Broker (release"
echo "build, 2 shards, flush=always) and clients share the cores. Medians of $runs runs, range in"
echo "brackets."
echo
echo "| measure | value |"
echo "| --- | --- |"
echo "| 10 members, first subscribe to all consuming, group.initial.rebalance.delay.ms=0 | $(echo "${reb0%|*}" | tr ' ' '\n' | grep . | summ) ms |"
echo "| the same with the default delay of 3000 ms | $(echo "${reb3%|*}" | tr ' ' '\n' | grep . | summ) ms |"
echo "| an 11th member joins the stable group: until all 11 consume again (delay 0) | $(echo "${reb0#*|}" | tr ' ' '\n' | grep . | summ) ms |"
for cp in "1 1" "4 1" "16 1" "4 10"; do
  set -- $cp
  rows=$(commits "$1" "$2")
  echo "| OffsetCommit, $1 member(s) of their own groups, $2 partition(s) per commit: commits/s; p50 / p99 us | $(echo "$rows" | awk '{print $1}' | summ); $(echo "$rows" | awk '{print $2}' | summ) / $(echo "$rows" | awk '{print $3}' | summ) |"
done
cat <<EOT

Commands:

    $py tests/bench/rebalance.py --bootstrap HOST:PORT --members 10   # sluiced --set group.initial.rebalance.delay.ms=0|3000
    $oc --bootstrap HOST:PORT --clients N --partitions P --duration $secs
EOT
