#!/usr/bin/env bash
# Does a consumer reading old data (on the disk only) slow producers on the
# same shards? One run: fill a topic with OLD_MB of records, restart the
# broker and drop the files from the page cache (so every read of them goes
# to the disk), then measure acks=1 produce latency at a low fixed rate on
# another topic, alone and while a consumer reads the old topic from its
# start as fast as it can.
#
#   tests/bench/cold_reads.sh [DATA_PARENT_DIR]   (default: ./bench-data)
#
# Prints a markdown table for docs/BENCHMARKS.md. Needs a release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
parent=${1:-$root/bench-data}
mkdir -p "$parent"
work=$(mktemp -d "$parent/cold.XXXXXX")
port=${BENCH_PORT:-19194}
old_mb=${OLD_MB:-2048}
secs=${BENCH_SECONDS:-15}
# Extra sluiced arguments for the measured start, e.g. COLD_ARGS_STR="--set log.read.concurrency.max=2"
read -r -a COLD_ARGS <<< "${COLD_ARGS_STR:-}"
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
. tests/bench/lib.sh
bench_build_release
bench=build-release/tools/sluice-bench
py=/usr/bin/python3

start() {
  build-release/dataplane/sluiced --listen 127.0.0.1:$port --data-dir "$work/data" \
    "$@" 2>>"$work/sluiced.log" &
  pid=$!
  bench_wait_port $port
}
stop() { kill -TERM $pid; wait $pid || true; pid=; }
field() { bench_field "$@"; }

start --set flush=none
$bench --bootstrap 127.0.0.1:$port produce --topic old --partitions 4 --record-size 16384 \
  --records $((old_mb * 64)) --acks 1 >/dev/null
$bench --bootstrap 127.0.0.1:$port produce --topic lat --partitions 4 --records 10 --acks 1 >/dev/null
stop
sync
# Out of the page cache: every read of "old" now goes to the disk
# (WARM=1 leaves them in it, for comparison).
[ -n "${WARM:-}" ] || find "$work/data" -name '*.log' -exec $py -c '
import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)
' {} +
start "${COLD_ARGS[@]}"

cmd_lat="$bench --bootstrap 127.0.0.1:$port --json produce --topic lat --partitions 4 --record-size 1024 --duration $secs --rate 1000 --linger-ms 0 --inflight 1 --acks 1"
cmd_cold="$bench --bootstrap 127.0.0.1:$port --json fetch --topic old --duration $secs"
alone=$($cmd_lat | tail -1)
# The consumer client runs niced: on a small machine its own CPU (decoding
# hundreds of MB/s) would otherwise delay the producer client, which is
# not what this measures.
nice -n 19 $cmd_cold > "$work/cold.json" &
cold_pid=$!
sleep 1
with=$($cmd_lat | tail -1)
wait $cold_pid || true
cold=$(tail -1 "$work/cold.json")
kill -USR1 $pid; sleep 0.5
stop
[ -z "${KEEP_LOG:-}" ] || cp "$work/sluiced.log" "$KEEP_LOG"
disk_reads=$(grep -o 'fetch_cold=[0-9]*' "$work/sluiced.log" | tail -2 | cut -d= -f2 | awk '{s += $1} END {print s}')
turn_max=$(grep -o 'turn_max_us=[0-9]*' "$work/sluiced.log" | tail -2 | cut -d= -f2 | sort -n | tail -1)

lat() { echo "$(field "$1" 'produce["latency_us"]["p50"]') / $(field "$1" 'produce["latency_us"]["p99"]') / $(field "$1" 'produce["latency_us"]["p999"]')"; }
cat <<EOT
| produce at 1,000 records/s (1 KiB, acks=1, flush=always), p50 / p99 / p99.9 | us |
| --- | --- |
| alone | $(lat "$alone") |
| while a consumer reads ${old_mb} MB of cold data from the start | $(lat "$with") |
| that consumer's throughput | $(field "$cold" 'fetch["mb_per_s"]') MB/s, $disk_reads reads went to the disk |
| the longest loop turn of either shard over both runs (what a request can wait behind) | $turn_max us |

Commands:

    ${cmd_lat/--bootstrap 127.0.0.1:$port/--bootstrap HOST:PORT}
    nice -n 19 ${cmd_cold/--bootstrap 127.0.0.1:$port/--bootstrap HOST:PORT}   (at the same time)
EOT
