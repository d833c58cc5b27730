"""Small shared helpers: seeding and thread setup."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch from one experiment seed; return a NumPy generator.

    ``seed=0`` is a valid seed. Sionna 2.x draws from torch's generator, so seeding torch
    seeds it too.
    """
    if seed is None or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)
