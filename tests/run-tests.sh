#!/usr/bin/env bash
# The test command (README.md, .ci/run): installs the Debian packages the tests need when they are missing, then
# runs every test project and prints the totals as one plain line. A missing package is installed, never skipped:
# the tests that need it fail with the install command if it still cannot be had.
#   chromium               the HTML report's browser test
#   dataset-fashion-mnist  the tests that read the real Fashion-MNIST files
#   openmpi-bin, libopenmpi-dev  the distributed tests (mpirun -np 2 on this machine; they fail, not skip, without it)
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || missing+=(dataset-fashion-mnist)
command -v mpirun >/dev/null || missing+=(openmpi-bin libopenmpi-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (Debian packages the tests need)"
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

results="$(mktemp -d)"
status=0
for project in tests/*/*.Tests.csproj; do
  name="$(basename "$project" .csproj)"
  dotnet test "$project" -c Release "$@" --logger "trx;LogFileName=$name.trx" --results-directory "$results" || status=$?
done
passed=0 failed=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  passed=$((passed + $(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")))
  failed=$((failed + $(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")))
done
echo "tests: $passed passed, $failed failed"
exit "$status"
