#!/usr/bin/env bash
# The one prepared check for a session lent a GPU: install as the README says, run the CUDA tests,
# then the GPU benchmarks (image tower stock vs inference form on cuda; ViT-B-16 paper recipe,
# bf16 vs fp32). Results land in $OUT (the device tool's output folder) or the current folder.
set -euo pipefail
out="${OUT:-.}"
python3 -m venv .venv-gpu
. .venv-gpu/bin/activate
pip install -q -e ".[dev]"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
python -m pytest -q -rs tests/gpu tests/core/test_image_encoding.py 2>&1 | tee "$out/gpu-tests.txt"
python benchmarks/bench_invert.py --device cuda --parts tower gpu 2>&1 | tee "$out/bench-invert-gpu.json"
