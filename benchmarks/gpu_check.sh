#!/usr/bin/env bash
# The one prepared check for a session lent a GPU: the CUDA tests (tests/gpu) and the GPU benchmarks
# (image tower stock vs inference form on cuda; ViT-B-16 paper recipe, bf16 vs fp32; last, 8 prompts
# batched vs one at a time on cuda in fp32 and bf16, 3 rounds).
# The device machine fetches nothing, and its image has torch but not open_clip, so the wheels it
# lacks travel with the working tree:
#   here, once:    bash benchmarks/gpu_check.sh fetch     (into .whl/, which git ignores)
#   on the GPU:    the device tool's run, carry [".whl"], command `bash benchmarks/gpu_check.sh`
# Results land in $OUT (else gpu-check-out/): the test log, the benchmark's JSON and its stderr.
# A failing test does not stop the benchmarks; the script exits with the first failure's status.
set -uo pipefail
wheels=(open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4)
if [ "${1:-}" = fetch ]; then
    exec python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux2014_x86_64 -d .whl "${wheels[@]}"
fi
out="${OUT:-gpu-check-out}"
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD:$PWD/plugins" PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >"$out/install.txt" 2>&1 \
    || echo "editable install failed (see install.txt); running from the source tree"
python3 -c "import torch, open_clip; print('torch', torch.__version__, 'open_clip', open_clip.__version__, 'cuda',
            torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
rc=0
python3 -m pytest -q -rs -p no:cacheprovider tests/gpu 2>&1 | tee "$out/gpu-tests.txt" || rc=$?
python3 benchmarks/bench_invert.py --device cuda --parts tower gpu >"$out/bench-invert-gpu.json" \
    2>"$out/bench-invert-gpu.err" || { s=$?; [ "$rc" -ne 0 ] || rc=$s; }
cat "$out/bench-invert-gpu.json"
python3 benchmarks/bench_invert.py --device cuda --parts batch --repeats 3 >"$out/bench-invert-gpu-batch.json" \
    2>"$out/bench-invert-gpu-batch.err" || { s=$?; [ "$rc" -ne 0 ] || rc=$s; }
cat "$out/bench-invert-gpu-batch.json"
exit "$rc"
