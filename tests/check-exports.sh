#!/usr/bin/env bash
# Every symbol the shared library exports must (1) carry a public prefix and
# (2) be documented in docs/api.md (as `name(`).  Fails listing offenders.
# Usage: check-exports.sh LIBRARY API_MD
set -euo pipefail
lib=$1
doc=$2
syms=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBR]$/ {print $3}' | sort -u)
bad=0
for s in $syms; do
  case "$s" in
    actor_*|cache_*|sup_*|gencache_*) ;;
    _init|_fini|_edata|_end|__bss_start) continue ;;
    *) echo "check-exports: $s is exported but has no public prefix"; bad=1; continue ;;
  esac
  if ! grep -q "\b$s(" "$doc"; then
    echo "check-exports: $s is exported but not documented in $(basename "$doc")"
    bad=1
  fi
done
n=$(echo "$syms" | wc -w)
[ $bad -eq 0 ] && echo "check-exports: $n exported symbols, all public and documented"
exit $bad
