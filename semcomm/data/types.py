"""Typed values produced by every dataset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Number of Cityscapes evaluation classes (trainIds 0..18).
NUM_CLASSES = 19
#: Label value of void / ignored pixels.
VOID = 255


@dataclass(frozen=True)
class Sample:
    """One image with its semantic labels.

    Attributes
    ----------
    image : [H, W, 3] uint8
        RGB image x.
    labels : [H, W] uint8 or None
        Ground-truth trainIds in [0, 19) with 255 = void; None for unlabelled data.
    name : str
        Stable identifier (e.g. ``"streetscenes/val/000042"``), used in result files.
    """

    image: np.ndarray
    labels: np.ndarray | None
    name: str
