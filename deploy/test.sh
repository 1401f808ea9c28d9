#!/usr/bin/env bash
# Installs what Sluice needs, builds it twice (optimised, and with
# AddressSanitizer + UndefinedBehaviorSanitizer) and runs every test:
# the cmocka unit tests in both builds, then the integration tests (real
# Kafka clients against a real sluiced) against the sanitizer build.
set -uo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh test || exit 1

build() { # dir, meson options...
  local dir=$1; shift
  if [ ! -d "$dir" ]; then
    meson setup "$dir" "$@" || return 1
  fi
  meson compile -C "$dir"
}
build build --buildtype=debugoptimized || exit 1
build build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false || exit 1

passed=0
failed=0
count() { # label, exit code
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $1"; fi
}

meson test -C build --print-errorlogs
count "unit tests" $?
export ASAN_OPTIONS=abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
meson test -C build-asan --print-errorlogs
count "unit tests (sanitizers)" $?

SLUICED="$PWD/build-asan/dataplane/sluiced" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
  tests/integration
count "integration tests" $?

if [ "$failed" -ne 0 ]; then
  echo "$failed of 3 test suites failed (unit, unit under sanitizers, integration)"
  exit 1
fi
