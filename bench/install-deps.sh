#!/usr/bin/env bash
# Install the benchmark's optional peers on Debian/Ubuntu, if missing:
# liburcu (cds_lfht in the qsbr and memb flavours) and GLib (GHashTable),
# the hash tables a C engineer would pick instead of gencache; plus
# gnuplot-nox for bench/plot.sh.  The library itself needs none of them
# (its own dependencies: tests/install-deps.sh).  Without them the
# benchmark still builds and its peer rows print "peer not built".
# Safe to run again: it installs nothing that is already there.
set -euo pipefail

need=()
pkg-config --exists liburcu-qsbr 2>/dev/null || need+=(liburcu-dev)
pkg-config --exists glib-2.0 2>/dev/null || need+=(libglib2.0-dev)
command -v gnuplot >/dev/null 2>&1 || need+=(gnuplot-nox)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "bench/install-deps: installing ${need[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "bench/install-deps: need root or sudo to install ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt run (a shared machine) instead of failing at once.
$sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
$sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
