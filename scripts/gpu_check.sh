#!/usr/bin/env bash
# One call on a GPU machine (issue 23): versions, the GPU link's tests, the benchmark.
# Run from the repository root:  bash scripts/gpu_check.sh
# Log: $OUT/gpu_check.log (or ./gpu_check.log without $OUT). Each stage is guarded (a
# failure is reported and the next stage runs); the whole script stays under ~6 minutes.
set -u
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
LOG="${OUT:-.}/gpu_check.log"
PY="${PYTHON:-python3}"
: > "$LOG"
stage() {  # stage NAME TIMEOUT_S CMD...
  local name=$1 limit=$2; shift 2
  echo "=== $name ($(date -u +%H:%M:%S), limit ${limit}s)" | tee -a "$LOG"
  local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: rc=$rc in $((SECONDS - t0)) s" | tee -a "$LOG"
}
if compgen -G ".whl/*.whl" > /dev/null; then
  stage "install carried wheels" 120 "$PY" -m pip install -q --no-index --no-deps \
    --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD"
fi
stage "versions" 60 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version \
  --format=csv; $PY -c 'import sys, torch, triton, numba; print(sys.version.split()[0], \
  \"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"triton\", triton.__version__, \
  \"numba\", numba.__version__, torch.cuda.get_device_name(0))'"
stage "GPU link tests (incl. gpu-marked: >= 1,000 blocks vs numba)" 200 \
  "$PY" -m pytest tests/channels/test_gpu_decoder.py -m "not slow" -q -p no:cacheprovider \
  --durations=5
stage "benchmark: gpu chain, decoder only, sionna eager+compiled, numba 1/all threads" 330 \
  "$PY" benchmarks/_gpu_link.py --device cuda:0 --esno-db 8.0
echo "log: $LOG"
