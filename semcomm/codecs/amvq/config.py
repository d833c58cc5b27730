"""AM-VQ configuration: typed, validated before any compute, loaded from YAML.

A YAML file has two sections, ``model`` (:class:`ModelConfig`, stored inside every
checkpoint so that a model file needs no other file) and ``train``
(:class:`TrainConfig`). Unknown keys are errors that name the file, the key path and the
nearest valid key (STYLE.md rule 6). See ``configs/amvq_compact.yaml`` (the shipped
model, 128 x 256 built-in data on a CPU) and ``configs/amvq_paper.yaml``.

The YAML -> dataclass conversion is the generic builder shared by the learned codecs
(``semcomm.codecs.config_schema.build_config``), reused rather than copied.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from semcomm.codecs.config_schema import build_config, config_to_dict

__all__ = ["AMVQConfig", "DataSource", "ModelConfig", "TrainConfig", "config_from_dict",
           "config_to_dict", "load_config"]

#: Norms allowed after each strided conv (the paper: batch norm).
NORMS = ("batch", "group")
#: Where a downsample block's residual blocks run (see ``ModelConfig.res_width``).
RES_WIDTHS = ("output", "input")
#: Scalar types allowed as dataset parameters (``train.data[i].params``).
_PARAM_TYPES = (str, int, float, bool)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the AM-VQ encoder, quantizers and decoder.

    Attributes
    ----------
    image_size : (H, W)
        Training size; H and W must be multiples of the downsampling. Any multiple can be
        coded later (the network is fully convolutional).
    ch : int
        Base width; level i has ``ch * ch_mult[i]`` channels.
    ch_mult : tuple of int
        One entry per resolution level: ``len - 1`` downsample blocks, so the coarsest
        latent grid is (H, W) / 2**(len(ch_mult) - 1).
    num_res_blocks : int
        Residual blocks per downsample block (the paper: two) and per upsample block.
    scales : int
        Number of latent grids sent, the coarsest ``scales`` levels (1 = single scale;
        2 = also the grid at twice the resolution, fed into the decoder's matching
        level: the paper's multi-scale features).
    codebook_size : int
        K per scale (one codebook per scale, shared by the receiver).
    code_dim : int
        d, the dimension of every latent vector (code vectors and unquantized vectors).
    norm : {"batch", "group"}
        Norm after each strided conv / upsample conv (the paper: batch). The residual
        blocks are the shared pre-activation ``ResBlock`` (group norm).
    res_width : {"output", "input"}
        Width of a downsample block's residual blocks, which run at the block's input
        resolution. ``output``: the first residual block widens c_in -> c_out and the
        strided conv keeps c_out. ``input``: the residual blocks keep c_in and the
        strided conv widens to c_out, so every level's convolutions run at that level's
        own width: at full resolution ``ch`` instead of ``ch * ch_mult[1]`` channels,
        several times fewer operations (the compact config's CPU speed). The paper
        does not say where the width changes.
    vq_decay, vq_beta, vq_dead_threshold : float
        EMA decay, commitment weight and dead-code threshold of each quantizer.
    float_bits : int
        Default bit depth of the scalar quantizer for unquantized vectors (the codec's
        ``float_bits`` overrides it).
    range_quantile : float
        The float range is [q, 1 - q] quantiles of the latent values (training
        statistics, kept in the model's buffers and the checkpoint).
    range_momentum : float
        EMA momentum of the range during training.
    """

    image_size: tuple[int, int] = (256, 512)
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    scales: int = 2
    codebook_size: int = 1024
    code_dim: int = 256
    norm: str = "batch"
    res_width: str = "output"
    vq_decay: float = 0.99
    vq_beta: float = 0.25
    vq_dead_threshold: float = 0.01
    float_bits: int = 8
    range_quantile: float = 0.001
    range_momentum: float = 0.99

    def __post_init__(self) -> None:
        if self.ch < 1 or self.code_dim < 1 or self.num_res_blocks < 0:
            raise ValueError(f"ch {self.ch} and code_dim {self.code_dim} must be >= 1, "
                             f"num_res_blocks {self.num_res_blocks} >= 0")
        if len(self.ch_mult) < 2 or any(c < 1 for c in self.ch_mult):
            raise ValueError(f"ch_mult {self.ch_mult} needs >= 2 entries (at least one "
                             "downsample block), all >= 1")
        if not 1 <= self.scales <= len(self.ch_mult) - 1:
            raise ValueError(f"scales {self.scales} outside [1, {len(self.ch_mult) - 1}] "
                             f"(downsample blocks of ch_mult {self.ch_mult})")
        if not 2 <= self.codebook_size <= 2**16:
            raise ValueError(f"codebook_size {self.codebook_size} outside [2, 65536]")
        if self.norm not in NORMS:
            raise ValueError(f"norm {self.norm!r} not in {NORMS}")
        if self.res_width not in RES_WIDTHS:
            raise ValueError(f"res_width {self.res_width!r} not in {RES_WIDTHS}")
        if not 1 <= self.float_bits <= 16:
            raise ValueError(f"float_bits {self.float_bits} outside [1, 16]")
        if not 0.0 <= self.range_quantile < 0.5:
            raise ValueError(f"range_quantile {self.range_quantile} outside [0, 0.5)")
        if not 0.0 <= self.range_momentum < 1.0:
            raise ValueError(f"range_momentum {self.range_momentum} outside [0, 1)")
        f = self.downsampling
        h, w = self.image_size
        if h < f or w < f or h % f or w % f:
            raise ValueError(f"image_size {self.image_size} is not a positive multiple of the "
                             f"downsampling {f}")

    @property
    def downsampling(self) -> int:
        """Factor between the image and the coarsest latent grid."""
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def scale_factors(self) -> tuple[int, ...]:
        """Downsampling of each sent grid, coarsest first (e.g. (16, 8))."""
        f = self.downsampling
        return tuple(f // 2**i for i in range(self.scales))

    @property
    def bits_per_index(self) -> int:
        """ceil(log2 K), the fixed-length cost of one index."""
        return math.ceil(math.log2(self.codebook_size))


@dataclass(frozen=True)
class DataSource:
    """One training dataset: ``build_dataset(name, split="train", count=count,
    size=model.image_size, seed=seed, **params)``.

    ``params`` holds extra constructor arguments (str, int, float or bool), e.g. the
    generator's panorama mode once it exists.
    """

    name: str = "streetscenes"
    count: int = 2000
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or self.count < 1:
            raise ValueError(f"data source {self.name!r}: name must be non-empty and count "
                             f"{self.count} >= 1")
        for key, value in self.params.items():
            if not isinstance(key, str) or not isinstance(value, _PARAM_TYPES):
                raise ValueError(f"data source {self.name!r}: param {key!r}={value!r} must "
                                 "map a name to a str, int, float or bool")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, losses, tau sampling and data.

    Attributes (weights are dimensionless)
    ----------
    steps : int
        Optimiser steps.
    batch_size, lr, min_lr, warmup_steps, betas :
        Adam with linear warm-up then cosine decay to min_lr.
    disc_start : int
        Step from which the adversarial term and the discriminator updates run.
    disc_ndf, disc_layers, disc_norm : PatchGAN size (the paper: 3 conv-BN-act sets).
    adv_weight, adv_max :
        Scale and cap of VQGAN's adaptive weight of the BCE adversarial term (the
        paper's lambda, Eq. 10).
    l1_weight : weight of the L1 reconstruction term (the paper's LAD loss).
    codebook_weight : weight of the commitment loss (the codebooks move by EMA).
    commit_floats : bool
        True (the paper's Eq. 4 as extracted): the commitment term pulls every latent
        vector towards its code. False: only the vectors quantized at the step's tau;
        those sent unquantized are left free to carry what the codebook cannot.
    perceptual : {"segmenter", "lpips", "none"}
        Perceptual term (SQ-GAN's builders): bundled segmenter features (offline),
        LPIPS-VGG from user weight files, or none.
    perceptual_weight, perceptual_layers : as SQ-GAN.
    tau_choices : values of tau a training step draws from, uniformly (one model
        serves every tau; 0.0 = plain VQ). Repeat a value to draw it more often.
    hflip_p : probability of a horizontal flip per image (valid for planar street
        scenes and for equirectangular panoramas alike).
    data : training datasets, concatenated.
    log_every, save_every : steps between loss-log lines / checkpoints.
    """

    steps: int = 20000
    batch_size: int = 8
    lr: float = 1e-4
    min_lr: float = 0.0
    warmup_steps: int = 500
    betas: tuple[float, float] = (0.5, 0.9)
    disc_start: int = 0
    disc_ndf: int = 64
    disc_layers: int = 3
    disc_norm: str = "batch"
    adv_weight: float = 0.1
    adv_max: float = 0.2
    l1_weight: float = 1.0
    codebook_weight: float = 1.0
    perceptual: str = "segmenter"
    perceptual_weight: float = 0.15
    perceptual_layers: tuple[str, ...] = ("s2", "s4", "s8", "s16")
    commit_floats: bool = True
    tau_choices: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.7, 1.0)
    hflip_p: float = 0.5
    data: tuple[DataSource, ...] = (DataSource(),)
    log_every: int = 10
    save_every: int = 500

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or self.warmup_steps < 0:
            raise ValueError(f"steps {self.steps} and warmup_steps {self.warmup_steps} must be "
                             f">= 0, batch_size {self.batch_size} >= 1")
        if self.lr <= 0.0 or self.min_lr < 0.0:
            raise ValueError(f"lr {self.lr} must be > 0 and min_lr {self.min_lr} >= 0")
        if self.perceptual not in ("segmenter", "lpips", "none"):
            raise ValueError(f"perceptual {self.perceptual!r} not in ('segmenter', 'lpips', "
                             "'none')")
        weights = {"adv_weight": self.adv_weight, "adv_max": self.adv_max,
                   "l1_weight": self.l1_weight, "codebook_weight": self.codebook_weight,
                   "perceptual_weight": self.perceptual_weight}
        bad = {k: v for k, v in weights.items() if not (math.isfinite(v) and v >= 0.0)}
        if bad:
            raise ValueError(f"loss weights must be finite and >= 0, got {bad}")
        if not self.tau_choices or any(not 0.0 <= t <= 1.0 for t in self.tau_choices):
            raise ValueError(f"tau_choices {self.tau_choices} must be a non-empty list of "
                             "values in [0, 1]")
        if not 0.0 <= self.hflip_p <= 1.0:
            raise ValueError(f"hflip_p {self.hflip_p} outside [0, 1]")
        if not self.data:
            raise ValueError("train.data needs at least one data source")
        if self.log_every < 1 or self.save_every < 1:
            raise ValueError(f"log_every {self.log_every} and save_every {self.save_every} "
                             "must be >= 1")

    @property
    def train_count(self) -> int:
        """Training images over all data sources."""
        return sum(src.count for src in self.data)


@dataclass(frozen=True)
class AMVQConfig:
    """A whole YAML file: ``model`` and ``train`` sections."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def load_config(path: str | Path) -> AMVQConfig:
    """Read and validate a YAML config; errors name the file and the key path."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    return config_from_dict(data, source=str(path))


def config_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> AMVQConfig:
    """Build a validated :class:`AMVQConfig` from nested plain data.

    ``train.data[i].params`` is free-form (dataset constructor arguments) and is taken
    out before the typed conversion, then checked by :class:`DataSource`.
    """
    try:
        data, params = split_data_params(data, source)
        cfg: AMVQConfig = build_config(AMVQConfig, data, source)
        if params is not None:
            sources = tuple(replace(src, params=p) for src, p in
                            zip(cfg.train.data, params, strict=True))
            cfg = replace(cfg, train=replace(cfg.train, data=sources))
        return cfg
    except (TypeError, ValueError) as err:
        if str(err).startswith(source):
            raise
        raise ValueError(f"{source}: {err}") from err


def split_data_params(data: Mapping[str, Any], source: str
                  ) -> tuple[Mapping[str, Any], list[dict[str, Any]] | None]:
    """Copy of ``data`` without ``train.data[i].params``, and those params in order."""
    train = data.get("train") if isinstance(data, Mapping) else None
    if not isinstance(train, Mapping) or not isinstance(train.get("data"), list | tuple):
        return data, None
    sources = train["data"]
    stripped, params = [], []
    for i, src in enumerate(sources):
        if not isinstance(src, Mapping):
            raise ValueError(f"{source}: train.data[{i}] must be a mapping, got {src!r}")
        p = src.get("params", {})
        if not isinstance(p, Mapping):
            raise ValueError(f"{source}: train.data[{i}].params must be a mapping, got {p!r}")
        params.append(dict(p))
        stripped.append({k: v for k, v in src.items() if k != "params"})
    return {**data, "train": {**train, "data": stripped}}, params
