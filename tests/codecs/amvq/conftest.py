"""Tiny AM-VQ configurations, data and a model file for fast CPU tests (32 x 64 images).

Tiny model: widths 4, 8, 8, 16 (three downsample blocks, factor 8), two scales (grids
4 x 8 and 8 x 16: 160 positions), K = 32, d = 4, 4-bit floats.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from semcomm.codecs.amvq.config import AMVQConfig, config_from_dict
from semcomm.codecs.amvq.model import AMVQ
from semcomm.codecs.amvq.train import collect_statistics, export_model
from semcomm.data.types import Sample

SIZE = (32, 64)
TAUS = (0.0, 0.1, 0.3, 0.5, 0.7, 1.0)


def tiny_dict(**train: Any) -> dict[str, Any]:
    base_train: dict[str, Any] = {
        "steps": 3, "batch_size": 2, "lr": 1e-3, "warmup_steps": 1, "disc_start": 0,
        "disc_ndf": 8, "disc_layers": 2, "perceptual": "none", "log_every": 1,
        "save_every": 2, "data": [{"name": "streetscenes", "count": 6}],
    }
    base_train.update(train)
    return {"model": {"image_size": list(SIZE), "ch": 4, "ch_mult": [1, 2, 2, 4],
                      "num_res_blocks": 1, "scales": 2, "codebook_size": 32, "code_dim": 4,
                      "float_bits": 4},
            "train": base_train}


def tiny_config(**train: Any) -> AMVQConfig:
    return config_from_dict(tiny_dict(**train))


def synthetic_samples(n: int, seed: int = 0, size: tuple[int, int] = SIZE) -> list[Sample]:
    """Smooth colour bands with a few blocks and noise (labels are not used by AM-VQ)."""
    rng = np.random.default_rng(seed)
    h, w = size
    out = []
    for i in range(n):
        img = np.zeros((h, w, 3), np.float64)
        img[:] = np.linspace(0, 1, h)[:, None, None] * rng.uniform(50, 200, 3)
        for _ in range(3):
            y, x = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 12))
            img[y:y + 8, x:x + 12] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 12, img.shape)
        out.append(Sample(np.clip(img, 0, 255).astype(np.uint8), None, f"synthetic/{i}"))
    return out


def trained_tiny_model(seed: int = 0) -> tuple[AMVQ, list[Sample]]:
    """A random tiny model after two training-mode passes (data-driven codebooks and
    float ranges), in eval mode."""
    torch.manual_seed(seed)
    model = AMVQ(tiny_config().model)
    data = synthetic_samples(4, seed=3)
    x = torch.stack([torch.from_numpy(d.image).permute(2, 0, 1) for d in data]).float() / 255
    model.train()
    with torch.no_grad():
        for tau in (0.3, 1.0):
            model(x, tau)
    return model.eval(), data


@pytest.fixture(scope="package")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, data = trained_tiny_model()
    stats = collect_statistics(model, data, TAUS, count=4, batch=4)
    path = tmp_path_factory.mktemp("amvq") / "model.pt"
    return export_model(model, path, stats, {"note": "random test model"})


@pytest.fixture
def samples() -> list[Sample]:
    return synthetic_samples(6)
