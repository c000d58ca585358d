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
# With --no-build, LP_CPP_TESTS=DIR runs the C++ test programs of a build made
# elsewhere (-DLP_TESTS=ON): test_engine at 1, 2 and 3 ranks, test_check_app.
# Each step stops after LP_STEP_TIMEOUT seconds (default 600), so one hung
# step cannot take the whole run.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}" OMP_WAIT_POLICY=passive LP_REQUIRE_GPU=1
PY="${PYTHON:-$(command -v python || command -v python3)}"
# The environment's own programs first: its mpiexec is the MPI that mpi4py loads.
PATH="$("$PY" -c 'import os, sys; print(os.path.join(sys.prefix, "bin"))'):$PATH"
export PATH
status=0
step() {  # step NAME COMMAND...: run, log to $OUT/NAME.log, remember the first failure
  local name=$1
  shift
  echo "== $name: $*"
  local t0=$SECONDS
  timeout "${LP_STEP_TIMEOUT:-600}" "$@" >"$OUT/$name.log" 2>&1
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
  step build "$PY" -m pip install --no-build-isolation -e . -Cbuild-dir=build/gpu-check \
    -Ccmake.define.LP_CUDA=ON -Ccmake.define.LP_TESTS=ON \
    -Ccmake.define.CMAKE_CUDA_ARCHITECTURES=native
  step ctest bash -c "cd build/gpu-check && ctest --output-on-failure"
elif [ -n "${LP_CPP_TESTS:-}" ]; then
  step ctest bash -c "set -e; d='$LP_CPP_TESTS'; \"\$d/test_engine\"; \"\$d/test_check_app\";
    for n in 2 3; do mpiexec -n \$n \"\$d/test_engine\"; done"
fi
step cuda_built "$PY" -c "import layerparallel as lp; assert lp.cuda_available(), 'no usable CUDA device'; print(lp._core.device_name(0))"
step pytest_gpu "$PY" -m pytest -q -rfE --durations=10 -p no:cacheprovider tests/test_gpu.py \
  tests/test_gpu_layer_parallel.py tests/test_batched.py tests/test_gpu_support.py \
  tests/test_backend.py
# The command line on the device: serial L-BFGS, then one-shot MGRIT on 2 ranks.
step cli_cuda bash -c "'$PY' -m layerparallel train --device cuda --layers 64 --iterations 20 \
  --no-mgrit && mpiexec -n 2 '$PY' -m layerparallel train --device cuda \
  --layers 64 --iterations 20 --mgrit --one-shot 2"
step bench_gpu bash -c "'$PY' bench/gpu.py --min-seconds 0.3 > '$OUT/bench_gpu.jsonl'"
step bench_gpu_layer_parallel bash -c \
  "'$PY' bench/gpu_layer_parallel.py --quick > '$OUT/bench_gpu_layer_parallel.jsonl'"
echo "gpu_check: exit status $status (logs in $OUT)"
exit $status
