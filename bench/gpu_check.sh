#!/usr/bin/env bash
# Every device check of the package in one run (< 10 minutes on one GPU):
# the CUDA build, the GPU tests with LP_REQUIRE_GPU=1 (a missing device
# fails), the C++ tests on the device, bench/gpu.py and
# bench/gpu_layer_parallel.py --quick. Results go to $OUT (default
# ./gpu-check-out): pytest logs, ctest log, the benchmarks' JSON rows, the
# device's name. Steps run on even if one fails; the exit status is the
# first failure's.
#
#   bash bench/gpu_check.sh              # build, then test and measure
#   bash bench/gpu_check.sh --no-build   # the installed package as it is
#
# The build needs nvcc and cuBLAS (the toolkit's, or the nvidia-cublas wheel
# installed beforehand; see docs/gpu.md) and builds for the local GPU only.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}" OMP_WAIT_POLICY=passive LP_REQUIRE_GPU=1
status=0
step() {  # step NAME COMMAND...: run, log to $OUT/NAME.log, remember the first failure
  local name=$1
  shift
  echo "== $name: $*"
  local t0=$SECONDS
  "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "   rc=$rc, $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
  tail -3 "$OUT/$name.log"
  [ $rc -ne 0 ] && [ $status -eq 0 ] && status=$rc
  return 0
}
{ date; nvidia-smi -L 2>&1; nvcc --version 2>&1 | tail -1; } >"$OUT/machine.txt"
cat "$OUT/machine.txt"
if [ "${1:-}" != "--no-build" ]; then
  export CUDACXX="${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
  step build pip install --no-build-isolation -e . -Cbuild-dir=build/gpu-check \
    -Ccmake.define.LP_CUDA=ON -Ccmake.define.LP_TESTS=ON \
    -Ccmake.define.CMAKE_CUDA_ARCHITECTURES=native
  step ctest bash -c "cd build/gpu-check && ctest --output-on-failure"
fi
step cuda_built python -c "import layerparallel as lp; assert lp.cuda_available(), 'no usable CUDA device'; print(lp._core.device_name(0))"
step pytest_gpu python -m pytest -q -p no:cacheprovider tests/test_gpu.py \
  tests/test_gpu_layer_parallel.py tests/test_batched.py tests/test_gpu_support.py
step bench_gpu bash -c "python bench/gpu.py --min-seconds 0.3 > '$OUT/bench_gpu.jsonl'"
step bench_gpu_layer_parallel bash -c \
  "python bench/gpu_layer_parallel.py --quick > '$OUT/bench_gpu_layer_parallel.jsonl'"
echo "gpu_check: exit status $status (logs in $OUT)"
exit $status
