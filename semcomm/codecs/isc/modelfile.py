"""ISC's model file: weights, config and symbol histograms (inference side).

Written at the end of training, read by :class:`ISCCodec`; the format is the shared one
of ``semcomm.codecs.learned.modelfile`` with the entries ``map_counts [22]``,
``latent_counts [K]`` and ``stage_counts [S, K_e]`` (int64).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from semcomm.codecs.isc.config import model_config_from_dict
from semcomm.codecs.isc.model import ISC
from semcomm.codecs.isc.semmap import MAP_SYMBOLS
from semcomm.codecs.learned.modelfile import ModelBundle, load_bundle, write_model_file

__all__ = ["MODEL_FORMAT", "ISCBundle", "Statistics", "export_model", "load_model"]

MODEL_FORMAT = "semcomm.isc.model/1"


@dataclass(frozen=True)
class Statistics:
    """Symbol histograms the entropy coder's static priors come from (model file).

    Attributes
    ----------
    map_counts : [22] int64          map prediction symbols (semmap.map_symbols)
    latent_counts : [K] int64        base latent indices (zeros without a latent)
    stage_counts : [S, K_e] int64    enhancement indices per stage
    """

    map_counts: torch.Tensor
    latent_counts: torch.Tensor
    stage_counts: torch.Tensor


def export_model(model: ISC, path: str | Path, stats: Statistics, meta: dict[str, Any]) -> Path:
    """Write the codec's model file: weights, config, histograms (``weights_only``-safe)."""
    return write_model_file(path, MODEL_FORMAT, model,
                            {"map_counts": stats.map_counts.cpu(),
                             "latent_counts": stats.latent_counts.cpu(),
                             "stage_counts": stats.stage_counts.cpu()}, meta)


#: A loaded ISC model file (``bundle.map_counts``, ``latent_counts``, ``stage_counts``).
ISCBundle = ModelBundle[ISC]


def _build(data: Any, source: str) -> ISC:
    return ISC(model_config_from_dict(data, source=source))


def load_model(path: str | Path, device: torch.device | str = "cpu") -> ISCBundle:
    """Load a ``model.pt`` written by :func:`export_model` (``weights_only=True``)."""
    return load_bundle(path, MODEL_FORMAT, _build,
                       ("map_counts", "latent_counts", "stage_counts"), device,
                       lambda c: {"map_counts": (MAP_SYMBOLS,), "latent_counts": (c.latent_codes,),
                                  "stage_counts": (c.enh_stages, c.enh_codes)})
