"""Tiny SQ-GAN configurations and data for fast CPU tests (32 x 64 images, 8 x 16 grid)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from semcomm.codecs.sqgan.config import SQGANConfig, config_from_dict
from semcomm.data.types import VOID, Sample

TINY_BRANCH: dict[str, Any] = {
    "ch": 8, "ch_mult": [1, 2, 2], "num_res_blocks": 1, "attn_resolutions": [8],
    "z_channels": 16, "codebook_size": 32, "codebook_dim": 8, "spade_hidden": 8,
    "spade_kernel": 1, "demasker_layers": 2,
}


def tiny_dict(**train: Any) -> dict[str, Any]:
    """Plain config: 32 x 64 images, downsampling 4 -> 8 x 16 grid, K = 32."""
    base_train: dict[str, Any] = {
        "steps": {"ssm": 3, "img": 3, "all": 3}, "batch_size": 2, "lr": 1e-3,
        "warmup_steps": 1, "disc_start": 0, "disc_ndf": 8, "disc_layers": 2,
        "perceptual": "none", "train_count": 6, "log_every": 1, "save_every": 2,
    }
    base_train.update(train)
    return {"model": {"image_size": [32, 64], "pos_embed_hidden": 8,
                      "image": dict(TINY_BRANCH), "semantic": dict(TINY_BRANCH)},
            "train": base_train}


def tiny_config(**train: Any) -> SQGANConfig:
    return config_from_dict(tiny_dict(**train))


def synthetic_samples(n: int, seed: int = 0, size: tuple[int, int] = (32, 64)) -> list[Sample]:
    """Blocky scenes: sky/building/road bands, a few cars, lights and signs, some void."""
    rng = np.random.default_rng(seed)
    h, w = size
    out = []
    for i in range(n):
        lab = np.zeros((h, w), np.uint8)
        lab[: h // 3] = 10  # sky
        lab[h // 3: h // 2] = 2  # building
        for _ in range(3):
            y, x = int(rng.integers(h // 2, h - 6)), int(rng.integers(0, w - 10))
            lab[y:y + 5, x:x + 9] = 13  # car
        for cls in (6, 7):  # traffic light, sign
            y, x = int(rng.integers(2, h // 2)), int(rng.integers(0, w - 3))
            lab[y:y + 3, x:x + 2] = cls
        lab[-2:, :4] = VOID
        palette = rng.integers(0, 256, size=(256, 3)).astype(np.uint8)
        img = palette[lab] // 2 + rng.integers(0, 128, size=(h, w, 3)).astype(np.uint8)
        out.append(Sample(image=img.astype(np.uint8), labels=lab, name=f"synthetic/{i}"))
    return out


@pytest.fixture
def samples() -> list[Sample]:
    return synthetic_samples(6)
