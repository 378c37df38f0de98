#!/bin/sh
# The device check (issue 21), for a bare GPU machine whose python3 has torch, numpy and
# pytest: core tests on cuda, GPU-vs-CPU agreement, steps/s, CUDA-graph capture, runs per GPU.
# Writes ONE JSON file: $OUT/gpu_check.json when $OUT is set, else --out PATH.
#   sh tools/gpu_check.sh                  # auto device (cuda on a GPU machine)
#   sh tools/gpu_check.sh --device cpu --quick --out /tmp/gpu_check.json
# PYTHON overrides the interpreter (default python3). Killed at 470 s: under 8 minutes.
set -eu
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
if command -v timeout >/dev/null 2>&1; then
    exec timeout -k 5 470 "$PY" -m tools.gpu_check "$@"
fi
exec "$PY" -m tools.gpu_check "$@"
