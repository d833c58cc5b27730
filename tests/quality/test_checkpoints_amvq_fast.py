"""Quality of the shipped fast AM-VQ checkpoint (``semcomm/assets/amvq_fast.pt``) at
tau = 0 (plain VQ), error-free.

Doc rows: README.md, AM-VQ status line, ``amvq_fast.pt`` ... "mIoU by the judge 0.467 at
0.194 bpp", 200 StreetScenes test images (``experiments/amvq_tau.yaml`` with
``params: {checkpoint: semcomm/assets/amvq_fast.pt}``, tau 0); docs/amvq.md, fast model's
tau sweep, ``| AM-VQ fast | tau = 0 (plain VQ) | 0.194 | 21.29 | ...``: PSNR 21.29 dB.
Band: see tests/quality/_quality.py.
"""

from __future__ import annotations

from pathlib import Path

from semcomm.codecs.amvq.codec import DEFAULT_CHECKPOINT

from ._quality import (
    assert_documented,
    assert_outside,
    checkpoint_lines,
    perturbed_checkpoint,
)

CHECKPOINT = DEFAULT_CHECKPOINT.with_name("amvq_fast.pt")
DOC_MIOU, DOC_PSNR, DOC_IMAGES = 0.467, 21.29, 200


def _lines(tmp: Path, checkpoint: Path = CHECKPOINT) -> list[dict]:
    return checkpoint_lines(tmp, "amvq", 0.0, checkpoint)


def test_amvq_fast_matches_its_documented_table(tmp_path: Path):
    lines = _lines(tmp_path)
    assert_documented(lines, "AM-VQ fast", DOC_MIOU, DOC_PSNR, DOC_IMAGES)


def test_a_perturbed_amvq_fast_fails_the_band(tmp_path: Path):
    """20 % multiplicative weight noise: outside the mIoU or the PSNR band."""
    lines = _lines(tmp_path, perturbed_checkpoint(CHECKPOINT, tmp_path / "bad.pt", 0.2))
    assert_outside(lines, DOC_MIOU, DOC_PSNR, DOC_IMAGES)
