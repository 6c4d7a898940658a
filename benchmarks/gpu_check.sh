#!/usr/bin/env bash
# GPU readiness check: run on a CUDA machine from the repository root.
#   benchmarks/gpu_check.sh [STEPS]        -> gpu_check.json (one process) and gpu_check_ddp.json (torchrun, nccl)
# Trains the 2017 configuration (InceptionV3, 299 px) with bf16 autocast and channels-last at batch 16 and
# 128, checks that the loss falls, and records images/s and peak memory. Not a test: never run by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-300}
PY=${PYTHON:-.venv/bin/python}
export PYTHONPATH="benchmarks:${PYTHONPATH:-}"
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA device")'
"$PY" benchmarks/gpu_check.py --steps "$STEPS" --batch 16 128 --out gpu_check.json
NGPU=$("$PY" -c 'import torch; print(torch.cuda.device_count())')
# DistributedDataParallel over every GPU with nccl (setup_distributed picks nccl on CUDA). With one GPU the
# process group has one rank: the torchrun path runs, the all-reduce does not cross devices.
"$PY" -m torch.distributed.run --standalone --nproc-per-node="$NGPU" benchmarks/gpu_check.py \
  --steps "$STEPS" --batch 16 --out gpu_check_ddp.json
cat gpu_check.json gpu_check_ddp.json
