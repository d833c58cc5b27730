"""Shared scoring for the SQ-GAN benchmarks (tables, SAMM ablation): one point =
reconstructions of N test images -> real bpp, PSNR, MS-SSIM, map mIoU and mIoU on
x_hat by the independent judge and by the bundled segmenter (the codecs' teacher).

Everything is error-free and deterministic: the test images are the built-in street
scenes' test split (``StreetScenes(split="test")``, the runner's ``dataset: {split:
test}``), and the transmitter's map is the bundled segmenter's output on x (the
runner's default ``tx_semantics: segmenter``). mIoU pools intersections and unions over
the images, like the runner.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from semcomm.data import StreetScenes
from semcomm.metrics import confusion_matrix, iou_counts, mean_iou, ms_ssim, psnr
from semcomm.segmentation import build_segmenter
from semcomm.segmentation.segmenters import Segmenter
from semcomm.stats import bootstrap_weights


@dataclass
class TestSet:
    """x [N, H, W, 3] uint8, s (ground truth) [N, H, W] uint8, s_tx (bundled segmenter's
    map of x, what the encoders get) [N, H, W] uint8, and both scoring networks."""

    images: np.ndarray
    labels: np.ndarray
    tx_labels: np.ndarray
    judge: Segmenter
    bundled: Segmenter


def load_test_set(count: int) -> TestSet:
    """The first ``count`` test images, their tx maps and the two segmenters."""
    if count < 1:
        raise ValueError(f"--images {count} must be >= 1")
    data = StreetScenes(split="test", count=count)
    images = np.stack([data[i].image for i in range(count)])
    labels = np.stack([data[i].labels for i in range(count)])
    bundled = build_segmenter("bundled")
    return TestSet(images, labels, bundled.segment_uint8(images), build_segmenter("judge"),
                   bundled)


@dataclass
class PointScores:
    """Per-image scores of one point: arrays of length N (counts [N, C])."""

    bpp: np.ndarray
    psnr: np.ndarray
    ms_ssim: np.ndarray
    judge_inter: np.ndarray
    judge_union: np.ndarray
    bundled_inter: np.ndarray
    bundled_union: np.ndarray
    map_inter: np.ndarray | None = None
    map_union: np.ndarray | None = None
    extra: dict[str, float] = field(default_factory=dict)

    def summary(self, n_boot: int = 1000) -> dict[str, float]:
        """Means, pooled mIoUs and the judge mIoU's 95% bootstrap interval."""
        lo, hi = pooled_miou_interval(self.judge_inter, self.judge_union, n_boot)
        out = {"images": float(self.bpp.size), "bpp": float(self.bpp.mean()),
               "psnr": float(self.psnr.mean()), "ms_ssim": float(self.ms_ssim.mean()),
               "judge_miou": mean_iou(self.judge_inter, self.judge_union),
               "judge_miou_lo": lo, "judge_miou_hi": hi,
               "bundled_miou": mean_iou(self.bundled_inter, self.bundled_union),
               "map_miou": (math.nan if self.map_inter is None
                            else mean_iou(self.map_inter, self.map_union))}
        return {**out, **self.extra}


def _counts(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = zip(pred, ref, strict=True)
    inter, union = zip(*(iou_counts(confusion_matrix(p, r)) for p, r in pairs), strict=True)
    return np.stack(inter), np.stack(union)


def score(ts: TestSet, x_hat: np.ndarray, bits: Sequence[float],
          s_hat: np.ndarray | None = None) -> PointScores:
    """Score reconstructions x_hat [N, H, W, 3] uint8 (and decoded maps s_hat [N, H, W])
    that cost ``bits`` [N] bits each."""
    n, h, w = ts.labels.shape
    j_i, j_u = _counts(ts.judge.segment_uint8(x_hat), ts.labels)
    b_i, b_u = _counts(ts.bundled.segment_uint8(x_hat), ts.labels)
    m_i = m_u = None
    if s_hat is not None:
        m_i, m_u = _counts(s_hat, ts.labels)
    return PointScores(np.asarray(bits, np.float64) / (h * w),
                       np.array([psnr(a, b) for a, b in zip(ts.images, x_hat, strict=True)]),
                       np.array([ms_ssim(a, b) for a, b in zip(ts.images, x_hat, strict=True)]),
                       j_i, j_u, b_i, b_u, m_i, m_u)


def pooled_miou_interval(inter: np.ndarray, union: np.ndarray, n_boot: int = 1000,
                         seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the pooled mIoU over images ([N, C] counts)."""
    w = bootstrap_weights(inter.shape[0], n_boot, seed).astype(np.float64)
    vals = [mean_iou(wb @ inter, wb @ union) for wb in w]
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def paired_miou_difference(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray],
                           n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Pooled mIoU(a) - mIoU(b) and its 95% paired bootstrap interval (the same image
    resample for both arms). a, b: (intersections [N, C], unions [N, C])."""
    diff = mean_iou(*a) - mean_iou(*b)
    w = bootstrap_weights(a[0].shape[0], n_boot, seed).astype(np.float64)
    vals = [mean_iou(wb @ a[0], wb @ a[1]) - mean_iou(wb @ b[0], wb @ b[1]) for wb in w]
    return diff, float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def paired_mean_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Mean of a - b [N] and its 95% t interval (paired per-image differences)."""
    from scipy import stats

    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    half = float(stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size))
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half)
