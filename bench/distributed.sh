#!/usr/bin/env bash
# Data-parallel figures for docs/DISTRIBUTED.md, in one run: on this 2-core machine, the mlp and cnn bench cases at
# 2 ranks x 1 thread, 2 ranks x 1 thread without communication, 1 process x 1 thread, 1 process x 2 threads and 1 process x 1 thread on one core
# (examples per second), then the allreduce of
# 4 KB to 64 MB through GradFlow's binding and through Open MPI's C API (allreduce.c). Run it on an idle machine:
# the figures are timings. Needs Open MPI (apt-get install openmpi-bin libopenmpi-dev; mpicc comes with the -dev package).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
root=(); [ "$(id -u)" -eq 0 ] && root=(--allow-run-as-root)
dotnet build bench/GradFlow.DistributedBench -c Release -o bench/GradFlow.DistributedBench/bin/out >/dev/null
app=bench/GradFlow.DistributedBench/bin/out/GradFlow.DistributedBench.dll
cc_out="$(mktemp -d)/allreduce"
mpicc -O2 -o "$cc_out" bench/GradFlow.DistributedBench/allreduce.c

# Each rank bound to a core of its own, as MpiLauncher starts them (--map-by slot:PE=1; --report-bindings shows it). Each
# configuration also prints a `process` line: cores seen, kernel threads, bytes allocated and collections per step, and
# methods the JIT compiled while timing (0-2 once the warm-up has let tiered compilation settle; see docs/DISTRIBUTED.md).
# The fourth line of a case is 1 process x 1 thread bound to one core like a rank: the difference from the third is what
# the process gained from the idle second core (its runtime's background threads), which a rank does not have.
# The second line of a case is the ceiling: the same two bound ranks training side by side without DistributedDataParallel
# (no communication at all); what separates the first line from it is the data-parallel step's own cost.
for case in mlp cnn; do
  mpirun -np 2 --map-by slot:PE=1 --report-bindings "${root[@]}" -x GRADFLOW_NUM_THREADS=1 dotnet "$app" throughput --case "$case"
  mpirun -np 2 --map-by slot:PE=1 "${root[@]}" -x GRADFLOW_NUM_THREADS=1 dotnet "$app" throughput --case "$case" --ddp 0
  GRADFLOW_NUM_THREADS=1 dotnet "$app" throughput --case "$case"
  GRADFLOW_NUM_THREADS=2 dotnet "$app" throughput --case "$case"
  GRADFLOW_NUM_THREADS=1 taskset -c 0 dotnet "$app" throughput --case "$case"
  # A/B in one job: rank 0 alone, two ranks without communication, MPI's allreduce and the shared window, alternated by
  # blocks (medians of per-round ratios), and each DDP's per-step time breakdown on each rank.
  mpirun -np 2 --map-by slot:PE=1 "${root[@]}" -x GRADFLOW_NUM_THREADS=1 dotnet "$app" ab --case "$case"
done
mpirun -np 2 --map-by slot:PE=1 "${root[@]}" dotnet "$app" reducers
mpirun -np 2 --oversubscribe "${root[@]}" dotnet "$app" allreduce
mpirun -np 2 --oversubscribe "${root[@]}" "$cc_out"
