#!/usr/bin/env bash
# Run the eviction simulator and draw docs/bench-hitratio.png (hit ratio by
# cache size, one line per policy, for four of its traces); save its JSON
# lines in docs/bench-hitratio-latest.json.
# Usage: bash bench/plot-hitratio.sh [BUILD_DIR] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
command -v gnuplot >/dev/null || bash tests/install-deps.sh gnuplot-nox
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
GENCACHE_HITRATIO_PLOT_FILE=$tmp/hr.dat \
  nice -n 10 "$build/bench/gencache_hitratio" --json "$@" > docs/bench-hitratio-latest.json
# Data blocks (gnuplot "index"), in the program's trace order: 0-3 zipf
# 0.6-1.2, 4 scan, 5 loop, 6 shifting hot set, 7 variable sizes.  Columns: cache
# size in % of the distinct keys (or bytes), then LRU, CLOCK, S3-FIFO,
# S3-FIFO exact ghost, gencache (lib/tab.c: the real table), W-TinyLFU
# textbook, W-TinyLFU reader bits, OPT.
gnuplot <<GP
set terminal pngcairo size 1100,800 noenhanced font ',10'
set output 'docs/bench-hitratio.png'
set multiplot layout 2,2 title 'Hit ratio by cache size (gencache_hitratio; miss => insert)'
set logscale x
set xtics ('0.1%%' 0.1, '1%%' 1, '10%%' 10)
set xrange [0.08:12.5]
set ylabel 'hit ratio (%)'
set grid
set key top left
f = '$tmp/hr.dat'
do for [blk in "1 3 6 7"] {
  b = int(blk)
  set title (b == 1 ? 'Zipf 0.8' : b == 3 ? 'Zipf 1.2' : b == 6 ? 'shifting hot set (Zipf 1.0)' : 'variable sizes, byte budget (Zipf 0.9)')
  set xlabel (b == 7 ? 'cache size (% of all bytes)' : 'cache size (% of distinct keys)')
  plot f index b using 1:9 with linespoints lw 2 dt 2 lc rgb '#888888' title 'Belady OPT', \
       '' index b using 1:2 with linespoints lw 2 lc rgb '#d62728' title 'LRU', \
       '' index b using 1:3 with linespoints lw 2 lc rgb '#ff7f0e' title 'CLOCK (today)', \
       '' index b using 1:4 with linespoints lw 3 lc rgb '#1f77b4' title 'S3-FIFO', \
       '' index b using 1:6 with linespoints lw 2 dt 4 lc rgb '#9467bd' title 'gencache (lib/tab.c)', \
       '' index b using 1:7 with linespoints lw 2 dt 3 lc rgb '#2ca02c' title 'W-TinyLFU textbook', \
       '' index b using 1:8 with linespoints lw 2 lc rgb '#2ca02c' title 'W-TinyLFU reader bits'
}
unset multiplot
GP
echo "plot-hitratio.sh: wrote docs/bench-hitratio.png, docs/bench-hitratio-latest.json"
