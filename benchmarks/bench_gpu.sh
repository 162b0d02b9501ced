#!/usr/bin/env bash
# `make bench-gpu`: the GPU figures docs/gpu.md reports, end to end, in about 6 minutes on one
# H100/H200-class GPU with 16 cores (each part has its own time limit):
#   1. paper-format data: ImageNet-format photos and UCF-101-format AVIs (benchmarks.paper_fixture),
#      prepared with the project's own commands (prepare_images, prepare_frames --format uint8);
#   2. the model step and the policy's overhead at paper shapes (policy_overhead --paper-shapes);
#   3. train.py experiment=st_policy scale=paper end to end, JPEGs decoded in the loader workers;
#   4. the same with tasks.spatial.pretext.decode=device;
#   5. the model step under each speed setting (benchmarks.step_levers);
#   6. the loaders' rate per worker process (the cores each input path needs);
#   7. where the device time goes: the model step and each device stage, by kernel
#      (benchmarks.gpu_profile).
# Writes everything to docs/results/gpu/<gpu>_<date>.txt; its last line holds the figures.
# BENCH_PARTS="1 3 4" runs only those parts (1, the data, is needed by 3, 4 and 6).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
GPU=${GPU:-no GPU}
CORES=$(nproc)
WORKERS=$(( CORES / 2 > 0 ? CORES / 2 : 1 ))
STEPS=${BENCH_STEPS:-400}
WORK=${BENCH_WORKDIR:-$(mktemp -d -t bench_gpu_XXXX)}
OUTDIR=${BENCH_OUTDIR:-docs/results/gpu}
mkdir -p "$OUTDIR" "$WORK"
OUTFILE="$OUTDIR/$(echo "$GPU" | tr -c 'A-Za-z0-9\n' '_')_$(date -u +%Y-%m-%d).txt"
PARTS=" ${BENCH_PARTS:-1 2 3 4 5 6 7} "
export PYTHONUNBUFFERED=1
part() { [[ "$PARTS" == *" $1 "* ]]; }
# Runs "$@" while nvidia-smi samples the GPU's utilisation (the share of time a kernel runs);
# prints its mean over the samples after the first busy one (start-up excluded).
gpu_busy() {
  nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 250 \
    > "$WORK/util.txt" 2>/dev/null &
  local sampler=$!
  "$@"
  kill "$sampler" 2>/dev/null
  awk 'busy || $1 > 0 {busy = 1; s += $1; n++}
       END {if (n) printf "GPU busy (nvidia-smi, from the first kernel on): %.0f %% of %d samples\n", s / n, n}' \
    "$WORK/util.txt"
}

{
echo "== $(date -u '+%Y-%m-%d %H:%M UTC') on $GPU, $CORES cores, $WORKERS loader workers per task"
$PY -c "import torch, torchvision, pytorch_lightning as pl; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'torchvision', torchvision.__version__, 'lightning', pl.__version__)"
echo "commit ${BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null)}"
if part 1; then
  echo "== 1. paper-format data (generated, then prepared with the project's commands)"
  start=$(date +%s)
  timeout 120 $PY -m benchmarks.paper_fixture --root "$WORK" --workers "$CORES"
  for split in train val; do
    timeout 60 $PY -m ssl_rl.data.prepare_images --src "$WORK/imagenet/$split" \
      --dst "$WORK/imagenet/${split}_256" --workers "$CORES" --no-progress | tail -1
  done
  timeout 90 $PY -m ssl_rl.data.prepare_frames --src "$WORK/ucf101/UCF-101" \
    --dst "$WORK/ucf101/UCF-101-uint8" --format uint8 --for-transform 128,112,64 \
    --workers "$CORES" --no-progress | tail -1
  echo "data ready in $(( $(date +%s) - start )) s"
fi
if part 2; then
  echo "== 2. the model step (defaults) and the policy's overhead at paper shapes"
  timeout 90 $PY -m benchmarks.policy_overhead --paper-shapes --repeat 20 | tee "$WORK/overhead.txt"
fi
if part 3; then
  echo "== 3. end to end: train.py experiment=st_policy scale=paper, decode in the loader workers"
  gpu_busy timeout 150 $PY -m benchmarks.e2e_train --data "$WORK" --steps "$STEPS" --name workers \
    "data.num_workers=$WORKERS" | tee "$WORK/e2e_workers.txt"
fi
if part 4; then
  echo "== 4. end to end with tasks.spatial.pretext.decode=device"
  gpu_busy timeout 150 $PY -m benchmarks.e2e_train --data "$WORK" --steps "$STEPS" --name decode_device \
    "data.num_workers=$WORKERS" tasks.spatial.pretext.decode=device | tee "$WORK/e2e_device.txt"
fi
if part 5; then
  echo "== 5. the model step under each speed setting"
  timeout 150 $PY -m benchmarks.step_levers --repeat 20 | tee "$WORK/levers.txt"
fi
if part 6; then
  echo "== 6. the loaders per worker process (prepared data), and the device stage"
  timeout 90 $PY -m benchmarks.loader_rate --data "$WORK" --workers "$WORKERS" --batches 20
fi
if part 7; then
  echo "== 7. where the device time goes (the model step and the device stages, by kernel)"
  timeout 120 $PY -m benchmarks.gpu_profile --data "$WORK" --repeat 10 --rows 15
fi
echo "== figures"
$PY -m benchmarks.gpu_line "$WORK/levers.txt" "$WORK/overhead.txt" "$WORK/e2e_workers.txt" \
  "$WORK/e2e_device.txt"
} 2>&1 | tee "$OUTFILE"
echo "written to $OUTFILE"
