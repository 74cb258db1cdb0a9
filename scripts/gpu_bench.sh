#!/usr/bin/env bash
# The speed benchmark's GPU parts, one part per command, each short: run this on a GPU host from the clone's root.
#   bash scripts/gpu_bench.sh check     the GPU-only tests and the runner on CUDA (embedded photos)
#   bash scripts/gpu_bench.sh pixel     IG, SIG, Blur IG, Guided IG, Gradient x Input, random
#   bash scripts/gpu_bench.sh heavy     IG2, AGI, SAMP
#   bash scripts/gpu_bench.sh latent    MA-GIG, EIG (SD-shaped VAE)
#   bash scripts/gpu_bench.sh mig       MIG
#   bash scripts/gpu_bench.sh metrics   the metrics and the table-1 GPU-hour estimate
# Outputs go to $OUT (default /tmp/gpu_out): speed/cuda-<gpu>.{csv,md} and table1_estimate_cuda-<gpu>.md, plus the
# logs of `check`. Copy $OUT/speed/* back into results/speed/ after each part (the next part merges its rows into
# the same per-device files, which the script copies into $OUT first), then commit them.
# A host without internet installs the packages it lacks from .whl/ (filled beforehand by scripts/gpu_wheels.sh).
# Setting: ResNet-18 at 256x256, batch 32, 200 steps (the papers'); BATCH / SIZE / STEPS / EXTRA override it.
set -uo pipefail
cd "$(dirname "$0")/.."
part=${1:?usage: gpu_bench.sh check|pixel|heavy|latent|mig|metrics}
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT/speed"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 WANDB_MODE=disabled
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
cp results/speed/cuda-* "$OUT/speed/" 2>/dev/null || true
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, timm; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'timm', timm.__version__)"

BATCH=${BATCH:-32}; SIZE=${SIZE:-256}; STEPS=${STEPS:-200}; EXTRA=${EXTRA:-}; DEVICE=${DEVICE:-cuda}  # DEVICE=cpu: a dry run
speed() {
    python3 -m benchmarks.perf.speed --device "$DEVICE" --model resnet18 --image-size "$SIZE" --batch "$BATCH" \
        --n-steps "$STEPS" --vae sd --out "$OUT/speed" $EXTRA "$@"
}
case "$part" in
    check)
        # the GPU-only tests (skipped in CI) and the runner's CUDA path on the embedded photos
        python3 -m pytest -q -m gpu -p no:cacheprovider tests 2>&1 | tee "$OUT/gpu_tests.log"
        # the run's folder stays outside $OUT; its table is copied there
        python3 -m benchmarks.demo --suites photos --methods ig,guided_ig,sig device="$DEVICE" batch_size=6 \
            out_dir=/tmp/demo_cuda write_tables=true 2>&1 | tail -40 | tee "$OUT/runner_cuda.log"
        cp /tmp/demo_cuda/table.md "$OUT/runner_table.md"
        ;;
    pixel)   speed --methods grad_input,ig,sig,blur_ig,guided_ig,random --metrics none --no-estimate ;;
    heavy)   speed --methods ig2,agi,samp --metrics none --no-estimate ;;
    latent)  speed --methods ma_gig,eig --metrics none --no-estimate ;;
    mig)     speed --methods mig --metrics none --no-estimate ;;
    metrics) speed --methods ig --metrics diffid,insertion_deletion,pic,completeness,quantus_pixel_flipping \
                 --estimate-models vgg16,resnet18,inception_v1 ;;
    *) echo "unknown part $part: check|pixel|heavy|latent|mig|metrics"; exit 2 ;;
esac
