#!/usr/bin/env bash
# Install what is missing, build gencache, and run the examples.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install-deps.sh
cmake -S . -B build/examples -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGC_BUILD_TESTS=OFF >/dev/null
cmake --build build/examples -j"$(nproc 2>/dev/null || echo 2)"
for ex in hello_actor session_store supervision_tree; do
  if [ -x "build/examples/examples/$ex" ]; then
    echo "=== examples/$ex"
    "build/examples/examples/$ex"
  fi
done
