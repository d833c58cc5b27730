"""Does AM-VQ's activation map pick the right vectors to send unquantized?

    PYTHONPATH=. python benchmarks/amvq_selection.py [--images 200]
        [--checkpoint semcomm/assets/amvq.pt] [--fractions 0.05 0.1 0.2 0.4]
        [--taus 0 0.1 0.3 0.5 0.7 1] [--activation model|gradcam|layercam]
        [--draws 3] [--threads 1] [--seed 0] [--first 0] [--save part.npz]
    PYTHONPATH=. python benchmarks/amvq_selection.py --merge part0.npz part1.npz ...

The mechanism's ablation (STYLE.md rule 17). At equal fractions f of unquantized
vectors (per scale, round(f n_s) of the n_s positions), the same encoder output is
decoded with the unquantized positions chosen three ways:

* ``map``: the largest activation-map values (the codec's choice, ``A > 1 - tau``,
  at the tau that sends that many; ties, e.g. A = 0, broken at random);
* ``random``: uniformly random positions, the mean over ``--draws`` draws;
* ``oracle``: the largest quantization errors ||z - e||^2 (what the map should find).

Besides the paired differences, each fraction also gets the two arms' own (unpaired)
95% bootstrap intervals of the judge's pooled mIoU, and whether they overlap.

Unquantized vectors are the codec's ``float_bits`` scalar-quantized floats, the others
their code vectors, as on an error-free link. Each row gives mean PSNR and pooled mIoU
of the independent judge (``build_segmenter("judge")``) and of the bundled segmenter
(the codec's training perceptual network) on built-in planar test images, then the
per-image paired difference map - random: PSNR (mean, 95% t-interval) and judge mIoU
(pooled, 95% paired bootstrap interval over images). Rows ``f = 0`` (plain VQ) and
``f = 1`` (every vector a float) bound what any selection can reach.

Then the tau sweep of the same images, from the codec's own bytes (``AMVQCodec.pack``:
what an error-free link delivers): bpp (every byte), share of unquantized vectors,
PSNR, MS-SSIM and both mIoUs, and the PSNR gain of each tau over tau = 0 (paired,
95% t-interval) -- the rate-quality curve that tau is meant to give.

``--first K --images N --save part.npz`` measures images K .. K+N-1 only and saves the
per-image results; ``--merge`` reports saved parts together (shards run in parallel
give the same table as one run, up to the random draws, which are seeded per part).

The last line is the paired PSNR difference map - random averaged over the fractions
(each image's mean over ``--fractions``), with its 95% t-interval:
``map-vs-random dPSNR <x> dB 95% CI [<lo>, <hi>]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from semcomm.codecs.amvq import DEFAULT_CHECKPOINT, AMVQCodec  # noqa: E402
from semcomm.codecs.amvq.activation import activation_map  # noqa: E402
from semcomm.codecs.amvq.config import MAPS  # noqa: E402
from semcomm.codecs.amvq.model import ScaleAnalysis, from_rows, to_rows  # noqa: E402
from semcomm.data import build_dataset  # noqa: E402
from semcomm.metrics import (  # noqa: E402
    confusion_matrix,
    iou_counts,
    mean_iou,
    ms_ssim,
    psnr,
)
from semcomm.segmentation import build_segmenter  # noqa: E402

SELECTIONS = ("map", "random", "oracle")
SEGMENTERS = ("judge", "bundled")
#: Paired bootstrap resamples for the mIoU difference interval.
BOOTSTRAP = 1000


@dataclass
class Scores:
    """Per-image results of one (selection, fraction) arm: PSNR [n] and per-image
    intersection / union counts [n, C] for each segmenter."""

    psnr: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)
    inter: dict[str, list[np.ndarray]] = field(default_factory=dict)
    union: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, value: float, counts: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        self.psnr.append(value)
        for name, (i, u) in counts.items():
            self.inter.setdefault(name, []).append(i)
            self.union.setdefault(name, []).append(u)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Flat name -> array form for ``np.savez``."""
        out = {f"{prefix}|psnr": np.asarray(self.psnr)}
        out.update({f"{prefix}|extra|{k}": np.asarray(v) for k, v in self.extra.items()})
        for n in self.inter:
            out[f"{prefix}|inter|{n}"] = np.stack(self.inter[n])
            out[f"{prefix}|union|{n}"] = np.stack(self.union[n])
        return out

    def extend(self, arrays: dict[str, np.ndarray]) -> None:
        """Append the images of one saved part (keys without the arm prefix)."""
        for key, value in arrays.items():
            kind, _, name = key.partition("|")
            if kind == "psnr":
                self.psnr.extend(value.tolist())
            elif kind == "extra":
                self.extra.setdefault(name, []).extend(value.tolist())
            else:
                target = self.inter if kind == "inter" else self.union
                target.setdefault(name, []).extend(list(value))

    def miou(self, name: str, rows: np.ndarray | None = None) -> float:
        i, u = np.stack(self.inter[name]), np.stack(self.union[name])
        return mean_iou(i if rows is None else i[rows], u if rows is None else u[rows])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.4])
    ap.add_argument("--taus", type=float, nargs="+", default=[0.0, 0.1, 0.3, 0.5, 0.7, 1.0])
    ap.add_argument("--activation", default="model", choices=("model", *MAPS),
                    help="the map to test: the model's own (default) or another variant")
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--first", type=int, default=0, help="index of the first test image")
    ap.add_argument("--save", default=None, help="write the per-image results (.npz)")
    ap.add_argument("--merge", nargs="+", default=None,
                    help="report saved parts together instead of measuring")
    args = ap.parse_args(argv)
    if args.first < 0:
        ap.error(f"--first {args.first} must be >= 0")
    if args.images < 2:
        ap.error(f"--images {args.images} must be >= 2 (paired intervals)")
    if args.draws < 1:
        ap.error(f"--draws {args.draws} must be >= 1")
    if any(not 0.0 < f < 1.0 for f in args.fractions):
        ap.error(f"--fractions {args.fractions} must lie in (0, 1)")
    if any(not 0.0 <= t <= 1.0 for t in args.taus) or 0.0 not in args.taus:
        ap.error(f"--taus {args.taus} must lie in [0, 1] and include 0 (the reference)")
    return args


def latents(codec: AMVQCodec, image: np.ndarray, kind: str
            ) -> tuple[list[ScaleAnalysis], list[torch.Tensor], list[torch.Tensor],
                       list[torch.Tensor]]:
    """One image -> per scale: the analysis (z, indices, map A of ``kind``) the codec
    packs, code vectors e and floats SQ(z) [1, d, h, w], and the quantization error
    ||z - e||^2 [h, w]."""
    model = codec.model
    with torch.no_grad():
        feats = model.encoder.features(2.0 * codec._input(image) - 1.0)
    analysis, codes, floats, errors = [], [], [], []
    for s, f in enumerate(feats):
        head = model.encoder.head(s)
        with torch.no_grad():
            z = head(f)
            idx = model.quantizer(s).nearest(to_rows(z))
            e = from_rows(model.quantizer(s).lookup(idx), z)
        analysis.append(ScaleAnalysis(z, idx.view(1, *z.shape[2:]),
                                      activation_map(f, e, head, kind)))
        q = codec.quantizers[s]
        floats.append(torch.from_numpy(q.dequantize(q.quantize(z.numpy()))).float())
        codes.append(e)
        errors.append((z - e).pow(2).sum(dim=1)[0])
    return analysis, codes, floats, errors


def top_mask(score: torch.Tensor, fraction: float, gen: torch.Generator) -> torch.Tensor:
    """Bool [h, w]: the round(fraction * n) largest scores, ties broken at random."""
    n = score.numel()
    jitter = torch.rand(n, generator=gen) * 1e-9  # scores are >= 0 and ~1: tie-break only
    order = torch.argsort(score.flatten().double() + jitter.double(), descending=True)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[order[: int(round(fraction * n))]] = True
    return mask.view(score.shape)


def arms(maps: list[torch.Tensor], errors: list[torch.Tensor], fractions: list[float],
         draws: int, gen: torch.Generator) -> list[tuple[str, float, list[torch.Tensor]]]:
    """(selection, fraction, masks per scale) of every decode of one image, plain VQ
    ('all codes', 0) and every float ('all floats', 1) included."""
    out = [("all codes", 0.0, [torch.zeros_like(a, dtype=torch.bool) for a in maps]),
           ("all floats", 1.0, [torch.ones_like(a, dtype=torch.bool) for a in maps])]
    for f in fractions:
        out.append(("map", f, [top_mask(a, f, gen) for a in maps]))
        out.append(("oracle", f, [top_mask(e, f, gen) for e in errors]))
        for _ in range(draws):
            out.append(("random", f, [top_mask(torch.rand(a.shape, generator=gen), f, gen)
                                      for a in maps]))
    return out


def measure(codec: AMVQCodec, segmenters: dict, data, args: argparse.Namespace
            ) -> dict[tuple[str, float], Scores]:
    """Decode every arm of every image; PSNR and per-image IoU counts per arm (random:
    PSNR averaged over the draws, IoU counts summed over them, i.e. pooled)."""
    kind = codec.model.config.activation if args.activation == "model" else args.activation
    gen = torch.Generator().manual_seed(args.seed)
    results: dict[tuple[str, float], Scores] = {}
    for i in range(args.first, len(data)):
        sample = data[i]
        analysis, codes, floats, errors = latents(codec, sample.image, kind)
        plan = arms([an.a[0] for an in analysis], errors, args.fractions, args.draws, gen)
        z_hat = [torch.cat([torch.where(m[s][None, None], floats[s], codes[s])
                            for _, _, m in plan]) for s in range(len(codes))]
        rates = {}
        for tau in args.taus:  # the codec's own bytes and z_hat at each tau
            data_bytes, z_tau = codec.pack(analysis, tau)
            frac = float(np.mean([float(m.float().mean()) for m in (
                an.a > 1.0 - tau for an in analysis)]))
            rates[("tau", tau)] = (8.0 * len(data_bytes) / sample.image[..., 0].size, frac)
            plan.append(("tau", tau, []))
            z_hat = [torch.cat([z_hat[s], z_tau[s]]) for s in range(len(codes))]
        x_hat = codec.model.decode(z_hat).clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
        images = x_hat.permute(0, 2, 3, 1).contiguous().numpy()
        labels = {n: seg.segment_uint8(images) for n, seg in segmenters.items()}
        grouped: dict[tuple[str, float], list[int]] = {}
        for j, (name, f, _) in enumerate(plan):
            grouped.setdefault((name, f), []).append(j)
        for key, rows in grouped.items():
            value = float(np.mean([psnr(sample.image, images[j]) for j in rows]))
            counts = {}
            for n in segmenters:
                conf = np.sum([confusion_matrix(labels[n][j], sample.labels) for j in rows],
                              axis=0)
                counts[n] = iou_counts(conf)
            r = results.setdefault(key, Scores())
            r.add(value, counts)
            if key in rates:
                for name, v in (("bpp", rates[key][0]), ("unquantized", rates[key][1]),
                                ("ms_ssim", ms_ssim(sample.image, images[rows[0]]))):
                    r.extra.setdefault(name, []).append(v)
    return results


def t_interval(d: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% t-interval (normal quantile for n > 30) of paired differences d."""
    half = (2.0 if len(d) <= 30 else 1.96) * float(np.std(d, ddof=1)) / math.sqrt(len(d))
    return float(np.mean(d)), float(np.mean(d)) - half, float(np.mean(d)) + half


def _resampled(stat: Callable[[np.ndarray], float], n: int, seed: int
               ) -> tuple[float, float]:
    """95% percentile interval of ``stat(rows)`` over ``BOOTSTRAP`` resamples of the ``n``
    images (the same resamples for a given seed)."""
    rng = np.random.default_rng(seed)
    vals = [stat(rows) for rows in (rng.integers(0, n, n) for _ in range(BOOTSTRAP))]
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(lo), float(hi)


def bootstrap_miou(a: Scores, b: Scores, name: str, seed: int) -> tuple[float, float, float]:
    """Pooled mIoU difference a - b and its 95% paired bootstrap interval over images."""
    lo, hi = _resampled(lambda rows: a.miou(name, rows) - b.miou(name, rows),
                        len(a.psnr), seed)
    return a.miou(name) - b.miou(name), lo, hi


def arm_interval(a: Scores, name: str, seed: int) -> tuple[float, float]:
    """95% bootstrap interval over images of one arm's pooled mIoU (unpaired)."""
    return _resampled(lambda rows: a.miou(name, rows), len(a.psnr), seed)


def report_taus(results: dict[tuple[str, float], Scores], taus: list[float]) -> None:
    """The tau sweep from the codec's bytes, with each tau's paired PSNR gain over 0."""
    print("tau sweep (codec bytes, error-free):")
    print(f"{'tau':>5} {'bpp':>6} {'unquant':>7} {'PSNR dB':>8} {'MS-SSIM':>7} "
          + " ".join(f"{'mIoU ' + n:>12}" for n in SEGMENTERS)
          + "  dPSNR vs tau 0 [95% CI]")
    base = results[("tau", 0.0)]
    means = []
    for tau in taus:
        r = results[("tau", tau)]
        x, lo, hi = t_interval(np.subtract(r.psnr, base.psnr))
        means.append(float(np.mean(r.psnr)))
        print(f"{tau:>5.2f} {np.mean(r.extra['bpp']):>6.3f} {np.mean(r.extra['unquantized']):>7.3f}"
              f" {means[-1]:>8.2f} {np.mean(r.extra['ms_ssim']):>7.3f} "
              + " ".join(f"{r.miou(n):>12.3f}" for n in SEGMENTERS)
              + f"  {x:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    ordered = [m for _, m in sorted(zip(taus, means, strict=True))]
    monotone = all(b >= a for a, b in zip(ordered, ordered[1:], strict=False))
    print(f"PSNR monotone in tau: {'yes' if monotone else 'no'}; top - tau 0: "
          f"{ordered[-1] - ordered[0]:+.2f} dB")


def report(results: dict[tuple[str, float], Scores], fractions: list[float],
           taus: list[float], seed: int) -> None:
    """The table, the paired differences per fraction and the pooled last line."""
    print(f"{'selection':>11} {'fraction':>8} {'PSNR dB':>8} "
          + " ".join(f"{'mIoU ' + n:>12}" for n in SEGMENTERS))
    keys = [("all codes", 0.0)] + [(s, f) for f in fractions for s in SELECTIONS] + [
        ("all floats", 1.0)]
    for key in keys:
        r = results[key]
        print(f"{key[0]:>11} {key[1]:>8.2f} {np.mean(r.psnr):>8.2f} "
              + " ".join(f"{r.miou(n):>12.3f}" for n in SEGMENTERS))
    print("paired differences per image (PSNR: mean [95% t-interval]; judge mIoU: pooled "
          "[95% bootstrap]):")
    pooled = []
    for f in fractions:
        m, r, o = (results[(s, f)] for s in SELECTIONS)
        d = np.subtract(m.psnr, r.psnr)
        pooled.append(d)
        x, lo, hi = t_interval(d)
        xo, loo, hio = t_interval(np.subtract(m.psnr, o.psnr))
        mi, mlo, mhi = bootstrap_miou(m, r, "judge", seed)
        print(f"  f = {f:.2f}: map - random dPSNR {x:+.3f} [{lo:+.3f}, {hi:+.3f}] dB, "
              f"dmIoU {mi:+.4f} [{mlo:+.4f}, {mhi:+.4f}]; map - oracle dPSNR {xo:+.3f} "
              f"[{loo:+.3f}, {hio:+.3f}] dB")
        (alo, ahi), (blo, bhi) = arm_interval(m, "judge", seed), arm_interval(r, "judge", seed)
        print(f"            unpaired judge mIoU 95% CIs: map {m.miou('judge'):.3f} [{alo:.3f}, "
              f"{ahi:.3f}], random {r.miou('judge'):.3f} [{blo:.3f}, {bhi:.3f}]: "
              f"{'overlap' if alo <= bhi and blo <= ahi else 'no overlap'}")
    report_taus(results, taus)
    x, lo, hi = t_interval(np.mean(pooled, axis=0))
    print(f"pooled over fractions {', '.join(f'{f:g}' for f in fractions)} "
          "(each image's mean difference):")
    print(f"map-vs-random dPSNR {x:.3f} dB 95% CI [{lo:.3f}, {hi:.3f}]")


def save(path: str, results: dict[tuple[str, float], Scores]) -> None:
    flat: dict[str, np.ndarray] = {}
    for (name, f), r in results.items():
        flat.update(r.arrays(f"{name}|{f!r}"))
    np.savez(path, **flat)  # type: ignore[arg-type]  # numpy stubs: **kwds typed as allow_pickle


def merge(paths: list[str]) -> dict[tuple[str, float], Scores]:
    results: dict[tuple[str, float], Scores] = {}
    for path in paths:
        with np.load(path) as part:
            arms: dict[tuple[str, float], dict[str, np.ndarray]] = {}
            for key in part.files:
                name, f, rest = key.split("|", 2)
                arms.setdefault((name, float(f)), {})[rest] = part[key]
        for arm, arrays in arms.items():
            results.setdefault(arm, Scores()).extend(arrays)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.merge:
        results = merge(args.merge)
        print(f"merged {len(args.merge)} parts: {len(results[('all codes', 0.0)].psnr)} images")
        report(results, args.fractions, args.taus, args.seed)
        return 0
    torch.set_num_threads(args.threads)
    codec = AMVQCodec(args.checkpoint)
    size = tuple(codec.model.config.image_size)
    data = build_dataset("streetscenes", split="test", count=args.first + args.images,
                         size=size, seed=0)
    segmenters = {n: build_segmenter(n) for n in SEGMENTERS}
    kind = codec.model.config.activation if args.activation == "model" else args.activation
    start = time.perf_counter()
    results = measure(codec, segmenters, data, args)
    if args.save:
        save(args.save, results)
    print(f"{args.checkpoint}: {args.images} planar test images (from {args.first}) "
          f"{size[0]}x{size[1]}, map {kind}, {args.draws} random draws, "
          f"float_bits {codec.quantizers[0].bits}, "
          f"{time.perf_counter() - start:.0f} s")
    report(results, args.fractions, args.taus, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
