"""Static entropy-coder priors from the symbol histograms stored in a model file.

Every learned codec counts its transmitted symbols (code indices, map symbols, float
levels) over training images at export time; the codec turns each histogram into a
:class:`semcomm.bitstream.Prior` once, when it loads the model file.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from semcomm.bitstream import Prior

__all__ = ["PRIOR_SMOOTHING", "prior_from_counts"]

#: Additive pseudo-count per index when turning the checkpoint's histograms into priors
#: (0.5 = Krichevsky-Trofimov, as ``Prior.fit``): every index stays codable.
PRIOR_SMOOTHING = 0.5


def prior_from_counts(counts: Any, num_symbols: int, branch: str) -> Prior:
    """Index histogram [K] (raw counts, zeros allowed) -> smoothed static prior.

    p(k) = (count(k) + 0.5) / (N + 0.5 K), exactly what ``Prior.fit`` gives for the
    samples behind the histogram. ``branch`` names the histogram in the error message.
    """
    c = torch.as_tensor(counts).detach().cpu().numpy().astype(np.float64)
    if c.shape != (num_symbols,) or not np.all(np.isfinite(c)) or np.any(c < 0):
        raise ValueError(f"index_counts[{branch!r}] must be [K={num_symbols}] non-negative "
                         f"counts, got shape {c.shape}")
    c = c + PRIOR_SMOOTHING
    return Prior(c / c.sum())
