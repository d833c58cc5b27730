"""Quality of the shipped independent judge (``semcomm/assets/judge.pt``, flip on).

Doc row: docs/data_segmentation.md, judge table,
``| mIoU, clean, flip averaging on (the judge's default) | 0.7802 | **0.7550** |``
(200 StreetScenes test images, 128 x 256: ``python scripts/eval_segmenter.py --checkpoint
semcomm/assets/judge.pt --flip``). Band: see tests/quality/_quality.py.
"""

from __future__ import annotations

from pathlib import Path

from semcomm.segmentation import JUDGE_PATH

from ._quality import perturbed_checkpoint
from .test_checkpoints_segmenter import originals_miou

DOC_MIOU, DOC_IMAGES = 0.7550, 200


def test_judge_matches_its_documented_miou():
    m = originals_miou("judge")
    assert m.agrees(DOC_MIOU, DOC_IMAGES), m.message("judge mIoU", DOC_MIOU, DOC_IMAGES)


def test_a_perturbed_judge_fails_the_band(tmp_path: Path):
    bad = perturbed_checkpoint(JUDGE_PATH, tmp_path / "bad.pt", scale=0.1)  # 0.725 -> 0.639
    m = originals_miou("judge", bad)
    assert not m.agrees(DOC_MIOU, DOC_IMAGES), m.message("perturbed", DOC_MIOU, DOC_IMAGES)
