#!/usr/bin/env bash
# GradFlow vs PyTorch on every bench case, single-threaded and with 2 threads.
# Usage: bench/run.sh [--case NAME]... [--reps N] [--warmup N]   (arguments go to both sides)
# ROUNDS=N (default 3) repeats everything; report.py quotes the median over rounds. Within a round each case
# runs GradFlow then PyTorch back to back, so both sides see the same load on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3   # the system python that has python3-torch, not a pyenv shim
ROUNDS=${ROUNDS:-3}
mkdir -p bench/results
out="bench/results/$(date +%Y%m%d-%H%M%S).jsonl"

dotnet build bench/GradFlow.Bench/GradFlow.Bench.csproj -c Release -v quiet --nologo >/dev/null
cases=()
prev=""
for a in "$@"; do [[ "$prev" == "--case" ]] && cases+=("$a"); prev="$a"; done
if [[ ${#cases[@]} -eq 0 ]]; then
  mapfile -t cases < <(dotnet bench/GradFlow.Bench/bin/Release/net10.0/GradFlow.Bench.dll --list)
fi
extra=()
skip=0
for a in "$@"; do
  if [[ $skip -eq 1 ]]; then skip=0; continue; fi
  if [[ "$a" == "--case" ]]; then skip=1; continue; fi
  extra+=("$a")
done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out"
for round in $(seq "$ROUNDS"); do
  for threads in 1 2; do
    for c in "${cases[@]}"; do
      GRADFLOW_NUM_THREADS=$threads dotnet bench/GradFlow.Bench/bin/Release/net10.0/GradFlow.Bench.dll --case "$c" "${extra[@]}" | tee -a "$out"
      # OMP_WAIT_POLICY=PASSIVE: on a shared 2-core machine OpenMP's default spin-waiting collapses when another
      # process holds a core (deep_sigmoid at 2 threads measured 812 ms instead of 15); passive waiting is PyTorch's best case.
      OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OMP_WAIT_POLICY=PASSIVE \
        "$PY" bench/torch_bench.py --threads "$threads" --case "$c" "${extra[@]}" | tee -a "$out"
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out"
"$PY" bench/report.py < "$out"
echo
echo "raw results: $out"
