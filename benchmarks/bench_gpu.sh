#!/usr/bin/env bash
# `make bench-gpu`: the paper-scale figures README asks for, on one GPU, in under 8 minutes.
#   1. one S+T training step at paper shapes (bf16 autocast, synthetic in-memory batches), the
#      policy's validation on all |Ψ| and its overhead against basic training;
#   2. the all-ψ validation scoring against permuting the inputs: speed-up and peak memory;
#   3. the training loaders with worker processes (prepared data) and the device stage;
#   4. the per-core input pipeline and one GPU's consumption.
# Each part has its own time limit, so one slow part cannot eat the others' time.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
echo "== $(date -u '+%Y-%m-%d %H:%M UTC') on $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || echo 'no GPU'), $(nproc) cores"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
echo "== 1. paper-scale step (bf16), all-ψ validation, policy overhead"
timeout 150 $PY -m benchmarks.policy_overhead --paper-shapes --repeat 20
echo "== 2. all-ψ validation scoring vs permuting the inputs"
timeout 120 $PY -m benchmarks.validation_scoring --device auto
echo "== 3. loaders with workers (prepared data), device stage"
timeout 150 $PY -m benchmarks.loader_rate --workers "$(( $(nproc) / 2 ))" --batches 30
echo "== 4. per-core input pipeline"
timeout 90 $PY -m benchmarks.input_pipeline --rounds 3 --items 32
