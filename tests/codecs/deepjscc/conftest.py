"""A tiny DeepJSCC configuration for fast CPU tests (32 x 64 images, factor 4, C = 2)."""

from __future__ import annotations

from typing import Any

from semcomm.codecs.deepjscc.config import DeepJSCCConfig, config_from_dict

SIZE = (32, 64)


def tiny_dict(**train: Any) -> dict[str, Any]:
    t: dict[str, Any] = {"steps": 4, "batch_size": 2, "lr": 1e-3, "warmup_steps": 1,
                         "crop": [16, 32], "channel_choices": [1, 2], "data_count": 6,
                         "val_images": 1, "log_every": 1, "save_every": 2,
                         "block_symbols": 16}
    t.update(train)
    return {"model": {"image_size": list(SIZE), "enc_ch": [4, 8], "res_blocks": 1,
                      "max_channels": 2, "af_hidden": 4}, "train": t}


def tiny_config(**train: Any) -> DeepJSCCConfig:
    return config_from_dict(tiny_dict(**train))
