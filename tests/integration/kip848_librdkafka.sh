#!/bin/sh
# Build a librdkafka new enough for group.protocol=consumer (KIP-848;
# Debian 12 has 2.0.2) for test_kip848.py::test_librdkafka_consumer_protocol.
# Its source comes with node-rdkafka's npm package (the npm registry is one
# this project reaches); librdkafka keeps its ABI (librdkafka.so.1), so the
# installed Python binding loads it through LD_LIBRARY_PATH.
#
#   tests/integration/kip848_librdkafka.sh [DIR]     (default build/librdkafka-848)
#   SLUICE_KIP848_LIBRDKAFKA=DIR/lib SLUICED=... pytest tests/integration/test_kip848.py
#
# Needs npm, gcc, make and the -dev packages librdkafka's configure looks
# for (libssl, zlib, libzstd, liblz4); a few minutes on two cores.
set -eu
NODE_RDKAFKA=node-rdkafka@3.6.1 # bundles librdkafka 2.12.0
dir=$(realpath -m "${1:-build/librdkafka-848}")
if [ -e "$dir/lib/librdkafka.so.1" ]; then
	echo "$dir/lib"
	exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$NODE_RDKAFKA" >/dev/null && tar xzf node-rdkafka-*.tgz)
cd "$work/package/deps/librdkafka"
./configure --prefix="$dir" --disable-sasl --disable-curl >"$work/configure.log" 2>&1 ||
	{ cat "$work/configure.log" >&2; exit 1; }
make -j"$(nproc)" libs >"$work/make.log" 2>&1 || { tail -50 "$work/make.log" >&2; exit 1; }
make install-subdirs >/dev/null 2>&1
echo "$dir/lib"
