"""Serial vs process executor on the same experiment (target: process(2) >= 1.6x serial
on a 2-core CPU).

Runs ``semcomm run CONFIG`` as a user would (a fresh process each, so imports, worker
start-up and JIT compilation count), once serially and once per ``--workers`` value,
checks that every run's summary.csv is identical to the serial one, and prints the wall
times and speed-ups. ``--images`` and ``--snrs`` shrink the experiment (a copy of the
YAML in a temporary folder) when the full one takes too long on a shared machine.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/executor_scaling.py \\
        [--config experiments/quickstart.yaml] [--workers 2] [--images 8] [--snrs 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's semcomm, as the subprocesses use
TARGET = 1.6


def _config(path: Path, images: int | None, snrs: int | None, tmp: Path) -> Path:
    """``path`` itself, or a copy with fewer images / SNR points (``extends`` resolved)."""
    if images is None and snrs is None:
        return path
    from semcomm.runner.config import load_experiment, to_yaml

    data = yaml.safe_load(to_yaml(load_experiment(path)))
    if images is not None:
        data["dataset"]["count"] = images
        data["stopping"]["max_images"] = None
    if snrs is not None:
        key = next(k for k in ("esno_db", "ebno_db") if data["snr"].get(k) is not None)
        from semcomm.runner.config import Experiment

        values = Experiment.model_validate(data).snr.values()  # type: ignore[union-attr]
        step = max(1, len(values) // snrs)
        data["snr"] = {key: values[::step][:snrs]}
    out = tmp / path.name
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def _run(config: Path, out: Path, workers: int) -> tuple[float, Path]:
    cmd = [sys.executable, "-m", "semcomm.cli", "run", str(config), "--out", str(out),
           "--quiet", "--workers", str(workers)]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    start = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stderr[-4000:]}")
    return wall, Path(res.stdout.strip().splitlines()[-1].split()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "experiments" / "quickstart.yaml")
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--images", type=int, default=None, help="dataset.count override")
    parser.add_argument("--snrs", type=int, default=None, help="keep this many SNR points")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="semcomm-scaling-"))
    config = _config(args.config, args.images, args.snrs, tmp)
    serial_s, serial_dir = _run(config, tmp / "serial", 1)
    reference = (serial_dir / "summary.csv").read_text()
    print(f"{config.name}: serial {serial_s:.1f} s on {os.cpu_count()} CPU(s)  -> {serial_dir}")
    ok = True
    for n in args.workers:
        wall, run_dir = _run(config, tmp / f"process{n}", n)
        same = (run_dir / "summary.csv").read_text() == reference
        speedup = serial_s / wall
        ok &= same and (n < 2 or speedup >= TARGET)
        print(f"process({n}): {wall:.1f} s, x{speedup:.2f} vs serial (target x{TARGET} "
              f"for n >= 2), summary.csv {'identical' if same else 'DIFFERS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
