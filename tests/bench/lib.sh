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
