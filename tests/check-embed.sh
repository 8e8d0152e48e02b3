#!/usr/bin/env bash
# Embed gencache in two small consumer projects (tests/embed), one through
# add_subdirectory and one through FetchContent (SOURCE_DIR: no network),
# each configured as Debug, and check that gencache
#   - leaves the parent's build type alone (and sets none when it has none),
#   - builds none of its tests, examples or benchmarks,
#   - keeps its warning flags (and -Werror, asked for here) on its own
#     targets, off the parent's,
#   - gives gencache::gencache and gencache::gencache_static, whose programs
#     build and run.
# Usage: check-embed.sh SOURCE_DIR C_COMPILER WITH_REDIS(ON|OFF)
set -euo pipefail
src=$1
cc=$2
redis=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "check-embed: $*" >&2; exit 1; }

# The command line that compiles the first source whose object path
# matches $2, from the compile database in build dir $1.
compile_cmd() {
  # No grep -m1 in the pipe: quitting early would SIGPIPE the first grep,
  # which pipefail turns into a failure when the database is large.
  local line
  line=$(grep '"command":' "$1/compile_commands.json" | grep -e "$2" | sed -n 1p) || true
  [ -n "$line" ] || fail "$1: no compile command matching $2"
  printf '%s\n' "$line"
}

for mode in subdirectory fetchcontent; do
  b=$tmp/$mode
  cmake -S "$src/tests/embed" -B "$b" -DGENCACHE_SOURCE_DIR="$src" -DGC_EMBED_MODE=$mode \
        -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER="$cc" -DGC_WITH_REDIS="$redis" \
        -DGC_WERROR=ON -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$tmp/$mode.log" 2>&1 ||
    { cat "$tmp/$mode.log" >&2; fail "$mode: configure failed"; }

  grep -qx 'CMAKE_BUILD_TYPE:STRING=Debug' "$b/CMakeCache.txt" ||
    fail "$mode: the parent's CMAKE_BUILD_TYPE=Debug was overridden: $(grep '^CMAKE_BUILD_TYPE:' "$b/CMakeCache.txt")"
  for opt in GC_BUILD_TESTS GC_BUILD_EXAMPLES GC_BUILD_BENCH; do
    grep -qx "$opt:BOOL=OFF" "$b/CMakeCache.txt" || fail "$mode: $opt is not OFF when embedded"
  done
  targets=$(cmake --build "$b" --target help)
  for t in test_actor fuzz_replay hello_actor gencache_bench; do
    if grep -qw "$t" <<<"$targets"; then fail "$mode: embedding defines target $t"; fi
  done

  # gencache's own code: its warnings and -Werror, and the parent's Debug
  # flags (no -DNDEBUG from RelWithDebInfo).  The parent's code: neither.
  lib=$(compile_cmd "$b" 'gencache_obj.dir/.*mailbox\.c\.o')
  for f in -Wall -Wshadow -Werror; do
    grep -qe "$f" <<<"$lib" || fail "$mode: gencache's sources lack $f"
  done
  if grep -qe '-DNDEBUG' <<<"$lib"; then fail "$mode: gencache was not built as Debug: $lib"; fi
  app=$(compile_cmd "$b" 'consumer\.dir/')
  for f in -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror -fsanitize; do
    if grep -qe "$f" <<<"$app"; then fail "$mode: gencache imposed $f on the parent: $app"; fi
  done

  cmake --build "$b" --target consumer consumer_static -j2 >>"$tmp/$mode.log" 2>&1 ||
    { cat "$tmp/$mode.log" >&2; fail "$mode: build failed"; }
  "$b/consumer"
  "$b/consumer_static"
done

# A parent that chose no build type keeps none: gencache's RelWithDebInfo
# default is for top-level builds only.
b=$tmp/nobuildtype
cmake -S "$src/tests/embed" -B "$b" -DGENCACHE_SOURCE_DIR="$src" -DGC_EMBED_MODE=subdirectory \
      -DCMAKE_C_COMPILER="$cc" -DGC_WITH_REDIS="$redis" >"$tmp/nobuildtype.log" 2>&1 ||
  { cat "$tmp/nobuildtype.log" >&2; fail "configure without a build type failed"; }
if grep -q '^CMAKE_BUILD_TYPE:.*=.' "$b/CMakeCache.txt"; then
  fail "embedded gencache set the parent's build type: $(grep '^CMAKE_BUILD_TYPE:' "$b/CMakeCache.txt")"
fi
echo "check-embed: add_subdirectory and FetchContent consumers built and ran"
