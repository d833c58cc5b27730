"""Tiny ISC configurations, labelled data and a model file for fast CPU tests (32 x 64).

Tiny model: map at 8 x 16 (map_factor 4), base latent 4 x 8 (factor 8, K = 16, d = 4),
SPADE generator widths 8, 8, 8, enhancement grid 8 x 16 (factor 4), 3 residual-VQ
stages of K = 16, d = 4.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from semcomm.codecs.isc.config import ISCConfig, config_from_dict
from semcomm.codecs.isc.model import ISC, map_onehot
from semcomm.codecs.isc.train import collect_statistics, export_model, make_batch
from semcomm.data.types import Sample

SIZE = (32, 64)
STAGES = 3


def tiny_dict(**train: Any) -> dict[str, Any]:
    base_train: dict[str, Any] = {
        "steps": 3, "batch_size": 2, "lr": 1e-3, "warmup_steps": 1, "disc_start": 0,
        "disc_ndf": 8, "disc_layers": 2, "perceptual": "none", "log_every": 1,
        "save_every": 2, "depth_choices": [1, 2, 3],
        "data": [{"name": "streetscenes", "count": 6}],
    }
    base_train.update(train)
    return {"model": {"image_size": list(SIZE), "map_factor": 4, "latent_factor": 8,
                      "enc_ch": [4, 8, 8, 8], "latent_codes": 16, "latent_dim": 4,
                      "gen_ch": [8, 8, 8], "spade_hidden": 8, "enh_factor": 4,
                      "enh_ch": [4, 8, 8], "enh_stages": STAGES, "enh_codes": 16,
                      "enh_dim": 4},
            "train": base_train}


def tiny_config(**train: Any) -> ISCConfig:
    return config_from_dict(tiny_dict(**train))


def synthetic_samples(n: int, seed: int = 0, size: tuple[int, int] = SIZE) -> list[Sample]:
    """Sky / road bands with a few labelled blocks, void specks and noise."""
    rng = np.random.default_rng(seed)
    h, w = size
    out = []
    for i in range(n):
        img = np.zeros((h, w, 3), np.float64)
        lab = np.full((h, w), 10, np.uint8)  # sky
        lab[h // 2:] = 0  # road
        img[:] = np.where(lab[..., None] == 10, [120, 160, 220], [90, 90, 90])
        for _ in range(3):
            y, x = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 12))
            cls = int(rng.integers(0, 19))
            lab[y:y + 8, x:x + 12] = cls
            img[y:y + 8, x:x + 12] = rng.uniform(0, 255, 3)
        lab[rng.random((h, w)) < 0.02] = 255
        img += rng.normal(0, 10, img.shape)
        out.append(Sample(np.clip(img, 0, 255).astype(np.uint8), lab, f"synthetic/{i}"))
    return out


def trained_tiny_model(seed: int = 0) -> tuple[ISC, list[Sample]]:
    """A random tiny model after two training-mode passes (data-driven codebooks)."""
    torch.manual_seed(seed)
    cfg = tiny_config().model
    model = ISC(cfg)
    data = synthetic_samples(4, seed=3)
    x, m = make_batch(data, range(4), cfg.map_factor)
    model.train()
    with torch.no_grad():
        for depth in (1, STAGES):
            model(x, map_onehot(m), depth)
    return model.eval(), data


@pytest.fixture(scope="package")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, data = trained_tiny_model()
    stats = collect_statistics(model, data, count=4, batch=4)
    path = tmp_path_factory.mktemp("isc") / "model.pt"
    return export_model(model, path, stats, {"note": "random test model"})


@pytest.fixture
def samples() -> list[Sample]:
    return synthetic_samples(6)
