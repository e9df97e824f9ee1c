#!/usr/bin/env bash
# The clic2022 recipe on a GPU as one prepared run (issue 20, item 3; docs/reproduce.md, docs/performance.md):
# a generated CLIC-format set, `prfnet train --config clic2022` in bf16-mixed and in fp32 (1 + 1 epochs), one short
# `prfnet eval clic`, and `benchmarks/bench_scoring.py --device cuda` (triplets/s in fp32, bf16, channels-last).
# ImageNet weights cannot be downloaded on the lent machines: the backbone starts from random res2net50_26w_4s
# weights that this script writes (model.backbone_weights), so the figures are about speed and memory, not accuracy.
#
#   bash benchmarks/gpu_recipe.sh OUT                       # on a CUDA machine, in the repository root
#   ACCEL=cpu SIZE=64 REFS=4 BENCH=0 bash benchmarks/gpu_recipe.sh /tmp/recipe   # a smoke test on a CPU
#
# Everything it measures lands in OUT: train-<precision>.json/.log/.time (wall time, peak host memory),
# gpu-memory-<precision>.csv (nvidia-smi samples, once a second), eval.json, bench_gpu.json, nvidia-smi.txt.
set -euo pipefail
OUT=${1:?usage: gpu_recipe.sh OUT}
ACCEL=${ACCEL:-gpu}
SIZE=${SIZE:-768}
REFS=${REFS:-24}
EPOCHS=${EPOCHS:-1}
BENCH=${BENCH:-1}
DEVICE=$([ "$ACCEL" = gpu ] && echo cuda || echo cpu)
mkdir -p "$OUT"
command -v nvidia-smi >/dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" || true

python - "$OUT/res2net50_26w_4s.safetensors" <<'PY'
import sys

import timm
import torch
from safetensors.torch import save_file

torch.manual_seed(0)
state = timm.create_model("res2net50_26w_4s", pretrained=False).state_dict()
save_file({k: v.contiguous() for k, v in state.items()}, sys.argv[1])
PY

prfnet synth "$OUT/data" --kind distortions --refs "$REFS" --size "$SIZE" --seed 0

for precision in bf16-mixed 32-true; do
    [ "$ACCEL" = cpu ] && [ "$precision" = bf16-mixed ] && continue  # bf16 autocast is a GPU feature here
    sampler=""
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=timestamp,memory.used --format=csv,noheader -l 1 > "$OUT/gpu-memory-$precision.csv" &
        sampler=$!
    fi
    /usr/bin/time -v -o "$OUT/train-$precision.time" prfnet train --config clic2022 --data "$OUT/data" \
        --out "$OUT/run-$precision" --accelerator "$ACCEL" --precision "$precision" \
        --set "model.backbone_weights=$OUT/res2net50_26w_4s.safetensors" --set "data.crop=$((SIZE < 256 ? SIZE : 256))" \
        --set "steps.classification.epochs=$EPOCHS" --set "steps.regression.epochs=$EPOCHS" \
        --set data.num_workers=4 --no-progress --json > "$OUT/train-$precision.json" 2> "$OUT/train-$precision.log" \
        || echo "train $precision failed: see $OUT/train-$precision.log"
    [ -n "$sampler" ] && kill "$sampler" || true
done

run=$(ls -d "$OUT"/run-*/ | head -1)
prfnet eval clic --csv "$OUT/data/validation.csv" --root "$OUT/data/images" --oracle "$OUT/data/oracle.csv" \
    --metrics prfnet,psnr,ssim -c "$run/model.safetensors" --device "$DEVICE" --out "$OUT/eval" --no-progress --json \
    > "$OUT/eval.json" 2> "$OUT/eval.log" || echo "eval failed: see $OUT/eval.log"

if [ "$BENCH" = 1 ]; then
    python benchmarks/bench_scoring.py --device "$DEVICE" --size 768 --repeats 5 --json-out "$OUT/bench_gpu.json" \
        > "$OUT/bench_gpu.txt" 2>&1 || echo "bench_scoring failed: see $OUT/bench_gpu.txt"
fi
echo "done: $OUT"
