#!/usr/bin/env bash
# Build gencache and run every test suite, three ways:
#   plain  -Werror build                    (build/plain)
#   asan   AddressSanitizer + UBSan          (build/asan)
#   tsan   ThreadSanitizer, ck builtins on   (build/tsan)
# Usage: bash tests/run.sh [plain|asan|tsan ...]   (default: all three)
# Installs missing packages first (tests/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/install-deps.sh

modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(plain asan tsan)
jobs=$(nproc 2>/dev/null || echo 2)

# Sanitizer settings: fail on the first report; keep Check's fork mode.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp"

for mode in "${modes[@]}"; do
  case "$mode" in
    plain) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
    asan)  flags=(-DCMAKE_BUILD_TYPE=Debug -DGC_ASAN=ON) ;;
    tsan)  flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DGC_TSAN=ON) ;;
    *) echo "run.sh: unknown mode '$mode' (plain, asan, tsan)" >&2; exit 2 ;;
  esac
  echo "=== gencache tests: $mode build"
  cmake -S . -B "build/$mode" -DGC_WERROR=ON "${flags[@]}" >/dev/null
  cmake --build "build/$mode" -j"$jobs"
  (cd "build/$mode" && ctest --output-on-failure --timeout 300)
done
echo "=== gencache tests: all passed (${modes[*]})"
