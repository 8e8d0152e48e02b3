#!/usr/bin/env bash
# Run the benchmark and draw its charts with gnuplot:
#   docs/bench-throughput.png  direct-get throughput by reader threads at
#                              100k keys (gencache vs the peers, bench/peers.h)
#   docs/bench-latency.png     call round-trip latency distribution
#                              (gencache call vs raw ping-pong)
# and save the JSON lines in docs/bench-latest.json.
# Usage: bash bench/plot.sh [BUILD_DIR] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
command -v gnuplot >/dev/null || bash tests/install-deps.sh gnuplot-nox
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
GENCACHE_BENCH_SCALING_FILE=$tmp/scaling.dat GENCACHE_BENCH_LATENCY_FILE=$tmp/latency.dat \
  "$build/bench/gencache_bench" --json "$@" > docs/bench-latest.json
gnuplot <<GP
set terminal pngcairo size 900,520 noenhanced
set output 'docs/bench-throughput.png'
set title 'Direct get throughput by reader threads (100k keys)'
set xlabel 'reader threads'
set ylabel 'million gets / s'
set xtics 1
set key top left
set grid
plot '$tmp/scaling.dat' using 1:2 with linespoints lw 2 title 'gencache cache_get (lock-free)', \
     '' using 1:3 with linespoints lw 2 title 'liburcu cds_lfht, qsbr', \
     '' using 1:4 with linespoints lw 2 title 'liburcu cds_lfht, memb', \
     '' using 1:5 with linespoints lw 2 title 'GHashTable + GRWLock', \
     '' using 1:6 with linespoints lw 2 title 'GHashTable + GMutex'
set output 'docs/bench-latency.png'
set title 'Synchronous round trip latency (percentile of calls)'
set xlabel 'percentile'
set ylabel 'ns (log scale)'
set logscale y
set xrange [0:99.9]
set xtics 10
set format x '%.0f'
plot '$tmp/latency.dat' using (\$1*100):2 with lines lw 2 title 'gencache cache_call (SYNC op)', \
     '' using (\$1*100):3 with lines lw 2 title 'raw ping-pong on one cache line'
GP
echo "plot.sh: wrote docs/bench-throughput.png, docs/bench-latency.png, docs/bench-latest.json"
