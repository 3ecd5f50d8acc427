#!/usr/bin/env bash
# Every GPU check of the project in one run (for a lent CUDA machine with PyTorch but no TensorRT):
# CUDA-marked tests, the glue kernels compiled for CUDA, runtime memory/allocation/parity checks, the FP16
# policy on t and b+, a CUDA bench.
# Dependencies missing there travel as wheels in .whl/ (see the device notes); output goes to $OUT.
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
step() { echo; echo "=== $*"; }
step environment
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch, sam2, lmeec; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
step "pytest: CUDA-marked tests"
timeout 150 python3 -m pytest -q -rs -p no:cacheprovider tests/trt/test_trt_device.py tests/bench/test_bench_units.py -k "cuda or device or timer" 2>&1 | tail -12
step "kernels: compiled Triton kernels on CUDA vs PIL, torch and the ring (tests/kernels)"
timeout 180 python3 -m pytest -q -rs -p no:cacheprovider tests/kernels 2>&1 | tail -8
step "runtime on CUDA: glue allocations, flat device memory, parity (t, 200 frames)"
timeout 150 python3 benchmarks/cuda_runtime_check.py --preset t --frames 200 --json "$OUT/cuda_runtime_t.json"
step "FP16 policy vs FP32, native CUDA kernels (t, 30 frames)"
timeout 150 python3 benchmarks/gpu_check.py --preset t --frames 30 2>&1 | tail -14
step "FP16 policy vs FP32, native CUDA kernels (b+, 12 frames)"
timeout 150 python3 benchmarks/gpu_check.py --preset b+ --frames 12 2>&1 | tail -12
step "bench on CUDA (test preset, torch backend, CUDA-event section timing)"
timeout 150 python3 -m lmeec.cli bench --preset test --backend torch --device cuda --frames 60 --warmup 10 \
  --cache /tmp/lmeec-cache --out "$OUT/bench-cuda-test" 2>&1 | grep -v "it/s\]" | tail -30
echo; echo "=== done"
