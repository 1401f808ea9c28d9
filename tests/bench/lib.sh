# shellcheck shell=bash
# Shared by the bench scripts, which source it from the repository root
# after `set -euo pipefail`.

# bench_help SCRIPT [ARG]: for ARG -h or --help, print SCRIPT's header
# comment (up to its `set -euo` line) and exit.
bench_help() {
  case "${2:-}" in
    -h | --help) sed -n '2,/^set -euo/p' "$1" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  esac
}

# bench_binaries NAME: set build ($BUILD, default build-release, relative to
# the repository root), sluiced and bench (sluice-bench) in it; exit 2,
# naming NAME, if either is missing. Builds nothing.
bench_binaries() {
  build=${BUILD:-build-release}
  case "$build" in /*) ;; *) build=$(pwd)/$build ;; esac
  sluiced=$build/dataplane/sluiced
  bench=$build/tools/sluice-bench
  local f
  for f in "$sluiced" "$bench"; do
    [ -x "$f" ] || { echo "$1: $f missing: build first (see --help)" >&2; exit 2; }
  done
}

# bench_build_release: make the release build (build-release/) if missing,
# and bring it up to date.
bench_build_release() {
  if [ ! -d build-release ]; then
    meson setup build-release --buildtype=release -Dtests=false >/dev/null
  fi
  meson compile -C build-release >/dev/null
}

# bench_wait_port PORT: wait (up to 5 s) until something listens on
# 127.0.0.1:PORT.
bench_wait_port() {
  local _
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# bench_field JSON EXPR: EXPR (Python, over the object's keys) of a JSON
# object, e.g. bench_field "$out" 'produce["mb_per_s"]'.
bench_field() {
  /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2], {}, d))' "$1" "$2"
}

# bench_port_free PORT: true if nothing listens on 127.0.0.1:PORT (so a
# server started there is ours, not a leftover answering in its place).
bench_port_free() {
  ! (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null
}

# bench_wait_listen NAME PORT PID [SECONDS]: wait (default 10 s) until
# something listens on 127.0.0.1:PORT while process PID lives; otherwise
# say on stderr why NAME did not come up and return 1.
bench_wait_listen() {
  local name=$1 port=$2 pid=$3 secs=${4:-10} _
  for _ in $(seq $((secs * 10))); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$name (pid $pid) exited before listening on 127.0.0.1:$port" >&2
      return 1
    fi
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$name (pid $pid) not listening on 127.0.0.1:$port after $secs s" >&2
  return 1
}

# bench_stop PID [SECONDS]: SIGTERM, SIGKILL if still there after SECONDS
# (default 10), then reap it (PID must be a child of this shell).
bench_stop() {
  local pid=$1 secs=${2:-10} _
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq $((secs * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# bench_cpu_ticks PID: user + system CPU time of process PID, all its
# threads (io_uring workers included), in clock ticks (getconf CLK_TCK a
# second). The fields after the command name, which may hold spaces.
bench_cpu_ticks() {
  sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
