#!/usr/bin/env bash
# Exports every model of the ONNX Runtime tests (GradFlow.Onnx.Tests) into a temporary directory and checks them
# with the onnx package's checker (Debian's python3-onnx, installed when missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
/usr/bin/python3 -c "import onnx" 2>/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-onnx >/dev/null; }
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
GRADFLOW_ONNX_EXPORT_DIR="$dir" dotnet test tests/GradFlow.Onnx.Tests -c Release --filter "FullyQualifiedName~ExportTests" >/dev/null
/usr/bin/python3 tools/onnx/check.py "$dir"
