"""Peak memory of a sweep's bookkeeping vs its size (target: 100 and 2,000 points within
20 % peak RSS).

What grows with a sweep is its measurement lines: the runner used to hold every line in
memory (the store's index and the summary's input). Now the store keeps only keys and
block errors, and the summary reads points.jsonl one point at a time. This benchmark
writes a synthetic points.jsonl of P points x I images (link lines shaped like the
runner's: 19-class intersection/union counts, link and rate fields), then, in a fresh
process per case, opens it as a resume does (PointStore) and writes the summary as a run
does (summarize_file), and prints the peak RSS; ``--in-memory`` also measures the old
way (every line in a list, then ``summarize``) for contrast.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sweep_memory.py [--points 100 2000]
        [--images 24] [--in-memory]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TOLERANCE = 0.20


def _line(point: int, image: int) -> dict:
    rng = (point * 7919 + image * 104729) % 1000
    inter = [(rng * (c + 3)) % 2500 for c in range(19)]
    return {"kind": "link", "codec": f"codec{point % 11}", "rate": "bpp=0.5",
            "link": f"16qam-ldpc0.5-{'awgn' if point % 2 else 'rayleigh-block'}",
            "snr_db": float(point), "image": image, "realization": 0,
            "name": f"streetscenes/val/{image:06d}", "target_bpp": 0.5, "knob": 20.0,
            "bytes": 2048, "bpp": 0.5, "priority_bytes": 0, "unreachable": False,
            "esno_db": float(point), "seed": 1234567890123 + rng, "channel_uses": 8192,
            "effective_channel_uses": 8192, "transmissions": 1, "bits": 16384,
            "bit_errors": rng % 7, "blocks": 4, "block_errors": rng % 2, "undetected": 0,
            "lost_bytes": 0, "status": "ok", "error": "", "psnr": 20 + rng / 100,
            "ms_ssim": 0.9, "inter": inter, "union": [v + 100 for v in inter],
            "correct": 5000 + rng, "labelled": 7470}


def _write(path: Path, points: int, images: int) -> None:
    with open(path, "w") as fh:
        for p in range(points):
            for i in range(images):
                fh.write(json.dumps(_line(p, i), separators=(",", ":")) + "\n")


def _measure(path: Path, mode: str) -> None:
    """Child process: open + summarize ``path``; print peak RSS in MiB."""
    from semcomm.runner.store import PointStore, iter_lines
    from semcomm.runner.summary import summarize, summarize_file

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    codecs = [f"codec{k}" for k in range(11)]
    if mode == "disk":
        store = PointStore(path)
        store.close()
        rows, n = summarize_file(path, codecs, 24, n_boot=50)
    else:
        lines = [line for _, line in iter_lines(path)]
        rows, n = summarize(lines, codecs, 24, n_boot=50), len(lines)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_mib": peak, "after_imports_mib": base, "rows": len(rows),
                      "lines": n}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, nargs=2, default=[100, 2000])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--in-memory", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("PATH", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _measure(Path(args.child[0]), args.child[1])
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="semcomm-mem-"))
    modes = ["disk", "memory"] if args.in_memory else ["disk"]
    peaks: dict[str, list[float]] = {m: [] for m in modes}
    for points in args.points:
        path = tmp / f"points{points}.jsonl"
        _write(path, points, args.images)
        size = path.stat().st_size / 2**20
        for mode in modes:
            out = subprocess.run([sys.executable, __file__, "--child", str(path), mode],
                                 capture_output=True, text=True, check=True, cwd=ROOT)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            peaks[mode].append(res["peak_mib"])
            print(f"{mode:>6}: {points:5d} points x {args.images} images = {res['lines']:6d} "
                  f"lines ({size:.1f} MiB on disk): peak RSS {res['peak_mib']:.1f} MiB "
                  f"({res['after_imports_mib']:.1f} MiB after imports)")
    small, big = peaks["disk"]
    growth = big / small - 1
    print(f"disk: peak RSS grows {100 * growth:+.1f} % from {args.points[0]} to "
          f"{args.points[1]} points (target within {100 * TOLERANCE:.0f} %)")
    return 0 if growth <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
