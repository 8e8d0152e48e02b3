#!/usr/bin/env bash
# Build gencache and run every test suite, three ways:
#   plain  -Werror build                    (build/plain)
#   asan   AddressSanitizer + UBSan          (build/asan)
#   tsan   ThreadSanitizer, ck builtins on   (build/tsan)
#   ubsan  UndefinedBehaviorSanitizer alone  (build/ubsan: ASan's allocator
#          aligns every block and so hides misaligned objects)
#   noredis  -DGC_WITH_REDIS=OFF: the build without hiredis still
#          works, and a Redis cache is refused with -ENOTSUP (build/noredis)
# then the suites again under valgrind memcheck (plain build; the soak and
# the cache's, Redis and conformance suites' timing-heavy concurrency cases
# (and the Redis conformance run's real-time ttl tcase) are left out:
# under valgrind's serialised threads they measure valgrind, and ASan/TSan
# cover them; so are the Sentinel and Cluster suites, failovers on real
# time from start to end):
#   valgrind                                 (build/plain)
# and then runs the differential fuzz target for 60 s (clang, libFuzzer +
# ASan; the corpus is also replayed by every build above):
#   fuzz                                     (build/fuzz)
# Usage: bash tests/run.sh [plain|asan|tsan|ubsan|noredis|valgrind|fuzz ...]   (default: all)
# Installs missing packages first (tests/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/install-deps.sh

modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(plain asan tsan ubsan noredis valgrind fuzz)
jobs=$(nproc 2>/dev/null || echo 2)
passed=0

# Sanitizer settings: fail on the first report; keep Check's fork mode.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp"

run_fuzz() {
  bash tests/install-deps.sh clang libclang-rt-dev
  echo "=== gencache tests: fuzz (60 s, libFuzzer + ASan)"
  CC=clang cmake -S . -B build/fuzz -DGC_WERROR=ON -DGC_FUZZ=ON -DGC_ASAN=ON \
    -DGC_BUILD_EXAMPLES=OFF -DGC_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build/fuzz -j"$jobs" --target fuzz_cache fuzz_snapshot
  local corpus
  corpus=$(mktemp -d)
  cp tests/fuzz/corpus/* "$corpus"/
  ./build/fuzz/tests/fuzz_cache -max_total_time=60 -timeout=10 -print_final_stats=1 "$corpus" 2>&1 | tail -12
  rm -rf "$corpus"
  echo "=== gencache tests: fuzz the snapshot loader (30 s)"
  corpus=$(mktemp -d)
  cp tests/fuzz/snapshot_corpus/* "$corpus"/
  ./build/fuzz/tests/fuzz_snapshot -max_total_time=30 -timeout=10 -print_final_stats=1 "$corpus" 2>&1 | tail -12
  rm -rf "$corpus"
}

run_valgrind() {
  bash tests/install-deps.sh valgrind
  echo "=== gencache tests: valgrind memcheck (plain build)"
  # Incremental: a no-op after the plain mode, and never a stale binary.
  cmake -S . -B build/plain -DGC_WERROR=ON >/dev/null
  cmake --build build/plain -j"$jobs" >/dev/null
  local vg=(valgrind -q --trace-children=yes --error-exitcode=99 --leak-check=full
            --errors-for-leak-kinds=definite)
  for t in actor sup alloc events; do
    echo "--- valgrind test_$t"
    "${vg[@]}" "build/plain/tests/test_$t"
    passed=$((passed + 1))
  done
  # The mailbox's many-producer tcase measures valgrind's serialised
  # threads; ASan and TSan run it.
  echo "--- valgrind test_mailbox (without the producers tcase)"
  CK_EXCLUDE_TCASE=producers "${vg[@]}" build/plain/tests/test_mailbox
  passed=$((passed + 1))
  echo "--- valgrind test_cache (without the concurrency and big tcases)"
  CK_EXCLUDE_TCASE=concurrency,big "${vg[@]}" build/plain/tests/test_cache
  passed=$((passed + 1))
  if [ -x build/plain/tests/test_redis ]; then
    # Without --trace-children: the redis-server it starts is not ours to
    # check.  The concurrency tcase is timing-bound, like the cache's, and
    # so is the blackhole one (calls refused "at once").  test_sentinel and
    # test_cluster are not run here at all (see the top).
    echo "--- valgrind test_redis (without the concurrency and blackhole tcases)"
    CK_EXCLUDE_TCASE=concurrency,blackhole valgrind -q --error-exitcode=99 --leak-check=full \
      --errors-for-leak-kinds=definite build/plain/tests/test_redis
    passed=$((passed + 1))
  fi
  # The conformance suite against each backend: the concurrency tcase is
  # timing-bound (threads serialised by valgrind); against Redis the ttl
  # tcase too (real-time TTLs of a few hundred ms).
  echo "--- valgrind test_conformance local (without the concurrency tcase)"
  CK_EXCLUDE_TCASE=concurrency "${vg[@]}" build/plain/tests/test_conformance local
  passed=$((passed + 1))
  if [ -x build/plain/tests/test_redis ]; then
    # Without --trace-children, as for test_redis.  Exit 77: skipped
    # (no redis-server, or built without hiredis).
    echo "--- valgrind test_conformance redis (without the concurrency and ttl tcases)"
    rc=0
    CK_EXCLUDE_TCASE=concurrency,ttl valgrind -q --error-exitcode=99 --leak-check=full \
      --errors-for-leak-kinds=definite build/plain/tests/test_conformance redis || rc=$?
    if [ "$rc" -eq 0 ]; then
      passed=$((passed + 1))
    elif [ "$rc" -ne 77 ]; then
      exit "$rc"
    fi
  fi
  # The table with its growth test at 100k keys instead of 1M (GC_TAB_SMALL),
  # without the tcases of racing threads: valgrind serialises them past
  # their timeout; ASan and TSan run them.
  echo "--- valgrind test_tab (GC_TAB_SMALL, without the racing tcases)"
  GC_TAB_SMALL=1 CK_EXCLUDE_TCASE=batch_atomic,race_plain,race_ttl_evict "${vg[@]}" \
    build/plain/tests/test_tab
  passed=$((passed + 1))
  # Snapshots without the crash tcase (it forks dumping children and kills
  # them; ASan covers it).
  echo "--- valgrind test_snapshot (without the crash tcase)"
  CK_EXCLUDE_TCASE=crash "${vg[@]}" build/plain/tests/test_snapshot
  passed=$((passed + 1))
  echo "--- valgrind fuzz_replay"
  "${vg[@]}" build/plain/tests/fuzz_replay tests/fuzz/corpus
  passed=$((passed + 1))
  echo "--- valgrind fuzz_snapshot_replay"
  "${vg[@]}" build/plain/tests/fuzz_snapshot_replay tests/fuzz/snapshot_corpus
  passed=$((passed + 1))
}

for mode in "${modes[@]}"; do
  if [ "$mode" = fuzz ]; then
    run_fuzz
    continue
  fi
  if [ "$mode" = valgrind ]; then
    run_valgrind
    continue
  fi
  case "$mode" in
    plain) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
    noredis) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DGC_WITH_REDIS=OFF -DGC_BUILD_BENCH=OFF) ;;
    asan)  flags=(-DCMAKE_BUILD_TYPE=Debug -DGC_ASAN=ON) ;;
    tsan)  flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DGC_TSAN=ON) ;;
    ubsan) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DGC_UBSAN=ON -DGC_BUILD_BENCH=OFF) ;;
    *) echo "run.sh: unknown mode '$mode' (plain, asan, tsan, ubsan, noredis, valgrind, fuzz)" >&2; exit 2 ;;
  esac
  # TSan runs the table's growth test at 100k keys instead of 1M.
  if [ "$mode" = tsan ]; then export GC_TAB_SMALL=1; else unset GC_TAB_SMALL; fi
  echo "=== gencache tests: $mode build"
  cmake -S . -B "build/$mode" -DGC_WERROR=ON "${flags[@]}" >/dev/null
  cmake --build "build/$mode" -j"$jobs"
  log=$(mktemp)
  (cd "build/$mode" && ctest --output-on-failure --timeout 300) | tee "$log"
  n=$(sed -n 's/.*tests passed, 0 tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -1)
  rm -f "$log"
  passed=$((passed + ${n:-0}))
done
echo "=== gencache tests: all passed (${modes[*]})"
# One closing line in the form CI reads: ctest runs summed over the builds.
echo "gencache: $passed passed, 0 failed"
