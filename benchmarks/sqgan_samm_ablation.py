"""Does SQ-GAN's semantic masking (SAMM) choose better tokens than chance, at equal rate?

    python benchmarks/sqgan_samm_ablation.py [--images 100] [--fractions 0.2875 0.525]
        [--draws 3] [--checkpoint semcomm/assets/sqgan.pt]

The same model keeps the same number of tokens, floor(m h w) per branch (so the same
analytic bpp), chosen three ways:

* ``samm``: SAMM's top scores (the codec);
* ``uniform``: uniformly random positions in both branches (mean of ``--draws`` draws,
  seeded per draw and image);
* ``uniform-x``: random positions in the image branch only, SAMM in the semantic one.

Error-free, on the first N built-in test images, the transmitter's map being the bundled
segmenter's output on x (as the runner). Scores: PSNR, map mIoU, the independent judge's
mIoU on x_hat (``build_segmenter("judge")``, pooled over images) and the real bpp of the
entropy-coded tokens (random position masks cost a little more to code). The
differences samm - uniform are paired per image: PSNR with a t interval, pooled mIoU
with a paired bootstrap (2000 image resamples). The last line is::

    samm-vs-uniform dmIoU <x> 95% CI [<lo>, <hi>]

for the first fraction and uniform masking in both branches.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sqgan_eval import (  # noqa: E402
    PointScores,
    TestSet,
    load_test_set,
    paired_mean_difference,
    paired_miou_difference,
    pooled_miou_interval,
    score,
)

from semcomm.codecs.sqgan import SQGANCodec  # noqa: E402
from semcomm.codecs.sqgan.model import kept_count  # noqa: E402
from semcomm.metrics import mean_iou  # noqa: E402

ARMS = ("samm", "uniform", "uniform-x")


def _random_select(seed: int, draw: int, image: int, positions: int, k: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1_000_003 * seed + 1009 * draw + image)
    return torch.randperm(positions, generator=g)[:k][None]


def run_arm(ts: TestSet, codec: SQGANCodec, m: float, arm: str, draw: int,
            seed: int) -> PointScores:
    """Every test image with the kept positions of ``arm`` (draw ``draw``)."""
    model = codec.model
    x_hat, s_hat, bits = [], [], []
    for i, (x, s) in enumerate(zip(ts.images, ts.tx_labels, strict=True)):
        xt = torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255.0
        st = torch.from_numpy(s.astype(np.int64))[None]
        h, w = codec.grid_shape(x.shape[:2])
        k = kept_count(m, h * w)
        sel_x = sel_s = None
        if arm in ("uniform", "uniform-x"):
            sel_x = _random_select(seed, draw, i, h * w, k)
        if arm == "uniform":
            sel_s = _random_select(seed + 1, draw, i, h * w, k)
        tokens = model.encode_tokens(xt, st, m, m, sel_x, sel_s)
        out = model.decode_tokens(tokens)  # = the codec's error-free decode
        x_hat.append((out.x_hat[0].clamp(0, 1) * 255).round().to(torch.uint8)
                     .permute(1, 2, 0).numpy())
        s_hat.append(out.s_hat[0].numpy().astype(np.uint8))
        bits.append(8 * len(codec.pack(tokens)))
    return score(ts, np.stack(x_hat), bits, np.stack(s_hat))


def mean_of_draws(draws: list[PointScores]) -> PointScores:
    """Per-image means over draws (counts averaged, so pooled mIoU is the draws' mean)."""
    def avg(name: str) -> np.ndarray:
        return np.mean([getattr(d, name) for d in draws], axis=0)

    return PointScores(avg("bpp"), avg("psnr"), avg("ms_ssim"), avg("judge_inter"),
                       avg("judge_union"), avg("bundled_inter"), avg("bundled_union"),
                       avg("map_inter"), avg("map_union"))


def report(m: float, arms: dict[str, PointScores]) -> list[str]:
    lines = []
    for name, sc in arms.items():
        lo, hi = pooled_miou_interval(sc.judge_inter, sc.judge_union)
        lines.append(f"m={m:g} {name:9s} bpp {sc.bpp.mean():.4f}  PSNR {sc.psnr.mean():.2f} dB  "
                     f"map mIoU {mean_iou(sc.map_inter, sc.map_union):.3f}  judge mIoU "
                     f"{mean_iou(sc.judge_inter, sc.judge_union):.3f} [{lo:.3f}, {hi:.3f}]")
    base = arms["samm"]
    for name in [a for a in ("uniform", "uniform-x") if a in arms]:
        sc = arms[name]
        dp = paired_mean_difference(base.psnr, sc.psnr)
        dm = paired_miou_difference((base.judge_inter, base.judge_union),
                                    (sc.judge_inter, sc.judge_union))
        dmap = paired_miou_difference((base.map_inter, base.map_union),  # type: ignore[arg-type]
                                      (sc.map_inter, sc.map_union))
        lines.append(f"m={m:g} samm-vs-{name}: dPSNR {dp[0]:+.3f} dB [{dp[1]:+.3f}, {dp[2]:+.3f}]"
                     f"  dmIoU(judge) {dm[0]:+.4f} [{dm[1]:+.4f}, {dm[2]:+.4f}]"
                     f"  dmap-mIoU {dmap[0]:+.4f} [{dmap[1]:+.4f}, {dmap[2]:+.4f}]")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.2875, 0.525])
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--no-uniform-x", action="store_true",
                    help="skip the image-branch-only arm (saves 3/7 of the time)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if args.draws < 1 or any(not 0.0 < m <= 1.0 for m in args.fractions):
        ap.error(f"--draws {args.draws} must be >= 1 and --fractions {args.fractions} in (0, 1]")
    torch.set_num_threads(args.threads)
    codec = SQGANCodec(args.checkpoint)
    ts = load_test_set(args.images)
    first: tuple[PointScores, PointScores] | None = None
    for m in args.fractions:
        arms = {"samm": run_arm(ts, codec, m, "samm", 0, args.seed)}
        for name in ("uniform",) if args.no_uniform_x else ("uniform", "uniform-x"):
            arms[name] = mean_of_draws([run_arm(ts, codec, m, name, d, args.seed)
                                        for d in range(args.draws)])
        for line in report(m, arms):
            print(line, flush=True)
        first = first or (arms["samm"], arms["uniform"])
    assert first is not None
    d, lo, hi = paired_miou_difference((first[0].judge_inter, first[0].judge_union),
                                       (first[1].judge_inter, first[1].judge_union))
    print(f"{args.images} test images, m = {args.fractions[0]:g}, {args.draws} uniform draws")
    print(f"samm-vs-uniform dmIoU {d:+.4f} 95% CI [{lo:+.4f}, {hi:+.4f}]")


if __name__ == "__main__":
    main()
