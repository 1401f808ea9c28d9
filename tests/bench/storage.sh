#!/usr/bin/env bash
# The storage engine next to the disk it runs on, in one run (issue 4):
#   fio io_uring O_DIRECT sequential write bandwidth, 1 MiB blocks;
#   fio 16 KiB write + fdatasync latency (fio times the write and the
#     fdatasync apart; tests/bench/sync_probe.c runs the same loop and
#     times each pair as one operation, the figure the goal is set against);
#   Sluice produce throughput with ~1 MiB batches, flush=always, acks=1
#     (median of BENCH_RUNS runs, each on a fresh data directory);
#   Sluice acks=1 latency at low load (1 KiB records at 1,000/s, one
#     request in flight), with flush=always and with flush=none (the
#     difference is what the disk adds);
#   the same two measures with a client that costs next to nothing
#     (tests/bench/raw_produce.py: prebuilt ProduceRequests; its --probe,
#     produce_probe.c, for the latency), which shows the broker's own
#     figures on cores it shares with the client; the latency with
#     zero pre-allocation off (log.segment.preallocate.zero...=0); and the
#     latency with per-shard endpoints and the probe on the core of the
#     shard that leads its partition (no cross-shard hop, no wake-up of
#     the other core).
#
#   tests/bench/storage.sh [DATA_PARENT_DIR]   (default: ./bench-data)
#
# Prints a markdown section for docs/BENCHMARKS.md. Needs fio and a
# release build (build-release/, made here if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
parent=${1:-$root/bench-data}
mkdir -p "$parent"
work=$(mktemp -d "$parent/run.XXXXXX")
port=${BENCH_PORT:-19192}
runs=${BENCH_RUNS:-3}
secs=${BENCH_SECONDS:-10}
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

command -v fio >/dev/null || { apt-get install -y -q fio >/dev/null; }
. tests/bench/lib.sh
bench_build_release
bench=build-release/tools/sluice-bench
py=/usr/bin/python3

echo "## Issue 4: storage engine against the disk, $(date -u +%Y-%m-%d)"
echo
echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB,"
echo "kernel $(uname -r); data on $(df --output=source,fstype "$work" | tail -1 | xargs)."
echo "Broker and client share the machine's cores (no pinning)."
echo

fio_seq=$(fio --name=seq --directory="$work" --ioengine=io_uring --direct=1 --rw=write \
  --bs=1M --size=2G --iodepth=8 --runtime=10 --time_based --output-format=json | \
  $py -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]["write"]; print("%.0f" % (j["bw_bytes"]/1e6))')
# A log writes fresh space: what the disk gives to 1 MiB writes into
# newly fallocated (unwritten) blocks, never overwriting (16 GiB file, a
# few seconds: no wrap), the same pattern as segments being filled. The
# 2 GiB loop above rewrites the same blocks again and again, which a
# virtual disk may serve from its host's cache. Run again right before
# each raw-client run: the disk's speed drifts by minutes, so each Sluice
# figure is set against the fio figure taken just before it.
fio_fresh_once() {
  fio --name=fresh --directory="$work" --ioengine=io_uring --direct=1 --rw=write \
    --bs=1M --size=16G --fallocate=native --iodepth=8 --runtime=5 --time_based --output-format=json | \
    $py -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]["write"]; print("%.0f" % (j["bw_bytes"]/1e6))'
  rm -f "$work"/fresh.*
}
fio_fresh=$(fio_fresh_once)
# fio times the write (submission to completion) and the fdatasync apart.
fio_sync=$(fio --name=sync --directory="$work" --ioengine=io_uring --direct=1 --rw=write \
  --bs=16k --size=256M --fdatasync=1 --runtime=15 --time_based --lat_percentiles=1 --output-format=json | $py -c '
import json,sys
j=json.load(sys.stdin)["jobs"][0]
w=j["write"]["lat_ns"]["percentile"]; s=j["sync"]["lat_ns"]["percentile"]
print("%.0f / %.0f us; fdatasync %.0f / %.0f" % (w["50.000000"]/1000, w["99.000000"]/1000,
      s["50.000000"]/1000, s["99.000000"]/1000))')
rm -f "$work"/seq.* "$work"/sync.*
# The same loop timed per write+fdatasync pair.
pair=$(build-release/tests/bench/sync_probe "$work/pair" 16384 268435456 15)
pair_p50=$(bench_field "$pair" 'pair_us["p50"]')
pair_p99=$(bench_field "$pair" 'pair_us["p99"]')

start() { # data dir name, extra sluiced args...
  local d=$1; shift
  rm -rf "${work:?}/$d"
  build-release/dataplane/sluiced --listen 127.0.0.1:$port --data-dir "$work/$d" \
    --set log.level=warn "$@" 2>>"$work/sluiced.log" &
  pid=$!
  bench_wait_port $port
}
stop() { kill -TERM $pid; wait $pid || true; pid=; rm -rf "${work:?}/$1"; }
field() { bench_field "$@"; }
median() { tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

cmd_tput="$bench --bootstrap 127.0.0.1:$port --json produce --topic tput --partitions 4 --record-size 65536 --batch-bytes 1048576 --linger-ms 5 --inflight 10 --acks 1 --duration $secs"
cmd_lat="$bench --bootstrap 127.0.0.1:$port --json produce --topic lat --partitions 1 --record-size 1024 --duration $secs --rate 1000 --linger-ms 0 --inflight 1 --acks 1"

probe=build-release/tests/bench/produce_probe
cmd_raw="$py tests/bench/raw_produce.py --bootstrap 127.0.0.1:$port --topic raw --partitions 8 --record-size 65536 --batch-bytes 1048576 --inflight 8 --acks 1 --duration $secs"
cmd_rlat="$py tests/bench/raw_produce.py --bootstrap 127.0.0.1:$port --topic rlat --partitions 1 --record-size 1024 --batch-bytes 1024 --acks 1 --duration $secs --rate 1000 --probe $probe"

# Latency first, on an idle disk.
sync
start lat1; lat_always=$($cmd_lat | tail -1); stop lat1
start lat2 --set flush=none; lat_none=$($cmd_lat | tail -1); stop lat2
start lat3; rlat_always=$($cmd_rlat | tail -1); stop lat3
start lat4 --set flush=none; rlat_none=$($cmd_rlat | tail -1); stop lat4
start lat5 --set log.segment.preallocate.zero.max.bytes.per.second=0
rlat_nozero=$($cmd_rlat | tail -1); stop lat5
start lat6 --set shard.endpoints=per-shard
rlat_pinned=$($cmd_rlat --probe-cpu leader | tail -1); stop lat6

tput_shared= tput_per= cpu_per= tput_raw= cpu_raw= fresh_raw= ratio_raw=
for i in $(seq "$runs"); do
  sync
  start t$i
  r=$($cmd_tput | tail -1); tput_shared="$tput_shared $(field "$r" 'produce["mb_per_s"]')"
  stop t$i
  sync
  start p$i --set shard.endpoints=per-shard
  r=$($cmd_tput | tail -1); tput_per="$tput_per $(field "$r" 'produce["mb_per_s"]')"
  cpu_per="$cpu_per $(awk '{print ($14+$15)/100}' /proc/$pid/stat)/$(field "$r" 'client_cpu_s')"
  stop p$i
  sync
  f=$(fio_fresh_once); fresh_raw="$fresh_raw $f"
  start r$i --set shard.endpoints=per-shard
  r=$($cmd_raw | tail -1); tput_raw="$tput_raw $(field "$r" 'mb_per_s')"
  ratio_raw="$ratio_raw $(awk -v a="$(field "$r" 'mb_per_s')" -v b="$f" 'BEGIN {printf "%.0f", 100*a/b}')"
  gb=$(field "$r" 'mb_per_s * seconds / 1000')
  cpu_raw="$cpu_raw $(awk -v gb="$gb" '{printf "%.2f", ($14+$15)/100/gb}' /proc/$pid/stat)/$(field "$r" 'round(client_cpu_s / (mb_per_s * seconds / 1000), 2)')"
  stop r$i
done
med_shared=$(echo $tput_shared | median)
med_per=$(echo $tput_per | median)
med_raw=$(echo $tput_raw | median)
med_ratio=$(echo $ratio_raw | median)

lat() { echo "$(field "$1" 'produce["latency_us"]["p50"]') / $(field "$1" 'produce["latency_us"]["p99"]')"; }
rlat() { echo "$(field "$1" 'latency_us["p50"]') / $(field "$1" 'latency_us["p99"]') / $(field "$1" 'latency_us["p99_9"]')"; }
cat <<EOT
| measure | value |
| --- | --- |
| fio io_uring O_DIRECT sequential write, 1 MiB blocks, iodepth 8 | $fio_seq MB/s |
| fio the same into fresh fallocated space (16 GiB file, no overwrite: how a log fills segments) | $fio_fresh MB/s |
| fio 16 KiB write + fdatasync: the write's latency, p50 / p99 (and the fdatasync's, timed apart) | $fio_sync us |
| the same loop timed per write+fdatasync pair (sync_probe), p50 / p99 | $pair_p50 / $pair_p99 us |
| Sluice produce, 64 KiB records in 1 MiB batches, 4 partitions, acks=1, flush=always, shared endpoint (runs: $tput_shared) | median $med_shared MB/s ($(awk -v a="$med_shared" -v b="$fio_seq" 'BEGIN {printf "%.0f", 100*a/b}')% of fio) |
| the same, shard.endpoints=per-shard (runs: $tput_per) | median $med_per MB/s ($(awk -v a="$med_per" -v b="$fio_seq" 'BEGIN {printf "%.0f", 100*a/b}')% of fio) |
| broker / client CPU seconds per per-shard run | $cpu_per |
| Sluice acks=1 latency at 1,000 records/s, 1 KiB, one in flight, flush=always, p50 / p99 | $(lat "$lat_always") us |
| the same with flush=none (no fdatasync), p50 / p99 | $(lat "$lat_none") us |
| raw client (prebuilt 1 MiB ProduceRequests of 64 KiB records), 8 partitions, 8 in flight per connection, acks=1, flush=always, per-shard endpoints (runs: $tput_raw) | median $med_raw MB/s ($(awk -v a="$med_raw" -v b="$fio_seq" 'BEGIN {printf "%.0f", 100*a/b}')% of fio, $(awk -v a="$med_raw" -v b="$fio_fresh" 'BEGIN {printf "%.0f", 100*a/b}')% of fio on fresh space) |
| broker / client CPU seconds per GB in those runs | $cpu_raw |
| fio into fresh space right before each of those runs, MB/s; each run's share of it, % | $fresh_raw;$ratio_raw (median $med_ratio%) |
| produce_probe (C, one blocking socket) acks=1 latency, 1 KiB batch at 1,000/s, flush=always, p50 / p99 / p99.9 | $(rlat "$rlat_always") us |
| the same with flush=none | $(rlat "$rlat_none") us |
| the same with flush=always and zero pre-allocation off (fallocate only) | $(rlat "$rlat_nozero") us |
| the same with flush=always, per-shard endpoints and the probe on its shard's core | $(rlat "$rlat_pinned") us |

Goals, in this run: produce at least 80% of fio's bandwidth: raw client
$med_ratio% of fio into fresh space taken just before each run (median
of the runs), $(awk -v a="$med_raw" -v b="$fio_seq" 'BEGIN {printf "%.0f", 100*a/b}')% of fio's 2 GiB overwrite loop; librdkafka per-shard $(awk -v a="$med_per" -v b="$fio_seq" 'BEGIN {printf "%.0f", 100*a/b}')% of the loop. p99 within 2x of the write+fdatasync
p99 ($pair_p99 us, so $((2 * pair_p99)) us): probe $(field "$rlat_always" 'latency_us["p99"]') us on the defaults, $(field "$rlat_pinned" 'latency_us["p99"]') us per-shard
on its shard's core; librdkafka $(field "$lat_always" 'produce["latency_us"]["p99"]') us.

Commands:

    fio --name=seq --directory=DIR --ioengine=io_uring --direct=1 --rw=write --bs=1M --size=2G --iodepth=8 --runtime=10 --time_based
    fio --name=fresh --directory=DIR --ioengine=io_uring --direct=1 --rw=write --bs=1M --size=16G --fallocate=native --iodepth=8 --runtime=5 --time_based
    fio --name=sync --directory=DIR --ioengine=io_uring --direct=1 --rw=write --bs=16k --size=256M --fdatasync=1 --runtime=15 --time_based --lat_percentiles=1
    build-release/tests/bench/sync_probe DIR/pair 16384 268435456 15
    ${cmd_tput/--bootstrap 127.0.0.1:$port/--bootstrap HOST:PORT}
    ${cmd_lat/--bootstrap 127.0.0.1:$port/--bootstrap HOST:PORT}
    ${cmd_raw/--bootstrap 127.0.0.1:$port/--bootstrap HOST:PORT}
    ${cmd_rlat/--bootstrap 127.0.0.1:$port/--bootstrap HOST:PORT}
    ${cmd_rlat/--bootstrap 127.0.0.1:$port/--bootstrap HOST:PORT} --probe-cpu leader   (per-shard endpoints)
EOT
