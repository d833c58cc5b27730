"""Per-image measurements of reconstructions, with caches keyed by content.

Most reconstructions repeat: every intact transmission of an (image, codec, rate) is
the error-free decode, and every failed one is the same fallback image. Segmentation
and image metrics are therefore cached by a hash of the reconstruction, so only
genuinely new images (concealed or undetected-error decodes near the cliff) cost a
segmenter pass.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semcomm import metrics
from semcomm.data.types import NUM_CLASSES
from semcomm.runner.config import Experiment

_CACHE_ITEMS = 4096
_SEG_BATCH = 16


def image_hash(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


class _Lru(OrderedDict[Any, Any]):
    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > _CACHE_ITEMS:
            self.popitem(last=False)


class Evaluator:
    """Segments reconstructions and computes the per-image metrics of a line.

    Parameters
    ----------
    exp : Experiment          which optional metrics are on
    segmenter : object with ``segment_uint8(images [B,H,W,3] uint8, labels) -> [B,H,W] uint8``
    per_image_segmenter : bool  True for the ground-truth segmenter (its output depends
        on the image index, not only on the pixels)
    projection : "pinhole" | "equirectangular"  the latter adds VPSNR and VSSIM (the eight
        default 90-degree viewports of ``semcomm.spherical``) and WS-PSNR
    """

    def __init__(self, exp: Experiment, segmenter: Any, per_image_segmenter: bool,
                 projection: str = "pinhole") -> None:
        self.exp, self.segmenter = exp, segmenter
        self.spherical = projection == "equirectangular"
        self.per_image = per_image_segmenter
        self.seg_cache = _Lru()
        self.metric_cache = _Lru()
        self.feature_cache = _Lru()
        self.lpips: metrics.Lpips | None = None
        self.features: metrics.FeatureExtractor | None = None
        m = exp.metrics
        if m.lpips is not None:
            self.lpips = metrics.Lpips(m.lpips.net, m.lpips.backbone, m.lpips.heads)
        if m.fid is not None:
            self.features = metrics.FeatureExtractor(m.fid.extractor)

    def _seg_key(self, index: int, digest: str) -> Any:
        return (index, digest) if self.per_image else digest

    def segment(self, images: Sequence[np.ndarray], indices: Sequence[int],
                labels: Sequence[np.ndarray | None], workers: int = 1) -> list[np.ndarray]:
        """s_hat [H, W] uint8 for each image (batched over cache misses). ``workers > 1``
        segments the batches on forked workers (:func:`semcomm.runner.pool.fork_map`;
        the same batches, so the same maps)."""
        from semcomm.runner.pool import fork_map

        keys = [self._seg_key(i, image_hash(x)) for x, i in zip(images, indices, strict=True)]
        todo: dict[Any, int] = {}
        for j, key in enumerate(keys):
            if key not in self.seg_cache and key not in todo:
                todo[key] = j
        pending = list(todo.items())
        batches = []
        for start in range(0, len(pending), _SEG_BATCH):
            chunk = pending[start:start + _SEG_BATCH]
            shapes = {images[j].shape for _, j in chunk}
            for shape in shapes:  # images of one size per segmenter call
                part = [(k, j) for k, j in chunk if images[j].shape == shape]
                lab = None
                if self.per_image:
                    lab = np.stack([labels[j] for _, j in part])  # type: ignore[misc]
                batches.append(([k for k, _ in part], np.stack([images[j] for _, j in part]),
                                lab))
        for (part_keys, _, _), out in zip(batches, fork_map(
                _segment_batch, [(b, lab) for _, b, lab in batches], self.segmenter, workers),
                strict=True):
            for key, s_hat in zip(part_keys, out, strict=True):
                self.seg_cache.put(key, s_hat)
        return [self.seg_cache[key] for key in keys]

    def image_metrics(self, index: int, x: np.ndarray, x_hat: np.ndarray) -> dict[str, Any]:
        """PSNR (dB), MS-SSIM, LPIPS (and sphere metrics) of one reconstruction (cached)."""
        key = (index, image_hash(x_hat))
        if key not in self.metric_cache:
            out: dict[str, Any] = {"psnr": metrics.psnr(x, x_hat)}
            if self.exp.metrics.ms_ssim:
                out["ms_ssim"] = metrics.ms_ssim(x, x_hat)
            if self.lpips is not None:
                out["lpips"] = self.lpips(x, x_hat)
            if self.spherical:
                from semcomm import spherical

                out["vpsnr"] = spherical.vpsnr(x, x_hat)
                out["vssim"] = spherical.vssim(x, x_hat)
                out["ws_psnr"] = spherical.ws_psnr(x, x_hat)
            self.metric_cache.put(key, out)
        return dict(self.metric_cache[key])

    def save_features(self, image: np.ndarray, path: Path) -> None:
        """FID features of one image -> ``path`` (.npy), when FID is on."""
        if self.features is None or path.exists():
            return
        key = image_hash(image)
        if key not in self.feature_cache:
            self.feature_cache.put(key, self.features(image[None])[0])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, self.feature_cache[key])
        tmp.replace(path)


def _segment_batch(segmenter: Any, job: tuple[np.ndarray, np.ndarray | None]
                   ) -> list[np.ndarray]:
    """One segmenter call: images [B, H, W, 3] uint8 (+ labels) -> B maps [H, W] uint8."""
    batch, lab = job
    return [np.asarray(s, np.uint8) for s in segmenter.segment_uint8(batch, lab)]


def semantic_counts(s_hat: np.ndarray, s: np.ndarray | None, prefix: str = "") -> dict[str, Any]:
    """Per-image confusion summaries for pooled mIoU: intersection/union per class,
    correct and labelled pixel counts (empty when there are no labels)."""
    if s is None:
        return {}
    conf = metrics.confusion_matrix(s_hat, s, NUM_CLASSES)
    inter, union = metrics.iou_counts(conf)
    return {
        f"{prefix}inter": inter.tolist(),
        f"{prefix}union": union.tolist(),
        f"{prefix}correct": int(inter.sum()),
        f"{prefix}labelled": int(conf.sum()),
    }
