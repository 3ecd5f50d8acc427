#!/usr/bin/env bash
# Every GPU check of the project in one run (for a lent CUDA machine with PyTorch but no TensorRT):
# CUDA-marked tests, the glue kernels compiled for CUDA, the device step (no host sync, CUDA graphs vs eager),
# runtime memory/allocation/parity checks, the FP16 policy on t and b+, the GPU step side by side on b+ and t
# (benchmarks/gpu_step.py: eager FP32 vs captured FP16/BF16 at 1408² -> 3840x2160), a CUDA bench.
# The whole run stays under BUDGET seconds (default 460, the session's 8 minutes less a margin): each
# check runs under min(its own limit, what is left), in order of importance, and is skipped when under 20 s
# are left. Dependencies missing there travel as wheels in .whl/ (make them here with scripts/gpu_wheels.sh and carry
# .whl: `bash benchmarks/gpu_session.sh` from the repo root there); output goes to $OUT.
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
BUDGET=${BUDGET:-460}
step() { echo; echo "=== $* ($((BUDGET - SECONDS)) s of the budget left)"; }
# within LIMIT CMD...: run CMD under min(LIMIT, seconds left); refuse to start with under 20 s left
within() {
  local limit=$1; shift
  local left=$((BUDGET - SECONDS))
  if (( left < 20 )); then echo "skipped: the session budget (${BUDGET} s) is spent"; return 0; fi
  timeout $(( limit < left ? limit : left )) "$@"
}
step environment
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch, sam2, lmeec; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
step "GPU step side by side (b+, t): eager FP32 vs captured FP16/BF16, 1408² -> 3840x2160, IoU, allocations, memory"
within 240 python3 benchmarks/gpu_step.py --presets b+,t --timed 30 --alloc-steps 10 --json "$OUT/gpu_step.json" 2>&1 \
  | tee "$OUT/gpu_step.txt" | grep -v "^  " | tail -40
echo "gpu_step exit: ${PIPESTATUS[0]}"
step "device step on CUDA: no host synchronisation, captured graphs equal the eager step, no steady-state allocation"
within 90 python3 -m pytest -q -rs -p no:cacheprovider tests/runtime/test_device_step.py 2>&1 | tail -8
step "kernels: compiled Triton kernels on CUDA vs PIL, torch and the ring (tests/kernels)"
within 90 python3 -m pytest -q -rs -p no:cacheprovider tests/kernels 2>&1 | tail -8
step "pytest: CUDA-marked tests"
within 60 python3 -m pytest -q -rs -p no:cacheprovider tests/trt/test_trt_device.py tests/bench/test_bench_units.py -k "cuda or device or timer" 2>&1 | tail -12
step "several objects on CUDA (t, torch backend): one batched pass vs K passes, K = 1, 4, 8"
within 60 python3 benchmarks/objects.py --preset t --backend torch --device cuda --frames 10 --repeats 2 \
  --objects 1,4,8 --out "$OUT/objects_cuda_t.json" 2>&1 | tail -12
step "runtime on CUDA: glue allocations, flat device memory, parity (t, 200 frames)"
within 60 python3 benchmarks/cuda_runtime_check.py --preset t --frames 200 --json "$OUT/cuda_runtime_t.json"
step "bench on CUDA, the step options (test preset, device I/O + FP16 + CUDA graph, 1408² -> 3840x2160 random frames)"
within 60 python3 -m lmeec.cli bench --preset test --backend torch --device cuda --device-io --precision fp16 \
  --graph --frames-source random --frames 40 --warmup 10 --cache /tmp/lmeec-cache --no-progress \
  --out "$OUT/bench-cuda-test-graph" 2>&1 | tail -30
step "FP16 policy vs FP32, native CUDA kernels (t, 30 frames)"
within 60 python3 benchmarks/gpu_check.py --preset t --frames 30 2>&1 | tail -14
step "FP16 policy vs FP32, native CUDA kernels (b+, 12 frames)"
within 60 python3 benchmarks/gpu_check.py --preset b+ --frames 12 2>&1 | tail -12
echo; echo "=== done in ${SECONDS} s"
