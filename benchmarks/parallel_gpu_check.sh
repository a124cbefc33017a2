#!/usr/bin/env bash
# On a lent GPU machine: run `edge-sdk run-parallel` with NCCL and print what it measured.
#   world size 1 (dp=tp=pp=1) on GPU 0 — exercises the NCCL code path (device per rank, nccl process group,
#   GPU placement of the weights, GPU timing with synchronize, output gathered to rank 0 and checked against the
#   model's own single-process forward on the same GPU); with 2+ GPUs also tp=2 and pp=2.
# Usage: benchmarks/parallel_gpu_check.sh        (from the repository root; PYTHON=... to pick the interpreter)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
nvidia-smi -L || echo "nvidia-smi not found"
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "gpus", torch.cuda.device_count(), "nccl", torch.distributed.is_nccl_available())'
NGPU=$("$PY" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)')
status=0
run() {
  echo "=== edge-sdk run-parallel $*"
  "$PY" -m edge_sdk run-parallel --backend nccl --timeout-s 300 "$@" || { echo "FAILED (exit $?)"; status=1; }
}
if [ "$NGPU" -lt 1 ]; then echo "no GPU visible to torch: nothing to check"; exit 2; fi
run --model examples/configs/tiny-llama.json --layout single --world-size 1 --batch 4 --seq-len 64
run --model examples/configs/tiny-bert.json --layout single --world-size 1 --batch 4 --seq-len 64 --json
run --model minilm --layout single --world-size 1 --batch 8 --seq-len 128
if [ "$NGPU" -ge 2 ]; then
  run --model examples/configs/tiny-llama.json --layout tp=2 --world-size 2 --batch 4 --seq-len 64
  run --model examples/configs/tiny-llama.json --layout pp=2 --world-size 2 --batch 4 --seq-len 64
fi
exit $status
