#!/usr/bin/env bash
# Train DeepJSCC on one CUDA GPU for a fixed wall time, then exit.
#
#   OUT=/some/dir bash scripts/deepjscc_gpu_train.sh        (from the repository root)
#
# Writes $OUT/deepjscc_0.25.pt (the model file: fp16 weights, model + train config;
# channel truncation: the same file sends 0.0625 .. 0.25 cu/px, trained at 0.125 and
# 0.25), $OUT/deepjscc_train.log (stdout/stderr) and $OUT/deepjscc_log.jsonl (loss and
# validation PSNR per step). The training loop runs DEEPJSCC_SECONDS (default 150) of
# wall time; start-up (imports, CUDA, 8 validation images) adds ~10-20 s.
# Images are rendered by the built-in StreetScenes generator in DataLoader workers
# (DEEPJSCC_WORKERS, default 15). Needs python with torch (CUDA), numpy, scipy, Pillow,
# PyYAML. Dry run on a CPU: DEEPJSCC_DEVICE=cpu DEEPJSCC_SECONDS=10 PYTHON=python3 ...
set -euo pipefail
: "${OUT:?set OUT to the output folder}"
PY="${PYTHON:-python3.12}"
SECS="${DEEPJSCC_SECONDS:-150}"
WORKERS="${DEEPJSCC_WORKERS:-15}"
DEVICE="${DEEPJSCC_DEVICE:-cuda}"
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
export OMP_NUM_THREADS=1  # per worker process; the GPU does the network
"$PY" -c 'import sys, torch; print(sys.version.split()[0], torch.__version__,
    torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA")' \
    2>&1 | tee "$OUT/deepjscc_train.log"
"$PY" -m semcomm.codecs.deepjscc.train --config configs/deepjscc_gpu.yaml \
    --out "$OUT/run" --device "$DEVICE" --workers "$WORKERS" --max-seconds "$SECS" \
    2>&1 | tee -a "$OUT/deepjscc_train.log"
cp "$OUT/run/model.pt" "$OUT/deepjscc_0.25.pt"
cp "$OUT/run/log.jsonl" "$OUT/deepjscc_log.jsonl"
rm -rf "$OUT/run"  # ckpt.pt holds ~10 MB of optimiser state nobody needs back
ls -l "$OUT"
