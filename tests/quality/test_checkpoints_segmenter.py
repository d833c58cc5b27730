"""Quality of the shipped bundled segmenter (``semcomm/assets/segmenter.pt``).

Doc row: docs/data_segmentation.md, per-class table of the bundled segmenter,
``| terrain | 0.6797 | **mIoU** | **0.7723** |`` (200 StreetScenes test images,
128 x 256, no flip: ``python scripts/eval_segmenter.py``). Band: see tests/quality/_quality.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semcomm.data import StreetScenes
from semcomm.runner.measure import semantic_counts
from semcomm.segmentation import BUNDLED_PATH, build_segmenter

from ._quality import N_IMAGES, Measured, perturbed_checkpoint, pooled_miou

DOC_MIOU, DOC_IMAGES = 0.7723, 200


def originals_miou(name: str, path: Path | None = None) -> Measured:
    """Pooled mIoU of segmenter ``name`` on the first 16 test originals."""
    ds = StreetScenes("test", N_IMAGES, (128, 256), seed=0)
    images = np.stack([ds[i].image for i in range(N_IMAGES)])
    seg = build_segmenter(name) if path is None else build_segmenter(name, path=path)
    pred = seg.segment_uint8(images)
    counts = [semantic_counts(pred[i], ds[i].labels) for i in range(N_IMAGES)]
    return pooled_miou(np.array([c["inter"] for c in counts]),
                       np.array([c["union"] for c in counts]))


def test_bundled_segmenter_matches_its_documented_miou():
    m = originals_miou("bundled")
    assert m.agrees(DOC_MIOU, DOC_IMAGES), m.message("bundled segmenter mIoU", DOC_MIOU,
                                                     DOC_IMAGES)


def test_a_perturbed_segmenter_fails_the_band(tmp_path: Path):
    """The band is real: 10 % multiplicative weight noise (0.743 -> 0.673 on these images)
    falls outside it."""
    bad = perturbed_checkpoint(BUNDLED_PATH, tmp_path / "bad.pt", scale=0.1)
    m = originals_miou("bundled", bad)
    assert not m.agrees(DOC_MIOU, DOC_IMAGES), m.message("perturbed", DOC_MIOU, DOC_IMAGES)
