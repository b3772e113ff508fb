#!/bin/sh
# Kills a checkpoint save loop with SIGKILL at random moments, then loads and restores what it left.
# Usage: tests/GradFlow.Fuzz/kill-loop.sh [kills] (build first: dotnet build tests/GradFlow.Fuzz -c Release)
set -eu
kills=${1:-100}
bin=$(dirname "$0")/bin/Release/net10.0/GradFlow.Fuzz
dir=$(mktemp -d)
ok=0; torn=0; none=0; maxtemps=0
i=0
while [ "$i" -lt "$kills" ]; do
  "$bin" save-loop "$dir" &
  pid=$!
  # 0.3 to 2.3 s: startup plus some saves, the kill landing anywhere in a save.
  sleep "$(awk -v r="$(od -An -N2 -tu2 /dev/urandom)" 'BEGIN { printf "%.3f", 0.3 + (r % 2000) / 1000 }')"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  set -- $("$bin" check "$dir" || true)
  case "$1" in ok) ok=$((ok + 1)) ;; none) none=$((none + 1)) ;; *) torn=$((torn + 1)); echo "torn: $*" ;; esac
  [ "$2" -gt "$maxtemps" ] && maxtemps=$2
  i=$((i + 1))
done
# One save that runs to completion must clean up every temporary file the kills left.
"$bin" save-loop "$dir" & pid=$!; sleep 5; kill -9 "$pid"; wait "$pid" 2>/dev/null || true
set -- $("$bin" check "$dir")
echo "kills: $kills, loaded and restored: $ok, torn: $torn, no checkpoint yet: $none, most temporary files left at once: $maxtemps, after a later save: $2 (the last kill may leave one)"
rm -rf "$dir"
