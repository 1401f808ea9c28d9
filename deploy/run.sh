#!/usr/bin/env bash
# Installs what Sluice needs, builds it, and runs a single-node broker on
# 127.0.0.1:9092 in the foreground (data in ./data). Ctrl-C stops it cleanly.
# Extra arguments go to sluiced, e.g.: deploy/run.sh --data-dir /var/lib/sluice
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh build
if [ ! -d build-release ]; then
  meson setup build-release --buildtype=release -Dtests=false
fi
meson compile -C build-release
exec build-release/dataplane/sluiced --listen 127.0.0.1:9092 --data-dir ./data "$@"
