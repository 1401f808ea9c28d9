#!/usr/bin/env bash
# Installs the Debian packages Sluice needs to build, test and run.
# Usage: deploy/install-deps.sh [build|test]   (default: test = everything)
# Runs apt-get only when something is missing, so repeated runs are fast.
set -euo pipefail

# libhiredis-dev, libnats-dev: sluice-bench's Redis Streams and NATS
# JetStream drivers.
build_pkgs=(meson ninja-build pkg-config gcc liburing-dev libisal-dev libhugetlbfs-dev
  liblz4-dev libzstd-dev libsnappy-dev libhiredis-dev libnats-dev)
# redis-server, nats-server: the peers sluice-bench is tested and compared
# against; gnuplot-nox: its charts; iperf3, fio: the machine's own limits in
# the benchmark report; linux-perf: tests/bench/profile.sh's profiles.
test_pkgs=(libcmocka-dev kcat librdkafka-dev python3-confluent-kafka python3-kafka python3-pytest
  python3-snappy python3-lz4 python3-zstandard redis-server nats-server gnuplot-nox iperf3 fio
  linux-perf)

pkgs=("${build_pkgs[@]}")
if [ "${1:-test}" = test ]; then
  pkgs+=("${test_pkgs[@]}")
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
