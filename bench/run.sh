#!/usr/bin/env bash
# GradFlow vs PyTorch on every bench case, single-threaded and with 2 threads.
# Usage: bench/run.sh [--case NAME]... [--reps N] [--warmup N]   (arguments go to both sides)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3   # the system python that has python3-torch, not a pyenv shim
mkdir -p bench/results
out="bench/results/$(date +%Y%m%d-%H%M%S).jsonl"

dotnet build bench/GradFlow.Bench/GradFlow.Bench.csproj -c Release -v quiet --nologo >/dev/null
for threads in 1 2; do
  GRADFLOW_NUM_THREADS=$threads dotnet bench/GradFlow.Bench/bin/Release/net10.0/GradFlow.Bench.dll "$@" | tee -a "$out"
  OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads \
    "$PY" bench/torch_bench.py --threads "$threads" "$@" | tee -a "$out"
done
"$PY" bench/report.py < "$out"
echo
echo "raw results: $out"
