#!/usr/bin/env bash
# Shard-per-core benchmarks: how produce and fetch scale with sluiced's shard
# count on this machine, and what each record costs in instructions.
#
#   tests/bench/shards.sh [matrix] [REPORT.md]   throughput and latency matrix
#   tests/bench/shards.sh cost [REPORT.md]       instructions per record (callgrind)
#
# Writes a markdown report to REPORT.md, or to stdout; progress goes to
# stderr. Builds nothing: it runs $BUILD/dataplane/sluiced and
# $BUILD/tools/sluice-bench (BUILD defaults to build-release; make it with
#   meson setup build-release --buildtype=release && meson compile -C build-release).
#
# Every configuration gets a fresh sluiced on a free port with a temporary
# data directory, stopped with SIGTERM afterwards (always: an EXIT trap),
# with flush=always, so an acknowledged record has been fdatasync'ed. A
# configuration that fails (sluiced refuses its flags, dies, or a client run
# fails) is reported as failed, and the next one runs.
#
# matrix, per configuration, one 16-partition topic and 1 KiB records:
#   1. produce max: as fast as the client goes for BENCH_MAX_SECONDS
#      (default 10; linger 5 ms, 5 requests in flight, acks=1). A duration,
#      not a record count, so that it writes about as much as a latency run:
#      a short burst fits in the page cache's dirty limits and overstates
#      what the broker sustains once writeback competes with fdatasync;
#   2. fetch: one consumer reads back everything step 1 wrote;
#   3. produce latency: open loop at 25%, 50% and 75% of step 1's
#      records/s, BENCH_LAT_SECONDS (default 10) measured after
#      BENCH_LAT_WARMUP (default 2) seconds, same client settings.
#
# Configurations: BENCH_CONFIGS, rows separated by ';', each
#   "label|sluiced arguments|CPUs for the client (taskset -c; empty = unpinned)".
# The default is the four rows below. Pinning uses --set shard.cpus=LIST,
# the setting behind sluiced's --cpus flag, so it works whether or not the
# flag exists in the sluiced under test.
#
# Other knobs: BENCH_DATA (parent of the temporary data directories, default
# ./bench-data), BENCH_PORT (first port tried, default 19300),
# BENCH_LINGER_MS (default 5), COST_RECORDS (default 20000),
# COST_KEEP=DIR (keep the callgrind files there, for callgrind_annotate).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
. tests/bench/lib.sh

bench_help "$0" "${1:-}"
mode=matrix
case "${1:-}" in
  matrix | cost) mode=$1; shift ;;
esac
report_file=${1:-}
bench_binaries shards.sh
if [ "$mode" = cost ] && ! command -v valgrind >/dev/null; then
  echo "shards.sh: cost needs valgrind (apt-get install valgrind)" >&2
  exit 2
fi

parent=${BENCH_DATA:-$root/bench-data}
mkdir -p "$parent"
work=$(mktemp -d "$parent/shards.XXXXXX")
max_s=${BENCH_MAX_SECONDS:-10}
lat_s=${BENCH_LAT_SECONDS:-10}
lat_warmup_s=${BENCH_LAT_WARMUP:-2}
linger_ms=${BENCH_LINGER_MS:-5}
cost_records=${COST_RECORDS:-20000}
partitions=16
record_size=1024
hz=$(getconf CLK_TCK)
configs=${BENCH_CONFIGS:-"1 shard|--shards 1 --set shard.cpus=0|;\
2 shards|--shards 2 --set shard.cpus=0,1|;\
2 shards, per-shard endpoints|--shards 2 --set shard.cpus=0,1 --set shard.endpoints=per-shard|;\
1 shard, client on CPU 1|--shards 1 --set shard.cpus=0|1"}

pid=""
port=""

# Stop the sluiced this script started, if any: SIGTERM, then SIGKILL if it
# has not exited within 60 s (callgrind's final dump takes a while). Sets
# sluiced_rc to its exit status.
sluiced_rc=0
sluiced_stop() {
  sluiced_rc=0
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local i state
  for i in $(seq 600); do
    state=$(sed -n 's/^.*) \(.\).*/\1/p' "/proc/$pid/stat" 2>/dev/null || true)
    if [ -z "$state" ] || [ "$state" = Z ]; then break; fi
    sleep 0.1
  done
  [ "$i" -lt 600 ] || kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || sluiced_rc=$?
  pid=""
}
bench_pid=""
cleanup() {
  if [ -n "$bench_pid" ]; then
    kill -TERM "$bench_pid" 2>/dev/null || true # timeout passes it on
    wait "$bench_pid" 2>/dev/null || true
  fi
  sluiced_stop
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port p with p..p+65 free: per-shard endpoints listen on p+1+shard.
port_free() {
  /usr/bin/python3 - "${BENCH_PORT:-19300}" <<'EOF'
import socket, sys
for base in range(int(sys.argv[1]), 65000 - 66, 100):
    socks = []
    try:
        for p in range(base, base + 66):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", p))
            socks.append(s)
        print(base)
        break
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
EOF
}

# sluiced_start TAG WAIT_S [PREFIX...] -- SLUICED_ARGS...: start a fresh
# sluiced; return 1 (with err set) if it exits or does not listen in WAIT_S.
err=""
sluiced_start() {
  local tag=$1 wait_s=$2 prefix=()
  shift 2
  while [ "$1" != -- ]; do prefix+=("$1"); shift; done
  shift
  port=$(port_free) || true
  [ -n "$port" ] || { err="no free range of 66 ports from ${BENCH_PORT:-19300}"; return 1; }
  log=$work/$tag.log
  "${prefix[@]}" "$sluiced" --listen "127.0.0.1:$port" --data-dir "$work/$tag.data" \
    --set flush=always --set log.level=warn "$@" >"$log" 2>&1 &
  pid=$!
  local i
  for i in $(seq $((wait_s * 10))); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      pid=""
      err="sluiced did not start: $(grep -v '^==' "$log" | tail -1)"
      return 1
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  err="sluiced not listening after ${wait_s} s"
  return 1
}

# bench CLIENT_CPUS ARGS...: run sluice-bench --json against the sluiced;
# sets json to its last line. Returns 1 (with err set) if it fails.
json=""
bench() {
  local cpus=$1 pre=()
  shift
  [ -z "$cpus" ] || pre=(taskset -c "$cpus")
  json=""
  local rc=0
  # In the background and waited for, so a signal to this script is handled
  # at once (bash runs traps only after a foreground child exits).
  timeout --kill-after=10 600 "${pre[@]}" "$bench" --bootstrap "127.0.0.1:$port" --json \
    "$@" >"$work/bench.out" 2>"$work/bench.err" &
  bench_pid=$!
  wait "$bench_pid" || rc=$?
  bench_pid=""
  if [ "$rc" -ne 0 ]; then
    [ "$rc" -ne 124 ] || echo "timed out after 600 s" >>"$work/bench.err"
    err="sluice-bench $1 (exit $rc): $(tail -1 "$work/bench.err")"
    return 1
  fi
  json=$(tail -1 "$work/bench.out")
}

# jf JSON PATH: a field of a JSON object, PATH like produce.latency_us.p99.
jf() {
  /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    d = d[k]
print(d)' "$1" "$2"
}

# Broker CPU time so far (user + system, all threads), in seconds.
sluiced_cpu_s() {
  awk -v hz="$hz" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$pid/stat"
}

# "N threads, CPUs a/b": the broker's threads and their distinct affinities.
sluiced_threads() {
  local n aff
  n=$(find "/proc/$pid/task" -mindepth 1 -maxdepth 1 | wc -l)
  aff=$(cat /proc/"$pid"/task/*/status 2>/dev/null | awk '/^Cpus_allowed_list/ {print $2}' |
    sort -u | paste -sd/)
  echo "$n threads, CPUs $aff"
}

# -------------------------------------------------------------------- matrix

tput_rows=""
lat_rows=""
notes=""

# Per-shard endpoints are visible from outside: Metadata must list one broker
# per shard. Say so when it does not (a sluiced that ignores the setting).
config_check() {
  local label=$1 sargs=$2 brokers=$3 shards
  case "$sargs" in *shard.endpoints=per-shard*) ;; *) return 0 ;; esac
  shards=$(sed -n 's/.*\(--shards[ =]\|num\.shards=\)\([0-9]*\).*/\2/p' <<<"$sargs")
  if [ -n "$shards" ] && [ "$brokers" != "$shards" ]; then
    notes+="- $label: per-shard endpoints with $shards shards, but Metadata listed $brokers"
    notes+=" broker(s): the setting did not take effect in this sluiced."$'\n'
  fi
}

# One configuration: sets its rows in tput_rows and lat_rows.
matrix_config() {
  local n=$1 label=$2 sargs=$3 ccpus=$4 cpu0 cpu1 cpu2 threads brokers
  local -a args
  read -r -a args <<<"$sargs"
  echo "shards.sh: [$label] sluiced ${sargs}" >&2
  if ! sluiced_start "c$n" 10 -- "${args[@]}"; then
    tput_rows+="| $label | \`$sargs\` | ${ccpus:-any} | failed: $err |||||||"$'\n'
    return 0
  fi
  cpu0=$(sluiced_cpu_s)
  if ! bench "$ccpus" produce --topic max --partitions $partitions --record-size $record_size \
      --duration "$max_s" --acks 1 --linger-ms "$linger_ms"; then
    sluiced_stop
    tput_rows+="| $label | \`$sargs\` | ${ccpus:-any} | failed: $err |||||||"$'\n'
    return 0
  fi
  local pj=$json
  cpu1=$(sluiced_cpu_s)
  threads=$(sluiced_threads)
  brokers=$(jf "$pj" brokers)
  config_check "$label" "$sargs" "$brokers"
  local fetch_cols
  if bench "$ccpus" fetch --topic max; then
    fetch_cols="$(jf "$json" fetch.mb_per_s) | $(jf "$json" fetch.records_per_s)"
  else
    fetch_cols="failed: $err |"
  fi
  cpu2=$(sluiced_cpu_s)
  tput_rows+="| $label | \`$sargs\` | ${ccpus:-any} | $(jf "$pj" produce.mb_per_s) |"
  tput_rows+=" $(jf "$pj" produce.records_per_s) | $fetch_cols |"
  tput_rows+=" $(awk -v a="$cpu0" -v b="$cpu1" -v c="$cpu2" 'BEGIN {printf "%.1f / %.1f", b-a, c-b}') |"
  tput_rows+=" $threads | $brokers |"$'\n'
  local max_rps pct rate
  max_rps=$(jf "$pj" produce.records_per_s)
  for pct in 25 50 75; do
    rate=$((max_rps * pct / 100))
    sync
    echo "shards.sh: [$label] latency at $pct% = $rate records/s" >&2
    if ! bench "$ccpus" produce --topic "lat$pct" --partitions $partitions \
        --record-size $record_size --duration $((lat_s + lat_warmup_s)) --warmup "$lat_warmup_s" \
        --rate "$rate" --acks 1 --linger-ms "$linger_ms"; then
      lat_rows+="| $label | $pct% | $rate | failed: $err ||||"$'\n'
      continue
    fi
    local got behind=""
    got=$(jf "$json" produce.records_per_s)
    [ "$got" -ge $((rate * 97 / 100)) ] || behind=" (fell behind)"
    lat_rows+="| $label | $pct% | $rate | $got$behind | $(jf "$json" produce.latency_us.p50) |"
    lat_rows+=" $(jf "$json" produce.latency_us.p99) | $(jf "$json" produce.latency_us.p999) |"$'\n'
  done
  sluiced_stop
  [ "$sluiced_rc" -eq 0 ] || notes+="- $label: sluiced exited with status $sluiced_rc on SIGTERM."$'\n'
  rm -rf "$work/c$n.data"
}

matrix_report() {
  cat <<EOT
## Shard scaling: produce and fetch, $(date -u +%Y-%m-%d)

Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB,
kernel $(uname -r); data on $(df --output=source,fstype "$work" | tail -1 | xargs).
sluiced $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'), build $(basename "$build");
client sluice-bench on librdkafka $(pkg-config --modversion rdkafka 2>/dev/null || echo '?').

Workload: one topic of $partitions partitions, ${record_size}-byte records round-robin over
them, acks=1, \`flush=always\` (every acknowledged batch is fdatasync'ed),
linger ${linger_ms} ms, 5 requests in flight per connection. Produce max: closed
loop for ${max_s} s (the client keeps up to 1 GB queued; the time runs to the
last acknowledgement). Fetch: one consumer reads all of it back (from the
page cache). Latency: open loop at 25/50/75% of that row's max records/s,
${lat_s} s measured after ${lat_warmup_s} s of warm-up; latency runs from each record's
intended send time to its acknowledgement, so it includes the client's
batching (up to linger) and its queueing.

How cores were shared: the load generator runs on the same $(nproc) cores as the
broker. "client CPUs" is the taskset given to sluice-bench (any = left to
the scheduler, so it competes with every shard); "broker threads" is what
/proc showed for sluiced after the produce run (thread count and the
distinct CPU affinities of its threads), which shows whether shard.cpus
pinning took effect. With 2 shards on 2 cores, each shard shares its core
with the client: those rows measure what the broker gets next to its load
generator, not its capacity alone. "brokers" is the number of brokers in the
Metadata the client saw (per-shard endpoints advertise one per shard).

| configuration | sluiced flags | client CPUs | produce MB/s | produce records/s | fetch MB/s | fetch records/s | broker CPU s, produce / fetch | broker threads | brokers |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${tput_rows}
| configuration | load (of max) | target records/s | achieved records/s | ack p50 us | ack p99 us | ack p99.9 us |
| --- | --- | --- | --- | --- | --- | --- |
${lat_rows}
${notes:+Notes:

$notes}
Commands (HOST:PORT a fresh sluiced, FLAGS the row's sluiced flags, R the
row's max records/s times 0.25, 0.5, 0.75; \`taskset -c CPUS\` before
sluice-bench where the client is pinned):

    sluiced --listen HOST:PORT --data-dir TMP --set flush=always --set log.level=warn FLAGS
    sluice-bench --bootstrap HOST:PORT --json produce --topic max --partitions $partitions --record-size $record_size --duration $max_s --acks 1 --linger-ms $linger_ms
    sluice-bench --bootstrap HOST:PORT --json fetch --topic max
    sluice-bench --bootstrap HOST:PORT --json produce --topic latPCT --partitions $partitions --record-size $record_size --duration $((lat_s + lat_warmup_s)) --warmup $lat_warmup_s --rate R --acks 1 --linger-ms $linger_ms
EOT
}

# ---------------------------------------------------------------------- cost
#
# Instructions per record, counted by callgrind (this machine has no
# hardware counters for perf stat). Callgrind counts the user-space
# instructions of every sluiced thread; kernel work (socket copies, page
# cache, io_uring, fdatasync) is not in the figure.
#
# Method: one sluiced under callgrind; the script asks callgrind for a dump
# (callgrind_control --dump, which also zeroes the counters) after each
# phase, so each phase's instructions are counted apart:
#   warm       create topic "cost" (16 records) and topic "one" (1 record),
#              discarded with start-up
#   idle       3 s of nothing: the idle cost per second
#   p_small    a produce session of 16 records (one per partition) to "cost"
#   p_big      a produce session of 16 + COST_RECORDS records to "cost"
#   f_small    a fetch session reading "one": metadata, offsets, 1 record
#   f_all      a fetch session reading all of "cost" (48 + COST_RECORDS)
# Each phase is taken less the idle rate times its duration. Then per
# produced record = (p_big - p_small) / COST_RECORDS: the difference removes
# the per-session fixed cost (connection, ApiVersions, Metadata,
# CreateTopics) and leaves what the records themselves cost, requests and
# responses included. Per fetched record = (f_all - f_small) / (records
# f_all read - 1), the same way. Counting only inside handle_Produce and
# handle_Fetch (--toggle-collect) would be simpler but wrong for this
# design: receiving, parsing, writing, fdatasync completions and responses
# happen in the shard loop, outside the handlers, and with several shards
# so does forwarding between them, which is just what the comparison is for.
# All of sluiced's threads are counted together (callgrind serialises
# them), so the figure for 2 shards includes the hand-offs between shards.

cost_rows=""

cost_phase() { # NAME: dump the counters now, recording when
  callgrind_control --dump="$1" "$pid" >"$work/cgctl.out" 2>&1 ||
    { err="callgrind_control: $(tail -1 "$work/cgctl.out")"; return 1; }
  echo "$1 $(date +%s.%N)" >>"$work/phases"
}

cost_config() {
  local n=$1 label=$2 sargs=$3 ccpus=$4 fetched=0 preq=0 freq=0
  local -a args
  read -r -a args <<<"$sargs"
  echo "shards.sh: [$label] sluiced ${sargs} under callgrind" >&2
  rm -f "$work"/cg.* "$work/phases"
  if ! sluiced_start "k$n" 60 valgrind --tool=callgrind "--callgrind-out-file=$work/cg.%p" \
      -- "${args[@]}"; then
    cost_rows+="| $label | \`$sargs\` | failed: $err |||||||"$'\n'
    return 0
  fi
  local common=(--partitions "$partitions" --record-size "$record_size" --acks 1
    --linger-ms "$linger_ms")
  err=""
  echo "start $(date +%s.%N)" >"$work/phases"
  bench "$ccpus" produce --topic cost "${common[@]}" --records 16 &&
    bench "$ccpus" produce --topic one "${common[@]}" --records 1 &&
    cost_phase warm && sleep 3 && cost_phase idle &&
    bench "$ccpus" produce --topic cost "${common[@]}" --records 16 && cost_phase p_small &&
    bench "$ccpus" produce --topic cost "${common[@]}" --records $((cost_records + 16)) &&
    preq=$(jf "$json" produce.requests) && cost_phase p_big &&
    bench "$ccpus" fetch --topic one && cost_phase f_small &&
    bench "$ccpus" fetch --topic cost && fetched=$(jf "$json" fetch.records) &&
    freq=$(jf "$json" fetch.requests) &&
    cost_phase f_all || err=${err:-"callgrind_control failed"}
  sluiced_stop
  if [ -n "$err" ]; then
    cost_rows+="| $label | \`$sargs\` | failed: $err |||||||"$'\n'
    return 0
  fi
  [ -z "${COST_KEEP:-}" ] || { mkdir -p "$COST_KEEP"; cp "$work"/cg.* "$COST_KEEP/"; }
  cost_rows+="| $label | \`$sargs\` | $(/usr/bin/python3 - "$work" "$cost_records" "$fetched" "$preq" "$freq" <<'EOF'
import glob, sys
work, produced, fetched, preq, freq = sys.argv[1], *map(int, sys.argv[2:])
ir = {}
for f in glob.glob(work + "/cg.*"):
    desc = total = None
    for line in open(f, errors="replace"):
        if line.startswith("desc: Trigger: Client Request: dump") or line.startswith("desc: Trigger: dump"):
            desc = line.split()[-1]
        elif line.startswith("summary:") or line.startswith("totals:"):
            total = int(line.split()[1])
    if desc:
        ir[desc] = total
t = {}
prev = None
for line in open(work + "/phases"):
    name, when = line.split()
    if prev is not None:
        t[name] = float(when) - prev
    prev = float(when)
idle = ir["idle"] / t["idle"]
net = lambda p: ir[p] - idle * t[p]
per = lambda n, r: "%.0f" % (n / r) if r > 0 else "?"
print("%.0f | %.0f | %s | %s | %.0f | %.0f | %.0f |" % (
    (net("p_big") - net("p_small")) / produced,
    (net("f_all") - net("f_small")) / (fetched - 1),
    per(produced + 16, preq), per(fetched, freq),
    idle, net("p_small"), net("f_small")))
EOF
)"$'\n'
}

cost_report() {
  cat <<EOT
## Instructions per record, $(date -u +%Y-%m-%d)

sluiced $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'), build $(basename "$build"), under \`valgrind --tool=callgrind\`
(user-space instructions of all sluiced threads; the kernel's share is not
counted). Workload: $cost_records records of $record_size B produced round-robin to
$partitions partitions (acks=1, flush=always, linger $linger_ms ms), then all read back by one
consumer. Per-session fixed costs and the idle cost are measured apart and
subtracted (the method is in tests/bench/shards.sh, at "cost"). A record's
share depends on how many records each request carries (shown, as the
client's librdkafka counted requests; the fetch count includes empty
long-polls); under callgrind the broker runs tens of times slower, so
batches are larger than at full speed: compare rows of this table with each
other, not with the throughput matrix.

Command: \`tests/bench/shards.sh cost\` (COST_RECORDS=$cost_records).

| configuration | sluiced flags | instructions per produced record | per fetched record | records per Produce request | per Fetch request | idle instructions/s | a produce session of 16 records | a fetch session of 1 record |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
${cost_rows}
EOT
}

# ---------------------------------------------------------------------- main

n=0
IFS=';' read -r -a rows <<<"$configs"
for row in "${rows[@]}"; do
  row=${row#"${row%%[![:space:]]*}"} # leading blanks of a continued line
  [ -n "$row" ] || continue
  IFS='|' read -r label sargs ccpus <<<"$row"
  n=$((n + 1))
  if [ "$mode" = cost ]; then
    cost_config "$n" "$label" "$sargs" "$ccpus"
  else
    matrix_config "$n" "$label" "$sargs" "$ccpus"
  fi
done

if [ "$mode" = cost ]; then report=$(cost_report); else report=$(matrix_report); fi
if [ -n "$report_file" ]; then
  printf '%s\n' "$report" >"$report_file"
  echo "shards.sh: report in $report_file" >&2
else
  printf '%s\n' "$report"
fi
