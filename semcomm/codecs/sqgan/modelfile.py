"""SQ-GAN's model file: both branches, config and index histograms (inference side).

Written at the end of every training stage, read by :class:`SQGANCodec`; the format is
the shared one of ``semcomm.codecs.learned.modelfile`` with the entry
``index_counts = {"image": [K_x] int64, "semantic": [K_s] int64}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from semcomm.codecs.learned.modelfile import ModelBundle, load_bundle, write_model_file
from semcomm.codecs.sqgan.config import config_from_dict
from semcomm.codecs.sqgan.model import SQGAN

__all__ = ["MODEL_FORMAT", "SQGANBundle", "export_model", "load_model"]

MODEL_FORMAT = "semcomm.sqgan.model/1"


def export_model(model: SQGAN, path: str | Path, index_counts: dict[str, torch.Tensor],
                 meta: dict[str, Any]) -> Path:
    """Write the codec's model file: weights of both branches, config, index counts."""
    return write_model_file(path, MODEL_FORMAT, model, {"index_counts": index_counts}, meta)


#: A loaded SQ-GAN model file (``bundle.index_counts`` = {"image", "semantic"} histograms).
SQGANBundle = ModelBundle[SQGAN]


def _build(data: Any, source: str) -> SQGAN:
    return SQGAN(config_from_dict({"model": data}, source=source).model)


def load_model(path: str | Path, device: torch.device | str = "cpu") -> SQGANBundle:
    """Load a ``model.pt`` written by :func:`export_model` (``weights_only=True``)."""
    return load_bundle(path, MODEL_FORMAT, _build, ("index_counts",), device)
