#!/usr/bin/env bash
# The doctor's fault benchmark in one command: builds in Release and runs every scenario (pass --set tuning|held-out,
# --only NAME or --verbose through). Ends with the line "precision P recall R".
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet run -c Release --project bench/GradFlow.DoctorBench -- "$@"
