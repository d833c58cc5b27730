"""Quality of the shipped coarse-codebook AM-VQ checkpoint (``semcomm/assets/amvq_coarse.pt``,
K = 16 codes per scale) at tau = 0 (plain VQ) and tau = 1 (every vector a float),
error-free: the file whose tau curve gains >= 1 dB (issue 19).

Doc rows: docs/amvq.md, "A coarse codebook: tau that pays", the runner's tau sweep
(``experiments/amvq_tau.yaml`` with ``params: {checkpoint:
semcomm/assets/amvq_coarse.pt}``, 200 StreetScenes test images):
``| 0 | 0.078 | 0 | 20.99 | 0.804 | 0.431 | ...`` and
``| 1 | 1.288 | 1.000 | 22.18 | 0.863 | 0.531 | ...``.
Band: see tests/quality/_quality.py. The tau = 1 check also catches a file whose
floats stopped adding precision (the gain would fall outside both bands).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from semcomm.codecs.amvq.codec import DEFAULT_CHECKPOINT

from ._quality import (
    assert_documented,
    assert_outside,
    checkpoint_lines,
    perturbed_checkpoint,
)

CHECKPOINT = DEFAULT_CHECKPOINT.with_name("amvq_coarse.pt")
#: tau -> (judge mIoU, PSNR) of the doc table, 200 images
DOC = {0.0: (0.431, 20.99), 1.0: (0.531, 22.18)}
DOC_IMAGES = 200


def _lines(tmp: Path, tau: float, checkpoint: Path = CHECKPOINT) -> list[dict]:
    return checkpoint_lines(tmp, "amvq", tau, checkpoint)


@pytest.mark.parametrize("tau", [0.0, 1.0])
def test_amvq_coarse_matches_its_documented_table(tmp_path: Path, tau: float):
    miou, psnr = DOC[tau]
    assert_documented(_lines(tmp_path, tau), f"AM-VQ coarse tau={tau:g}", miou, psnr,
                      DOC_IMAGES)


def test_a_perturbed_amvq_coarse_fails_the_band(tmp_path: Path):
    """20 % multiplicative weight noise: outside the mIoU or the PSNR band."""
    bad = perturbed_checkpoint(CHECKPOINT, tmp_path / "bad.pt", 0.2)
    miou, psnr = DOC[0.0]
    assert_outside(_lines(tmp_path, 0.0, bad), miou, psnr, DOC_IMAGES)
