"""DeepJSCC configuration, validated before any compute.

A YAML file has two sections, ``model`` (:class:`ModelConfig`, stored inside every model
file so that it needs no other file) and ``train`` (:class:`TrainConfig`). Unknown keys
are errors that name the file, the key path and the nearest valid key (STYLE.md rule 6,
the shared ``config_schema.build_config``); out-of-range values name the value and what
is allowed. See ``configs/deepjscc.yaml`` and docs/deepjscc.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from semcomm.codecs.config_schema import build_config, config_to_dict
from semcomm.codecs.learned.config import check_schedule

__all__ = ["DeepJSCCConfig", "ModelConfig", "TrainConfig", "config_from_dict",
           "config_to_dict", "load_config", "model_config_from_dict"]

#: Channels a training step may draw (channels/analog.py simulates the same three).
TRAIN_CHANNELS = ("awgn", "rayleigh-fast", "rayleigh-block")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture (Bourtsoulatze et al. 2019 DeepJSCC, with ADJSCC's attention-feature
    modules of Xu et al. 2021 in the decoder).

    Attributes
    ----------
    image_size : (H, W)
        Training size; any size whose H and W are multiples of ``factor`` can be coded.
    enc_ch : tuple of int
        Widths of the stride-2 5x5 conv stages, finest first; factor = 2 ** len(enc_ch).
    res_blocks : int
        Residual blocks (two 3x3 convs) at the latent grid, in encoder and decoder.
    max_channels : int
        C, complex channel symbols per latent position at full width. Sending the first
        c <= C of them gives bandwidth ratio c / factor^2 channel uses per pixel.
    snr_range_db : (lo, hi)
        Es/N0 range the decoder's SNR side input is clamped to (and trained over).
    af_hidden : int
        Hidden width of each AF module's two-layer perceptron.
    """

    image_size: tuple[int, int] = (128, 256)
    enc_ch: tuple[int, ...] = (32, 64)
    res_blocks: int = 2
    max_channels: int = 4
    snr_range_db: tuple[float, float] = (-2.0, 22.0)
    af_hidden: int = 16

    def __post_init__(self) -> None:
        if not self.enc_ch or min(self.enc_ch) < 1 or len(self.enc_ch) > 5:
            raise ValueError(f"enc_ch {self.enc_ch} must hold 1..5 widths >= 1")
        if not 0 <= self.res_blocks <= 16:
            raise ValueError(f"res_blocks {self.res_blocks} outside [0, 16]")
        if not 1 <= self.max_channels <= 256:
            raise ValueError(f"max_channels {self.max_channels} outside [1, 256]")
        lo, hi = self.snr_range_db
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"snr_range_db {self.snr_range_db} must be finite with lo < hi")
        if self.af_hidden < 1:
            raise ValueError(f"af_hidden {self.af_hidden} must be >= 1")
        h, w = self.image_size
        if h < self.factor or w < self.factor or h % self.factor or w % self.factor:
            raise ValueError(f"image_size {self.image_size} is not a positive multiple of "
                             f"{self.factor} (2 ** len(enc_ch))")

    @property
    def factor(self) -> int:
        """Downsampling factor of the latent grid."""
        return 2 ** len(self.enc_ch)

    def ratio_channels(self, ratio: float) -> int:
        """Complex channels c sent at bandwidth ratio ``ratio`` (channel uses per pixel).

        Raises ValueError naming the ratios this model can send.
        """
        c = ratio * self.factor ** 2
        if not (isinstance(ratio, int | float) and math.isfinite(ratio)
                and abs(c - round(c)) < 1e-9 and 1 <= round(c) <= self.max_channels):
            raise ValueError(f"bandwidth ratio {ratio!r} not available; this DeepJSCC model "
                             f"sends {self.ratios} channel uses per pixel")
        return int(round(c))

    @property
    def ratios(self) -> list[float]:
        """Every bandwidth ratio (channel uses per pixel) the model can send."""
        return [c / self.factor ** 2 for c in range(1, self.max_channels + 1)]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, channel sampling and data.

    Attributes
    ----------
    steps, batch_size, lr, min_lr, warmup_steps :
        Adam with linear warm-up then cosine decay to min_lr (``training.lr_at``).
    crop : (h, w)
        Random crop of each training image (0, 0 = the whole image); multiples of the
        model's factor. Crops make CPU steps cheap; the nets are fully convolutional.
    hflip_p : probability of a horizontal flip.
    channel_choices : complex channels c a step draws from, uniformly per step
        (channel truncation: one model for every ratio c / factor^2).
    channels, channel_probs : channel of each training image and their probabilities.
    block_symbols : rayleigh-block coherence length in symbols during training (the
        16-QAM rate-1/2 code block of the digital link: 2048).
    mse_weight : weight of the pixel MSE (the only loss: the bundled segmenter judges
        mIoU, so it is not used as a loss).
    data_count, data_seed : StreetScenes training split (``split="train"``).
    val_images, val_snr_db : validation PSNR (AWGN, full width) logged at each save.
    seed : seeds every draw of a step from (seed, step): exact resume.
    log_every, save_every : steps between log lines / checkpoints.
    """

    steps: int = 2000
    batch_size: int = 8
    lr: float = 1e-3
    min_lr: float = 5e-5
    warmup_steps: int = 50
    crop: tuple[int, int] = (64, 128)
    hflip_p: float = 0.5
    channel_choices: tuple[int, ...] = (2, 4)
    channels: tuple[str, ...] = TRAIN_CHANNELS
    channel_probs: tuple[float, ...] = (0.5, 0.25, 0.25)
    block_symbols: int = 2048
    mse_weight: float = 1.0
    data_count: int = 20000
    data_seed: int = 0
    val_images: int = 8
    val_snr_db: float = 10.0
    seed: int = 0
    log_every: int = 10
    save_every: int = 100

    def __post_init__(self) -> None:
        check_schedule(self)  # steps, batch_size, lr, min_lr, warmup_steps, log_every, ...
        if not 0.0 <= self.hflip_p <= 1.0:
            raise ValueError(f"hflip_p {self.hflip_p} outside [0, 1]")
        if not self.channel_choices or min(self.channel_choices) < 1:
            raise ValueError(f"channel_choices {self.channel_choices} must be channel counts "
                             ">= 1")
        bad = [c for c in self.channels if c not in TRAIN_CHANNELS]
        if not self.channels or bad:
            raise ValueError(f"channels {list(self.channels)} must be a non-empty subset of "
                             f"{list(TRAIN_CHANNELS)}")
        if len(self.channel_probs) != len(self.channels) or min(self.channel_probs) < 0 \
                or abs(sum(self.channel_probs) - 1.0) > 1e-6:
            raise ValueError(f"channel_probs {list(self.channel_probs)} must be one "
                             f"probability >= 0 per channel {list(self.channels)}, summing to 1")
        if self.block_symbols < 1 or self.data_count < 1 or self.val_images < 0:
            raise ValueError(f"block_symbols {self.block_symbols}, data_count "
                             f"{self.data_count} must be >= 1, val_images {self.val_images} >= 0")
        if not (math.isfinite(self.mse_weight) and self.mse_weight > 0):
            raise ValueError(f"mse_weight {self.mse_weight} must be finite and > 0")
        if self.seed < 0 or self.data_seed < 0:
            raise ValueError(f"seed {self.seed} and data_seed {self.data_seed} must be >= 0")


@dataclass(frozen=True)
class DeepJSCCConfig:
    """A whole YAML file: ``model`` and ``train`` sections."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def crop_size(self) -> tuple[int, int]:
        """(h, w) of a training crop: ``train.crop``, or ``model.image_size`` for (0, 0)."""
        return self.train.crop if self.train.crop != (0, 0) else self.model.image_size

    def __post_init__(self) -> None:
        m, t = self.model, self.train
        if max(t.channel_choices) > m.max_channels:
            raise ValueError(f"train.channel_choices {list(t.channel_choices)} exceed "
                             f"model.max_channels {m.max_channels}")
        ch, cw = t.crop
        if (ch, cw) != (0, 0) and (ch < m.factor or cw < m.factor or ch % m.factor
                                   or cw % m.factor or ch > m.image_size[0]
                                   or cw > m.image_size[1]):
            raise ValueError(f"train.crop {t.crop} must be (0, 0) or multiples of "
                             f"{m.factor} no larger than model.image_size {m.image_size}")


def load_config(path: str | Path) -> DeepJSCCConfig:
    """Read and validate a YAML config; errors name the file and the key path."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    return config_from_dict(data, source=str(path))


def config_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> DeepJSCCConfig:
    """Build a validated :class:`DeepJSCCConfig` from nested plain data."""
    return _build(DeepJSCCConfig, data, source, "")


def model_config_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> ModelConfig:
    """The ``model`` section alone (what a model file stores)."""
    return _build(ModelConfig, data, source, "model")


def _build(cls: Any, data: Any, source: str, where: str) -> Any:
    try:
        return build_config(cls, data, source, where)
    except (TypeError, ValueError) as err:
        if str(err).startswith(source):
            raise
        raise ValueError(f"{source}: {err}") from err
