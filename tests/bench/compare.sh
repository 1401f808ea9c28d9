#!/usr/bin/env bash
# Sluice beside Redis Streams and NATS JetStream and beside the machine's
# own limits, all measured in one run on loopback (issue 6).
#
#   tests/bench/compare.sh [--out FILE] [--charts DIR] [DATA_PARENT_DIR]
#
# Builds the release build (build-release/), then, on 127.0.0.1:
#   machine limits: iperf3 loopback TCP bandwidth (and with server and
#     client pinned to one core each, when there are two), fio io_uring
#     O_DIRECT sequential write (1 MiB blocks, iodepth 8) and fio 16 KiB
#     write + fdatasync latency, in DATA_PARENT_DIR (default ./bench-data);
#   five systems, each measurement on a freshly started server with an empty
#     data directory (stopped again after it): sluiced (flush=always) with
#     acks=1 and with acks=all, redis-server with AOF everysec and with AOF
#     always (--save ''), nats-server -js (file storage);
#   for 1 KiB and 100 B records on 1 and 16 partitions, single client:
#     max-rate produce (MB/s, records/s, server CPU per GB), produce latency
#     at LAT_PCTS of that system's own max, hot-tail consume (e2e at max
#     rate: consumers read what the producer has just written);
#   one request in flight (1 KiB, 1 partition, ONE_RATE records/s): ack
#     latency, the durable one being Sluice acks=all;
#   catch-up consume: CATCHUP_BYTES of 1 KiB records written, then read
#     from the start (Sluice, Redis everysec, NATS; 1 and 16 partitions).
# Medians of BENCH_RUNS runs with their range. Prints a markdown section for
# docs/BENCHMARKS.md (tables, machine limits, versions, durability, core
# pinning, the commands, the issue's goals met or not) and writes it to
# FILE too; PNG charts (tests/bench/plot.py) go to DIR, linked relative
# to docs/. A failed measurement shows as "failed" and the run goes on;
# the exit status is 1 if any failed. Every JSON result and server log is
# kept in DATA_PARENT_DIR/compare-TIME.XXXX/.
#
# Environment:
#   BENCH_RUNS=3  BENCH_SECONDS=10  BENCH_WARMUP=1  (seconds per run, warm-up)
#   CATCHUP_BYTES=10737418240  (catch-up size)
#   REDIS_CATCHUP_BYTES=2147483648  (Redis keeps streams in memory: its
#     catch-up size is the smaller of the two)
#   LAT_PCTS="25 50 75"  (latency at these percentages of max records/s)
#   ONE_RATE=1000  BENCH_PORT=19400 (ports BENCH_PORT..BENCH_PORT+13)
#   SLUICED_ARGS="--set k=v ..."  extra sluiced arguments (shown in the report)
#   OUT=DATA_PARENT_DIR/compare.md  CHARTS=docs/bench
#   SMOKE=1  a quick check of the script itself (about two minutes): 1 run
#     of 0.5 s, latency at 50% only, 64 MiB catch-up, small fio files,
#     charts in the run's own directory.
# With the defaults it takes about 75 minutes and needs CATCHUP_BYTES plus
# some 15 GB free in DATA_PARENT_DIR (one server's data at a time). Needs
# redis-server, nats-server, iperf3, fio, gnuplot (apt-get install
# redis-server nats-server iperf3 fio gnuplot-nox).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
bench_help "$0" "${1:-}"

here=$(pwd)
out=${OUT:-}
charts=${CHARTS:-}
parent=
while [ $# -gt 0 ]; do
  case $1 in
  --out | --charts)
    [ $# -ge 2 ] || { echo "compare.sh: $1 needs a value (see --help)" >&2; exit 2; }
    if [ "$1" = --out ]; then out=$2; else charts=$2; fi
    shift 2 ;;
  -*) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  *) parent=$1; shift ;;
  esac
done
absolute() { case $1 in /*) echo "$1" ;; *) echo "$here/$1" ;; esac; }
say() { echo "compare.sh: $*" >&2; }

need_tools() {
  local t missing=
  for t in redis-server nats-server iperf3 fio gnuplot taskset timeout; do
    command -v "$t" >/dev/null || missing="$missing $t"
  done
  if [ -n "$missing" ]; then
    say "missing:$missing (apt-get install redis-server nats-server iperf3 fio gnuplot-nox)"
    exit 2
  fi
}

need_tools

cd "$(dirname "$0")/../.."
root=$(pwd)
py=/usr/bin/python3
helper=$root/tests/bench/compare_report.py

parent=$(absolute "${parent:-$root/bench-data}")
if [ -n "${SMOKE:-}" ]; then
  runs=1 secs=0.5 warmup=0 catchup=$((64 << 20)) fio_seq_size=256M fio_sync_size=32M
  pcts=50
else
  runs=${BENCH_RUNS:-3} secs=${BENCH_SECONDS:-10} warmup=${BENCH_WARMUP:-1}
  catchup=${CATCHUP_BYTES:-$((10 << 30))} fio_seq_size=2G fio_sync_size=256M
  pcts=${LAT_PCTS:-25 50 75}
fi
redis_catchup=${REDIS_CATCHUP_BYTES:-$((2 << 30))}
[ "$redis_catchup" -le "$catchup" ] || redis_catchup=$catchup
one_rate=${ONE_RATE:-1000}
base_port=${BENCH_PORT:-19400}
read -r -a sluiced_extra <<< "${SLUICED_ARGS:-}"
# iperf3 wants whole seconds.
whole_secs=$(awk -v s="$secs" 'BEGIN {w = int(s + 0.999); print (w < 1 ? 1 : w)}')

mkdir -p "$parent"
rundir=$(mktemp -d "$parent/compare-$(date -u +%Y%m%dT%H%M%SZ).XXXX")
mkdir -p "$rundir/results" "$rundir/logs"
results=$rundir/results
logs=$rundir/logs
work=$(mktemp -d "$rundir/data.XXXXXX")
index=$results/index.tsv
meta=$results/meta.tsv
out=$(absolute "${out:-$parent/compare.md}")
if [ -z "$charts" ]; then
  if [ -n "${SMOKE:-}" ]; then charts=$rundir/charts; else charts=$root/docs/bench; fi
fi
charts=$(absolute "$charts")
: > "$index"
: > "$meta"

server_pid='' server_dir='' server_port='' iperf_pid='' start_error=''
failures=0
count=0
started=$(date +%s)

cleanup() {
  [ -z "$server_pid" ] || bench_stop "$server_pid"
  [ -z "$iperf_pid" ] || bench_stop "$iperf_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# meta KEY VALUE...: one line of the run's description for the report.
meta() {
  local key=$1; shift
  printf '%s\t%s\n' "$key" "$*" >> "$meta"
}

# ---- the systems -----------------------------------------------------------

variants="sluice-acks1 sluice-acksall redis-everysec redis-always nats"
clk=$(getconf CLK_TCK)

server_of() { case $1 in sluice-*) echo sluice ;; *) echo "$1" ;; esac; }
target_of() { case $1 in sluice-*) echo kafka ;; redis-*) echo redis ;; *) echo nats ;; esac; }
port_of() {
  case $1 in
  sluice) echo "$base_port" ;;
  redis-everysec) echo $((base_port + 10)) ;;
  redis-always) echo $((base_port + 11)) ;;
  nats) echo $((base_port + 12)) ;;
  iperf) echo $((base_port + 13)) ;;
  esac
}

# server_argv SERVER DIR PORT: the command line that starts SERVER (one
# word a line, so arguments may be empty, as redis's --save '').
server_argv() {
  local dir=$2 port=$3
  case $1 in
  sluice)
    printf '%s\n' "$root/build-release/dataplane/sluiced" --listen "127.0.0.1:$port" \
      --data-dir "$dir" --set flush=always --set log.level=warn "${sluiced_extra[@]}" ;;
  redis-everysec | redis-always)
    printf '%s\n' redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" \
      --appendonly yes --appendfsync "${1#redis-}" --save '' --daemonize no ;;
  nats)
    printf '%s\n' nats-server -js -a 127.0.0.1 -p "$port" -sd "$dir" ;;
  esac
}

# show_argv: the words on stdin (one a line) as a command to read, the
# program without its directory and an empty word as ''.
show_argv() {
  local w line=
  while IFS= read -r w; do
    [ -n "$line" ] || w=${w##*/}
    [ -n "$w" ] || w="''"
    line="$line${line:+ }$w"
  done
  echo "$line"
}

# start_server SERVER: start it fresh (empty data directory), wait until
# it listens. Sets server_pid, server_port, server_dir; on failure returns
# 1 with the reason in start_error.
start_server() {
  local name=$1 argv=()
  server_port=$(port_of "$name")
  if ! bench_port_free "$server_port"; then
    start_error="$name not started: port $server_port is in use by another process (set BENCH_PORT)"
    return 1
  fi
  server_dir=$(mktemp -d "$work/$name.XXXXXX")
  mapfile -t argv < <(server_argv "$name" "$server_dir" "$server_port")
  "${argv[@]}" >> "$logs/$name.log" 2>&1 &
  server_pid=$!
  if ! start_error=$(bench_wait_listen "$name" "$server_port" "$server_pid" 10 2>&1); then
    start_error="$start_error (see $logs/$name.log)"
    stop_server
    return 1
  fi
}

stop_server() {
  [ -z "$server_pid" ] || bench_stop "$server_pid"
  server_pid=
  [ -z "$server_dir" ] || rm -rf "$server_dir"
  server_dir=
}

# ---- one measurement --------------------------------------------------------

# record KIND VARIANT PARTS SIZE TAG RUN STATUS REASON FILE CPU_S CMD: one
# line of the index the report is made from.
record() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$index"
  count=$((count + 1))
  local line="[$count, $(($(date +%s) - started)) s] $1 $2 p$3 ${4}B $5 run $6: $7"
  if [ "$7" = ok ]; then say "$line ${8}"; else say "$line: ${8}"; failures=$((failures + 1)); fi
}

# bench_run KIND VARIANT PARTS SIZE TAG RUN LIMIT ARGS...: one sluice-bench
# run (ARGS: workload and options) against the server that is up, killed
# after LIMIT seconds; its JSON goes to the results, its line to the index
# (with the server's CPU seconds during the run).
bench_run() {
  local kind=$1 variant=$2 parts=$3 size=$4 tag=$5 run=$6 limit=$7
  shift 7
  local file=$kind.$variant.p$parts.s$size.$tag.r$run.json
  local cmd=("$root/build-release/tools/sluice-bench" --target "$(target_of "$variant")"
    --bootstrap "127.0.0.1:$server_port" --json "$@")
  local shown="sluice-bench ${cmd[*]:1}"
  shown=${shown//127.0.0.1:$server_port/HOST:PORT}
  local t0 t1 rc=0 status=ok reason cpu=
  t0=$(bench_cpu_ticks "$server_pid" 2>/dev/null) || t0=0
  timeout "$limit" "${cmd[@]}" > "$results/$file" 2> "$logs/$file.err" || rc=$?
  t1=$(bench_cpu_ticks "$server_pid" 2>/dev/null) || t1=
  if [ -n "$t1" ]; then
    cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$clk" 'BEGIN {printf "%.2f", (b - a) / hz}')
  fi
  if [ "$rc" -eq 124 ]; then
    reason="timed out after $limit s"
  elif [ -z "$t1" ]; then
    reason="the server exited during the run (see $logs/$(server_of "$variant").log)"
  elif [ "$rc" -ne 0 ]; then
    reason="sluice-bench exit $rc: $(tail -1 "$logs/$file.err" | tr '\t' ' ')"
  else
    reason=$($py "$helper" check "$results/$file") || status=failed
  fi
  [ "$rc" -eq 0 ] && [ -n "$t1" ] || status=failed
  record "$kind" "$variant" "$parts" "$size" "$tag" "$run" "$status" "$reason" "$file" "$cpu" "$shown"
}

# measure KIND VARIANT PARTS SIZE TAG RUN ARGS...: bench_run against a
# server started for it alone.
measure() {
  local server
  server=$(server_of "$2")
  if start_server "$server"; then
    bench_run "$1" "$2" "$3" "$4" "$5" "$6" "$(run_limit)" "${@:7}"
    stop_server
  else
    record "$1" "$2" "$3" "$4" "$5" "$6" failed "$start_error" - - -
  fi
}

# How long one timed run may take: its duration, the client draining what
# it queued, connecting and creating topics.
run_limit() { awk -v s="$secs" 'BEGIN {printf "%d", 3 * s + 120}'; }
# ... and one that moves BYTES: at no less than 5 MB/s.
bytes_limit() { echo $(($1 / 5000000 + 120)); }

# Options of each variant: acks for Sluice (Redis and NATS have none;
# their durability is the server's, fixed at its start).
variant_args() {
  case $1 in
  sluice-acks1) echo --acks 1 ;;
  sluice-acksall) echo --acks all ;;
  esac
}
# One request in flight, no batching delay.
inflight_args() {
  case $(target_of "$1") in
  kafka) echo --linger-ms 0 --inflight 1 ;;
  redis) echo --pipeline 1 ;;
  nats) echo --max-pending 1 ;;
  esac
}

# ---- the machine's limits ---------------------------------------------------

# iperf_run TAG SERVER_CPU CLIENT_CPU: loopback TCP bandwidth; CPUs empty
# for no pinning.
iperf_run() {
  local tag=$1 scpu=$2 ccpu=$3 port rc=0 reason='' status=ok
  local spin=() cpin=()
  port=$(port_of iperf)
  [ -z "$scpu" ] || spin=(taskset -c "$scpu")
  [ -z "$ccpu" ] || cpin=(taskset -c "$ccpu")
  if ! bench_port_free "$port"; then
    record limit iperf3 - - "$tag" 1 failed "port $port in use" - - -
    return
  fi
  "${spin[@]}" iperf3 -s -B 127.0.0.1 -p "$port" >> "$logs/iperf3.log" 2>&1 &
  iperf_pid=$!
  if bench_wait_listen iperf3 "$port" "$iperf_pid" 10; then
    "${cpin[@]}" iperf3 -c 127.0.0.1 -p "$port" -t "$whole_secs" -J \
      > "$results/$tag.json" 2>> "$logs/iperf3.log" || rc=$?
    [ "$rc" -eq 0 ] || reason="iperf3 exit $rc"
  else
    reason="iperf3 server did not start"
  fi
  bench_stop "$iperf_pid"
  iperf_pid=
  [ -z "$reason" ] || status=failed
  [ -n "$reason" ] || reason=$($py "$helper" check-limit "$results/$tag.json") || status=failed
  record limit iperf3 - - "$tag" 1 "$status" "$reason" "$tag.json" - \
    "${spin[*]}${spin[*]:+ }iperf3 -s -B 127.0.0.1 -p PORT & ${cpin[*]}${cpin[*]:+ }iperf3 -c 127.0.0.1 -p PORT -t $whole_secs -J"
}

# fio_run TAG ARGS...: one fio job in the data directory's file system.
fio_run() {
  local tag=$1 rc=0 reason='' status=ok
  shift
  local dir
  dir=$(mktemp -d "$work/fio.XXXXXX")
  timeout $((whole_secs * 3 + 120)) fio --name="$tag" --directory="$dir" "$@" \
    --output-format=json --output="$results/$tag.json" > "$logs/$tag.log" 2>&1 || rc=$?
  rm -rf "$dir"
  [ "$rc" -eq 0 ] || reason="fio exit $rc (see $logs/$tag.log)"
  [ -z "$reason" ] || status=failed
  [ -n "$reason" ] || reason=$($py "$helper" check-limit "$results/$tag.json") || status=failed
  record limit fio - - "$tag" 1 "$status" "$reason" "$tag.json" - "fio --name=$tag --directory=DIR $*"
}

measure_limits() {
  iperf_run iperf "" ""
  if [ "$(nproc)" -ge 2 ]; then
    iperf_run iperf-pinned 0 1
  fi
  fio_run fio-seq --ioengine=io_uring --direct=1 --rw=write --bs=1M --iodepth=8 \
    --size=$fio_seq_size --runtime="$whole_secs" --time_based
  fio_run fio-sync --ioengine=io_uring --direct=1 --rw=write --bs=16k --fdatasync=1 \
    --size=$fio_sync_size --runtime="$whole_secs" --time_based
}

# ---- the workloads ------------------------------------------------------------

# workload PARTS SIZE: max-rate produce, latency at 25/50/75% of each
# system's own max, hot-tail consume. Runs are interleaved across the
# systems so that the machine's drift hits them alike.
workload() {
  local parts=$1 size=$2 run v pct rate
  local common=(--topic bench --partitions "$parts" --record-size "$size")
  local timed=(--duration "$secs" --warmup "$warmup")
  for run in $(seq "$runs"); do
    for v in $variants; do
      # shellcheck disable=SC2046
      measure max "$v" "$parts" "$size" max "$run" \
        produce "${common[@]}" "${timed[@]}" $(variant_args "$v")
    done
  done
  declare -A max_rate
  for v in $variants; do
    max_rate[$v]=$($py "$helper" median-rate "$index" max "$v" "$parts" "$size")
  done
  for run in $(seq "$runs"); do
    for pct in $pcts; do
      for v in $variants; do
        if [ -z "${max_rate[$v]}" ]; then
          record lat "$v" "$parts" "$size" "at$pct" "$run" failed "no max rate to take $pct% of" - - -
          continue
        fi
        rate=$(( ${max_rate[$v]} * pct / 100 ))
        [ "$rate" -ge 1 ] || rate=1
        # shellcheck disable=SC2046
        measure lat "$v" "$parts" "$size" "at$pct" "$run" \
          produce "${common[@]}" "${timed[@]}" --rate "$rate" $(variant_args "$v")
      done
    done
  done
  for run in $(seq "$runs"); do
    for v in $variants; do
      # shellcheck disable=SC2046
      measure e2e "$v" "$parts" "$size" hot "$run" \
        e2e "${common[@]}" "${timed[@]}" $(variant_args "$v")
    done
  done
}

one_in_flight() {
  local run v
  for run in $(seq "$runs"); do
    for v in $variants; do
      # shellcheck disable=SC2046
      measure one "$v" 1 1024 "rate$one_rate" "$run" \
        produce --topic bench --partitions 1 --record-size 1024 \
        --duration "$secs" --warmup "$warmup" --rate "$one_rate" \
        $(variant_args "$v") $(inflight_args "$v")
    done
  done
}

# drop_page_cache: so that every catch-up read finds the data where a
# consumer days behind would, on the disk, rather than where the previous
# read (or a peer's buffered writes) left it. Needs root; without it the
# runs after the first may read from memory, and the report says so.
cache_dropped=yes
drop_page_cache() {
  sync
  if ! { echo 3 > /proc/sys/vm/drop_caches; } 2>/dev/null; then
    [ "$cache_dropped" = no ] || say "cannot drop the page cache (not root): catch-up reads after the first may come from memory"
    cache_dropped=no
  fi
}

# catch_up VARIANT PARTS: write the catch-up bytes, then read them from the
# start BENCH_RUNS times, on one server.
catch_up() {
  local v=$1 parts=$2 bytes=$catchup run server
  [ "$v" != redis-everysec ] || bytes=$redis_catchup
  local common=(--topic catchup --partitions "$parts" --record-size 1024)
  server=$(server_of "$v")
  if ! start_server "$server"; then
    record catchup-write "$v" "$parts" 1024 fill 1 failed "$start_error" - - -
    record catchup "$v" "$parts" 1024 read 1 failed "no data written" - - -
    return
  fi
  # shellcheck disable=SC2046
  bench_run catchup-write "$v" "$parts" 1024 fill 1 "$(bytes_limit "$bytes")" \
    produce "${common[@]}" --bytes "$bytes" $(variant_args "$v")
  if tail -1 "$index" | cut -f7 | grep -qx ok; then
    for run in $(seq "$runs"); do
      drop_page_cache
      bench_run catchup "$v" "$parts" 1024 read "$run" "$(bytes_limit "$bytes")" \
        consume "${common[@]}" --bytes "$bytes"
    done
  else
    record catchup "$v" "$parts" 1024 read 1 failed "no data written" - - -
  fi
  stop_server
}

# ---- the description of the run ---------------------------------------------

describe() {
  local fs
  fs=$(df --output=source,fstype "$parent" | tail -1 | xargs)
  meta date "$(date -u +%Y-%m-%d)"
  meta command "$(invocation)"
  meta mode "$([ -n "${SMOKE:-}" ] && echo smoke || echo full)"
  meta runs "$runs"
  meta seconds "$secs"
  meta warmup "$warmup"
  meta catchup_bytes "$catchup"
  meta redis_catchup_bytes "$redis_catchup"
  meta one_rate "$one_rate"
  meta lat_pcts "$pcts"
  meta cores "$(nproc)"
  meta cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  meta memory_gib "$(free -g | awk '/Mem:/ {print $2}')"
  meta kernel "$(uname -r)"
  meta disk "$fs"
  meta sluiced "$(build-release/dataplane/sluiced --version 2>&1 | head -1)"
  meta redis "redis-server $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
  meta nats "nats-server $(nats-server --version | sed 's/.*v//')"
  meta librdkafka "$(dpkg-query -W -f '${Version}' librdkafka1 2>/dev/null || echo unknown)"
  meta hiredis "$(dpkg-query -W -f '${Version}' libhiredis-dev 2>/dev/null || echo unknown)"
  meta cnats "$(dpkg-query -W -f '${Version}' libnats-dev 2>/dev/null || echo unknown)"
  meta iperf3 "$(iperf3 --version | head -1)"
  meta fio "$(fio --version)"
  meta sluiced_args "${SLUICED_ARGS:-}"
  local s
  for s in sluice redis-everysec redis-always nats; do
    meta "cmd_$s" "$(show_argv < <(server_argv "$s" DIR PORT))"
  done
}

# invocation: this run's command line, with the settings it was given.
invocation() {
  local v line=
  for v in SMOKE BENCH_RUNS BENCH_SECONDS BENCH_WARMUP CATCHUP_BYTES REDIS_CATCHUP_BYTES \
    LAT_PCTS ONE_RATE SLUICED_ARGS; do
    [ -z "${!v:-}" ] || line="$line$v=$(printf %q "${!v}") "
  done
  echo "${line}tests/bench/compare.sh"
}

main() {
  say "building build-release/"
  bench_build_release
  describe
  say "results and logs in $rundir"
  measure_limits
  local size parts v
  for size in 1024 100; do
    for parts in 1 16; do
      workload "$parts" "$size"
    done
  done
  one_in_flight
  for v in sluice-acks1 redis-everysec nats; do
    for parts in 1 16; do
      catch_up "$v" "$parts"
    done
  done
  meta catchup_cache_dropped "$cache_dropped"
  mkdir -p "$(dirname "$out")"
  if ! $py "$helper" report "$results" "$charts" "$root/docs" > "$out"; then
    say "writing the report failed"
    failures=$((failures + 1))
  fi
  cat "$out"
  say "report: $out; charts: $charts; results: $results"
  if [ "$failures" -gt 0 ]; then
    say "$failures measurement(s) failed (marked \"failed\" in the report)"
    exit 1
  fi
}

main
