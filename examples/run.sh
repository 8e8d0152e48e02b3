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
# The Redis example needs a server: start a throwaway one on a free port.
if [ -x build/examples/examples/shared_sessions ] && command -v redis-server >/dev/null; then
  port=""
  for try in 1 2 3 4 5 6 7 8 9 10; do
    cand=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$cand") 2>/dev/null; then port=$cand; break; fi
  done
  [ -n "$port" ] || { echo "examples: no free port for redis-server" >&2; exit 1; }
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "/tmp/gencache-example-redis-$port.pid" >/dev/null
  trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true' EXIT
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  echo "=== examples/shared_sessions (redis-server on port $port)"
  build/examples/examples/shared_sessions "$port"
fi
