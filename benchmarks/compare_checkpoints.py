"""Paired before / after table of two codecs of one run (e.g. a shipped checkpoint and
its retrained file), rate by rate, on the same images.

    python benchmarks/compare_checkpoints.py RUN_DIR BEFORE AFTER [--link LABEL]

``BEFORE`` and ``AFTER`` are codec labels of the run (``label:`` in the experiment, e.g.
``{name: isc, label: isc_new, params: {checkpoint: runs/isc/model.pt}}``). For every rate
label both have (error-free lines, or the lines of ``--link`` at every SNR), it prints
bpp, PSNR and the judge's pooled mIoU of each, and the paired per-image differences
AFTER - BEFORE: PSNR with a 95% t interval, pooled mIoU with a 95% paired bootstrap
interval over images (the same resample for both arms, 2000 resamples, seed 0), and
bpp. The last line counts the rates where AFTER is better on both metrics with an
interval above zero.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sqgan_eval import paired_mean_difference, paired_miou_difference  # noqa: E402

from semcomm.metrics import mean_iou  # noqa: E402


def _lines(run_dir: Path, codecs: set[str], link: str) -> dict[tuple[str, str], dict]:
    """(codec, rate) -> {(image, snr, realization): line} of the wanted lines."""
    out: dict[tuple[str, str], dict] = defaultdict(dict)
    with open(run_dir / "points.jsonl", encoding="utf-8") as fh:
        for raw in fh:
            line = json.loads(raw)
            if line.get("codec") not in codecs or line.get("link") != link:
                continue
            if line.get("kind") == "original":
                continue
            key = (line["image"], line.get("snr_db"), line.get("realization", 0))
            out[(line["codec"], line["rate"])].setdefault(key, line)
    return out


def _arrays(lines: list[dict[str, Any]]) -> tuple[np.ndarray, ...]:
    inter = np.array([r["inter"] for r in lines], np.float64)
    union = np.array([r["union"] for r in lines], np.float64)
    psnr = np.array([r.get("psnr", np.nan) for r in lines], np.float64)
    bpp = np.array([r.get("bpp", np.nan) for r in lines], np.float64)
    return inter, union, psnr, bpp


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--link", default="none", help="a link label of the run (default: "
                    "the error-free lines)")
    args = ap.parse_args()
    if not (args.run_dir / "points.jsonl").is_file():
        ap.error(f"{args.run_dir}: no points.jsonl")
    by = _lines(args.run_dir, {args.before, args.after}, args.link)
    rates = [r for (c, r) in by if c == args.before and (args.after, r) in by]
    if not rates:
        ap.error(f"no rate label that both {args.before!r} and {args.after!r} have "
                 f"(labels: {sorted({c for c, _ in by})})")
    print("| rate | bpp before / after | PSNR before / after | dPSNR [95% CI] | "
          "judge mIoU before / after | dmIoU [95% CI] | images |")
    print("|---|---|---|---|---|---|---|")
    wins = 0
    for rate in rates:
        a, b = by[(args.before, rate)], by[(args.after, rate)]
        keys = sorted(set(a) & set(b), key=str)
        ia, ua, pa, ba = _arrays([a[k] for k in keys])
        ib, ub, pb, bb = _arrays([b[k] for k in keys])
        dp = paired_mean_difference(pb, pa)
        dm = paired_miou_difference((ib, ub), (ia, ua))
        wins += dp[1] > 0 and dm[1] > 0
        print(f"| {rate} | {np.nanmean(ba):.4f} / {np.nanmean(bb):.4f} | {np.nanmean(pa):.2f} "
              f"/ {np.nanmean(pb):.2f} | {dp[0]:+.3f} [{dp[1]:+.3f}, {dp[2]:+.3f}] | "
              f"{mean_iou(ia, ua):.3f} / {mean_iou(ib, ub):.3f} | {dm[0]:+.4f} "
              f"[{dm[1]:+.4f}, {dm[2]:+.4f}] | {len(keys)} |")
    print(f"{args.after} vs {args.before}: better on PSNR and judge mIoU (both intervals "
          f"above 0) at {wins} of {len(rates)} rates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
