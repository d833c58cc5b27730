"""Quality of the shipped ISC checkpoint (``semcomm/assets/isc.pt``): its base layer.

Doc row: docs/isc.md, rate-distortion table (``semcomm run experiments/isc_rd.yaml``, 200
StreetScenes test images, error-free),
``| ISC | base only (k = 0) | 0.077 | 19.64 | 0.722 | 0.532 | 0.559 | 0.695 |``:
PSNR 19.64 dB, mIoU (judge) 0.532 (the 1800-step file of issue 19). Band: see
tests/quality/_quality.py.
"""

from __future__ import annotations

from pathlib import Path

from semcomm.codecs.isc.codec import DEFAULT_CHECKPOINT

from ._quality import (
    assert_documented,
    assert_outside,
    checkpoint_lines,
    perturbed_checkpoint,
)

DOC_MIOU, DOC_PSNR, DOC_IMAGES = 0.532, 19.64, 200


def _lines(tmp: Path, checkpoint: Path = DEFAULT_CHECKPOINT) -> list[dict]:
    return checkpoint_lines(tmp, "isc", 0, checkpoint)


def test_isc_base_layer_matches_its_documented_table(tmp_path: Path):
    lines = _lines(tmp_path)
    assert_documented(lines, "ISC k=0", DOC_MIOU, DOC_PSNR, DOC_IMAGES)


def test_a_perturbed_isc_fails_the_band(tmp_path: Path):
    """20 % multiplicative weight noise: outside the mIoU or the PSNR band."""
    lines = _lines(tmp_path, perturbed_checkpoint(DEFAULT_CHECKPOINT, tmp_path / "bad.pt", 0.2))
    assert_outside(lines, DOC_MIOU, DOC_PSNR, DOC_IMAGES)
