#!/usr/bin/env bash
# Install the build tree into a temporary prefix, then build and run a
# program outside the tree against it twice: through find_package (shared
# and static) and through pkg-config.
# Usage: check-install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null

cmake -S "$src/tests/install" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cmake" >/dev/null
LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/cmake/consumer"
"$tmp/cmake/consumer_static"

pcdir=$(dirname "$(find "$tmp/prefix" -name gencache.pc | head -1)")
export PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
cc -o "$tmp/pc_consumer" "$src/tests/install/consumer.c" $(pkg-config --cflags --libs gencache)
LD_LIBRARY_PATH="$(pkg-config --variable=libdir gencache)" "$tmp/pc_consumer"
cc -o "$tmp/pc_consumer_static" "$src/tests/install/consumer.c" -DGENCACHE_STATIC \
   $(pkg-config --cflags gencache) \
   "$(pkg-config --variable=libdir gencache)/libgencache.a" \
   $(pkg-config --libs $(pkg-config --print-requires-private gencache)) -pthread
"$tmp/pc_consumer_static"
echo "check-install: find_package and pkg-config consumers built and ran"
