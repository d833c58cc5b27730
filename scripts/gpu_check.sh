#!/usr/bin/env bash
# One call on a GPU machine (issue 23): versions, the GPU link's tests, the benchmark.
# Run from the repository root:  bash scripts/gpu_check.sh
# Log: $OUT/gpu_check.log (or ./gpu_check.log without $OUT). Each stage is guarded (a
# failure is reported and the next stage runs); stage limits sum to 480 s
# (+90 s with carried wheels), a normal run ~3-4 min.
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
  stage "install carried wheels" 90 "$PY" -m pip install -q --no-index --no-deps \
    --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD"
fi
stage "versions" 30 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version \
  --format=csv; $PY -c '
import importlib.metadata as md, sys, torch
print(\"python\", sys.version.split()[0], \"cuda\", torch.version.cuda,
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else \"NO CUDA\")
for p in (\"torch\", \"triton\", \"numba\", \"scipy\", \"sionna-no-rt\", \"pyyaml\"):
    try:
        print(p, md.version(p))
    except md.PackageNotFoundError:
        print(p, \"MISSING\")
'"
stage "gpu-marked tests (>= 1,000 blocks vs numba, BLER and HARQ vs the fast link)" 120 \
  "$PY" -m pytest tests/channels -m gpu -q -p no:cacheprovider --durations=5
stage "GPU link tests compiled on CUDA (the interpreter tests' kernels)" 60 \
  "$PY" -m pytest tests/channels/test_gpu_decoder.py -m "not slow and not gpu" -q -x \
  -p no:cacheprovider
stage "benchmark: link_throughput.py --device cuda:0 (gpu chain scrambled/unscrambled + stage split, decoder only, numba 1/all threads, sionna eager+compiled, ratios)" 270 \
  "$PY" benchmarks/link_throughput.py --device cuda:0
echo "log: $LOG"
