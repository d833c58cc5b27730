"""Shared machinery of the per-checkpoint quality tests (``test_checkpoints_<name>.py``).

Each test measures one shipped checkpoint on the first :data:`N_IMAGES` StreetScenes
``test`` images (seed 0, 128 x 256: a subset of the 200 images of the docs' tables),
error-free, and compares with the value its doc table gives for all 200 (or 32) images.

::

    checkpoint ─► runner (error-free, 16 images) ─► per-image inter/union, PSNR
                                                       │
                        pooled mIoU, mean PSNR ◄───────┤
                        jackknife / sample SE  ◄───────┘
                                  │
    doc value ─► |measured - doc| <= K_SE * SE * sqrt(1 + n / n_doc)  ─► pass / fail

Tolerance: the 16 images are a sample; their pooled mIoU scatters around the 200-image
value with the jackknife standard error of the pooled mIoU over images, and the doc
value has its own (smaller) error, hence ``sqrt(1 + n / n_doc)``. ``K_SE = 3`` standard
errors: a correct checkpoint fails by chance about 0.3 % of the time for a random
subset; our subset is fixed, so a pass is deterministic, and a checkpoint whose quality
moved by more than the band fails. :func:`perturbed_checkpoint` writes a degraded copy
(Gaussian noise on every weight matrix) so that each file can show its band is tight
enough to catch a damaged model.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semcomm.metrics import mean_iou

#: Images per quality test: the first 16 of the StreetScenes test split (seed 0).
N_IMAGES = 16
#: Standard errors of the band.
K_SE = 3.0


@dataclass(frozen=True)
class Measured:
    """One metric of one checkpoint on the test's images.

    value : the estimate (pooled mIoU or mean PSNR); se : its standard error over images;
    n : images.
    """

    value: float
    se: float
    n: int

    def band(self, n_doc: int) -> float:
        """Half-width of the accepted band around a doc value measured on ``n_doc`` images."""
        return K_SE * self.se * math.sqrt(1.0 + self.n / n_doc)

    def agrees(self, doc: float, n_doc: int) -> bool:
        """True when the doc value lies within :meth:`band` of the estimate."""
        return abs(self.value - doc) <= self.band(n_doc)

    def message(self, what: str, doc: float, n_doc: int) -> str:
        return (f"{what}: measured {self.value:.4f} on {self.n} images, doc {doc:.4f} "
                f"({n_doc} images); band +-{self.band(n_doc):.4f} "
                f"({K_SE:g} SE, SE {self.se:.4f})")


def pooled_miou(inter: np.ndarray, union: np.ndarray) -> Measured:
    """Pooled mIoU of [n, C] per-image counts, with its jackknife standard error."""
    n = inter.shape[0]
    value = mean_iou(inter, union)
    tot_i, tot_u = inter.sum(axis=0), union.sum(axis=0)
    loo = np.array([mean_iou(tot_i - inter[k], tot_u - union[k]) for k in range(n)])
    se = math.sqrt((n - 1) / n * float(np.sum((loo - loo.mean()) ** 2)))
    return Measured(value, se, n)


def sample_mean(values: np.ndarray) -> Measured:
    """Mean of per-image values with its standard error (sample std / sqrt(n))."""
    v = np.asarray(values, dtype=np.float64)
    return Measured(float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size)), v.size)


def run_error_free(tmp: Path, codec_yaml: str, n: int = N_IMAGES
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run one codec error-free on ``n`` test images through the runner (default judge):
    the ``original`` and the ``error-free`` lines of ``points.jsonl``, one per image
    each, in image order (one rate expected)."""
    from semcomm.runner.config import load_experiment
    from semcomm.runner.run import run_experiment

    path = tmp / "quality.yaml"
    path.write_text(
        "name: quality\n"
        f"dataset: {{split: test, count: {n}, size: [128, 256], seed: 0}}\n"
        f"codecs:\n  - {codec_yaml}\n"
        # grey failure policy: no training-split mean image to render (a failed
        # error-free decode would score as grey, far outside any band).
        "links: []\nsnr: null\ngallery_images: 0\nmetrics: {bootstrap: 50}\n"
        "failure: {policy: grey}\n"
        "plots: {formats: [png]}\n")
    run = run_experiment(load_experiment(path), tmp / "run", progress=False)
    lines = [json.loads(t) for t in (run.run_dir / "points.jsonl").read_text().splitlines()]
    out = [sorted((ln for ln in lines if ln["kind"] == kind), key=lambda ln: ln["image"])
           for kind in ("original", "error-free")]
    if [len(o) for o in out] != [n, n]:
        raise AssertionError(f"expected {n} original and {n} error-free lines (one rate), "
                             f"got {[len(o) for o in out]}")
    return out[0], out[1]


def _counts(lines: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([ln["inter"] for ln in lines]), np.array([ln["union"] for ln in lines])


def miou_of(lines: list[dict[str, Any]]) -> Measured:
    """Pooled mIoU of runner lines, jackknife SE."""
    return pooled_miou(*_counts(lines))


def psnr_of(lines: list[dict[str, Any]]) -> Measured:
    """Mean PSNR of runner lines, SE of the mean."""
    return sample_mean(np.array([ln["psnr"] for ln in lines]))


def checkpoint_lines(tmp: Path, codec: str, knob: float, checkpoint: Path
                     ) -> list[dict[str, Any]]:
    """The error-free lines of ``codec`` at ``knob`` with the model file ``checkpoint``
    (:func:`run_error_free` of ``{name: codec, knob: [knob], params: {checkpoint}}``)."""
    spec = f"{{name: {codec}, knob: [{knob}], params: {{checkpoint: {checkpoint}}}}}"
    return run_error_free(tmp, spec)[1]


def assert_documented(lines: list[dict[str, Any]], what: str, doc_miou: float,
                      doc_psnr: float, n_doc: int) -> None:
    """The mIoU (judge) and the PSNR of ``lines`` both within their bands of the doc row."""
    m, p = miou_of(lines), psnr_of(lines)
    assert m.agrees(doc_miou, n_doc), m.message(f"{what} mIoU (judge)", doc_miou, n_doc)
    assert p.agrees(doc_psnr, n_doc), p.message(f"{what} PSNR", doc_psnr, n_doc)


def assert_outside(lines: list[dict[str, Any]], doc_miou: float, doc_psnr: float,
                   n_doc: int) -> None:
    """A damaged checkpoint's ``lines``: outside the mIoU band or the PSNR band."""
    m, p = miou_of(lines), psnr_of(lines)
    assert not (m.agrees(doc_miou, n_doc) and p.agrees(doc_psnr, n_doc)), \
        m.message("perturbed mIoU", doc_miou, n_doc) + "; " + \
        p.message("PSNR", doc_psnr, n_doc)


def perturbed_checkpoint(src: Path, dst: Path, scale: float, seed: int = 0) -> Path:
    """Copy of a weights-only checkpoint with every float tensor of >= 2 dims (conv and
    linear weights, codebooks) multiplied by ``1 + scale * N(0, 1)`` elementwise."""
    gen = torch.Generator().manual_seed(seed)

    def walk(obj: Any) -> Any:
        if isinstance(obj, torch.Tensor) and obj.is_floating_point() and obj.dim() >= 2:
            return obj * (1 + scale * torch.randn(obj.shape, generator=gen, dtype=obj.dtype))
        if isinstance(obj, dict):
            return {k: walk(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return type(obj)(walk(v) for v in obj)
        return obj

    ck = torch.load(src, map_location="cpu", weights_only=True)
    torch.save(walk(ck), dst)
    return dst
