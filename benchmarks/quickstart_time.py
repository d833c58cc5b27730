"""Wall time of the quickstart experiment (target: < 3 minutes on a 2-core CPU).

Runs ``semcomm run experiments/quickstart.yaml`` as a user would (a fresh process, so
imports and JIT compilation count), into a temporary results folder unless ``--out``
is given, then prints the wall time and the summary table of the link points.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quickstart_time.py [--workers N]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 180.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "experiments" / "quickstart.yaml"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="semcomm-bench-"))
    cmd = [sys.executable, "-m", "semcomm.cli", "run", args.config, "--out", str(out),
           "--quiet"]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    start = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if res.returncode != 0:
        print(res.stderr[-4000:], file=sys.stderr)
        return res.returncode
    run_dir = Path(res.stdout.strip().splitlines()[-1].split()[1])
    with open(run_dir / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    cols = ["kind", "codec", "rate", "link", "snr_db", "miou", "psnr", "bler", "bpp", "failed"]
    print("  ".join(f"{c:>10}" for c in cols))
    for row in rows:
        print("  ".join(f"{_short(row[c]):>10}" for c in cols))
    print(f"quickstart: {wall:.1f} s wall on {os.cpu_count()} CPU(s) "
          f"(budget {BUDGET_S:.0f} s) -> {run_dir}")
    return 0 if wall < BUDGET_S else 1


def _short(value: str) -> str:
    try:
        return f"{float(value):.4g}"
    except ValueError:
        return value.replace("16qam-ldpc0.5-", "")[:10]


if __name__ == "__main__":
    raise SystemExit(main())
