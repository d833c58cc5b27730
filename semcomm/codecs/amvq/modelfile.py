"""AM-VQ's model file: weights (float ranges included), config and histograms.

Written at the end of training, read by :class:`AMVQCodec` (inference side); the format
is the shared one of ``semcomm.codecs.learned.modelfile`` with the entries
``index_counts [S, K]`` and ``value_counts [S, VALUE_BINS]`` (int64).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from semcomm.codecs.amvq.config import config_from_dict
from semcomm.codecs.amvq.model import AMVQ
from semcomm.codecs.learned.modelfile import ModelBundle, load_bundle, write_model_file

__all__ = ["MODEL_FORMAT", "VALUE_BINS", "AMVQBundle", "Statistics", "export_model",
           "load_model"]

MODEL_FORMAT = "semcomm.amvq.model/1"
#: Bins of the value histograms in the model file (levels of any bit depth derive from them).
VALUE_BINS = 4096


@dataclass(frozen=True)
class Statistics:
    """Training statistics the entropy coder needs, stored in the model file.

    Attributes
    ----------
    float_range : [S, 2] float32   [lo, hi] of the unquantized vectors' scalar quantizer
    index_counts : [S, K] int64    transmitted code indices (positions with A <= 1 - tau)
    value_counts : [S, VALUE_BINS] int64
        Histogram of unquantized values (positions with A > 1 - tau), clipped to the range,
        in VALUE_BINS equal bins over [lo, hi]; the level prior of any bit depth is
        derived from it (``codec.level_prior``).
    """

    float_range: torch.Tensor
    index_counts: torch.Tensor
    value_counts: torch.Tensor


def export_model(model: AMVQ, path: str | Path, stats: Statistics,
                 meta: dict[str, Any]) -> Path:
    """Write the codec's model file: weights (float ranges included), config, histograms."""
    model.float_range.copy_(stats.float_range.to(model.float_range))
    return write_model_file(path, MODEL_FORMAT, model,
                            {"index_counts": stats.index_counts.cpu(),
                             "value_counts": stats.value_counts.cpu()}, meta)


#: A loaded AM-VQ model file (``bundle.index_counts``, ``bundle.value_counts``).
AMVQBundle = ModelBundle[AMVQ]


def _build(data: Any, source: str) -> AMVQ:
    return AMVQ(config_from_dict({"model": data}, source=source).model)


def load_model(path: str | Path, device: torch.device | str = "cpu") -> AMVQBundle:
    """Load a ``model.pt`` written by :func:`export_model` (``weights_only=True``)."""
    return load_bundle(path, MODEL_FORMAT, _build, ("index_counts", "value_counts"), device,
                       lambda c: {"index_counts": (c.scales, c.codebook_size),
                                  "value_counts": (c.scales, VALUE_BINS)})
