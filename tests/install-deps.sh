#!/usr/bin/env bash
# Install what gencache needs to build and test on Debian/Ubuntu, if missing:
# a C compiler, CMake, pkg-config, Concurrency Kit (libck-dev), Check,
# hiredis (libhiredis-dev), redis-server, redis-cli (redis-tools) and
# redis-sentinel (for the Redis backend's tests: the Sentinel suite starts
# sentinels, the Cluster suite forms a cluster with redis-cli).
# Safe to run again: it installs nothing that is already there.
set -euo pipefail

need=()
command -v cc >/dev/null 2>&1 || need+=(gcc)
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v make >/dev/null 2>&1 || need+=(make)
pkg-config --exists ck 2>/dev/null || need+=(libck-dev)
pkg-config --exists check 2>/dev/null || need+=(check)
# The Redis backend builds against hiredis; its tests start redis-server.
pkg-config --exists hiredis 2>/dev/null || need+=(libhiredis-dev)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# redis-cli comes with redis-tools (a dependency of redis-server, named
# here in case the server came from elsewhere); redis-sentinel is its own
# package.
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v redis-sentinel >/dev/null 2>&1 || need+=(redis-sentinel)
for extra in "$@"; do
  dpkg -s "$extra" >/dev/null 2>&1 || need+=("$extra")
done

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${need[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root or sudo to install ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
