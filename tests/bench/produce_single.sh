#!/usr/bin/env bash
# The single-node produce benchmark: 1 shard, 1 partition, 1 KiB records,
# acks=1, flush=always; next to fio's view of the same disk, in one run.
#
#   tests/bench/produce_single.sh [DATA_PARENT_DIR]   (default: ./bench-data)
#
# Prints a markdown section for docs/BENCHMARKS.md. Needs a release build
# (build-release/, made by deploy/run.sh or here) and fio.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
parent=${1:-$root/bench-data}
mkdir -p "$parent"
work=$(mktemp -d "$parent/run.XXXXXX")
port=${BENCH_PORT:-19192}
records=${BENCH_RECORDS:-2000000}
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT

command -v fio >/dev/null || { deploy/install-deps.sh build; apt-get install -y -q fio >/dev/null; }
deploy/install-deps.sh test >/dev/null
. tests/bench/lib.sh
bench_build_release
bench=build-release/tools/sluice-bench

echo "## Single-node produce, $(date -u +%Y-%m-%d)"
echo
echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB,"
echo "kernel $(uname -r); data on $(df --output=source,fstype "$work" | tail -1 | xargs)."
echo "Broker and client share the machine's cores (no pinning)."
echo

# fio: the disk's limits, same directory, same run.
fio_seq=$(fio --name=seq --directory="$work" --ioengine=io_uring --direct=1 --rw=write \
  --bs=1M --size=2G --iodepth=8 --numjobs=1 --output-format=json | \
  /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]["write"]; print("%.0f" % (j["bw_bytes"]/1e6))')
fio_sync=$(fio --name=sync --directory="$work" --ioengine=io_uring --direct=1 --rw=write \
  --bs=16k --size=256M --fdatasync=1 --runtime=15 --time_based --output-format=json | \
  /usr/bin/python3 -c '
import json,sys
j=json.load(sys.stdin)["jobs"][0]["sync"]["lat_ns"]["percentile"]
print("%.0f %.0f" % (j["50.000000"]/1000, j["99.000000"]/1000))')
# Appending (the file grows, as a log segment does): every fdatasync must
# also commit the size change to the journal, which overwrites do not.
fio_lat() { # name, extra fio args...
  local name=$1; shift
  fio --name="$name" --directory="$work" --ioengine=io_uring --rw=write --bs=16k --size=128M \
    --fdatasync=1 --fallocate=none "$@" --output-format=json | /usr/bin/python3 -c '
import json,sys
j=json.load(sys.stdin)["jobs"][0]["sync"]["lat_ns"]["percentile"]
print("%.0f %.0f" % (j["50.000000"]/1000, j["99.000000"]/1000))'
}
fio_append_direct=$(fio_lat append_direct --direct=1)
fio_append_buffered=$(fio_lat append_buffered --direct=0)
rm -f "$work"/seq.* "$work"/sync.* "$work"/append_*

build-release/dataplane/sluiced --listen 127.0.0.1:$port --data-dir "$work/data" \
  --set log.level=warn 2>"$work/sluiced.log" &
pid=$!
bench_wait_port $port

cmd_max="$bench --bootstrap 127.0.0.1:$port --json produce --topic max --partitions 1 --record-size 1024 --records $records --acks 1"
cmd_lat="$bench --bootstrap 127.0.0.1:$port --json produce --topic lat --partitions 1 --record-size 1024 --duration 15 --rate 2000 --linger-ms 0 --inflight 1 --acks 1"
# Latency first: the max-rate run leaves gigabytes of dirty page cache whose
# background writeback would compete with every fdatasync that follows.
sync
lat=$($cmd_lat | tail -1)
max=$($cmd_max | tail -1)
cpu=$(awk '{print ($14+$15)/100}' /proc/$pid/stat)
kill -TERM $pid; wait $pid || true

field() { bench_field "$@"; }
cat <<EOT
| measure | value |
| --- | --- |
| fio io_uring O_DIRECT sequential write, 1 MiB blocks, iodepth 8 | $fio_seq MB/s |
| fio 16 KiB write + fdatasync latency p50 / p99 (overwriting a laid-out file) | ${fio_sync% *} / ${fio_sync#* } us |
| fio 16 KiB append + fdatasync p50 / p99, O_DIRECT (file grows) | ${fio_append_direct% *} / ${fio_append_direct#* } us |
| fio 16 KiB append + fdatasync p50 / p99, buffered (file grows; Sluice's write mode today) | ${fio_append_buffered% *} / ${fio_append_buffered#* } us |
| Sluice produce, max rate (acks=1, flush=always, linger 5 ms) | $(field "$max" 'produce["mb_per_s"]') MB/s, $(field "$max" 'produce["records_per_s"]') records/s |
| ... its ack latency p50 / p99 (queueing in the client included) | $(field "$max" 'produce["latency_us"]["p50"]') / $(field "$max" 'produce["latency_us"]["p99"]') us |
| Sluice produce at 2,000 records/s, 1 request in flight, linger 0: ack latency p50 / p99 / p99.9 | $(field "$lat" 'produce["latency_us"]["p50"]') / $(field "$lat" 'produce["latency_us"]["p99"]') / $(field "$lat" 'produce["latency_us"]["p999"]') us |
| broker CPU for both runs | $cpu s |

Commands:

    fio --name=seq --directory=DIR --ioengine=io_uring --direct=1 --rw=write --bs=1M --size=2G --iodepth=8
    fio --name=sync --directory=DIR --ioengine=io_uring --direct=1 --rw=write --bs=16k --size=256M --fdatasync=1 --runtime=15 --time_based
    fio --name=append --directory=DIR --ioengine=io_uring --rw=write --bs=16k --size=128M --fdatasync=1 --fallocate=none --direct=1   (and --direct=0)
    ${cmd_max/--bootstrap 127.0.0.1:$port/--bootstrap HOST:PORT}
    ${cmd_lat/--bootstrap 127.0.0.1:$port/--bootstrap HOST:PORT}
EOT
