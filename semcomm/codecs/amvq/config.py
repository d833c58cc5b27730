"""AM-VQ configuration: typed, validated before any compute, loaded from YAML.

A YAML file has two sections, ``model`` (:class:`ModelConfig`, stored inside every
checkpoint so that a model file needs no other file) and ``train``
(:class:`TrainConfig`). Unknown keys are errors that name the file, the key path and the
nearest valid key (STYLE.md rule 6). See ``configs/amvq_compact.yaml`` (the shipped
model, 128 x 256 built-in data on a CPU) and ``configs/amvq_paper.yaml``.

The YAML -> dataclass conversion, the data sources and the loop checks are the learned
codecs' shared ones (``semcomm.codecs.learned.config``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semcomm.codecs.config_schema import config_to_dict
from semcomm.codecs.learned.config import DataSource, LoopConfig, VQKeys, read_yaml, typed_config

__all__ = ["AMVQConfig", "DataSource", "ModelConfig", "TrainConfig", "config_from_dict",
           "config_to_dict", "load_config"]

#: Norms allowed after each strided conv (the paper: batch norm).
NORMS = ("batch", "group")
#: Where a downsample block's residual blocks run (see ``ModelConfig.res_width``).
RES_WIDTHS = ("output", "input")
#: Activation-map variants (see ``ModelConfig.activation`` and activation.py).
MAPS = ("gradcam", "layercam")


@dataclass(frozen=True)
class ModelConfig(VQKeys):
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
    activation : {"gradcam", "layercam"}
        The activation map that picks the unquantized vectors: ``gradcam``, the paper's
        Eqs. 5-6 (gradients pooled over positions), or ``layercam``, the gradients kept
        per position (activation.py says why; docs/amvq.md has the measurements).
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
    activation: str = "gradcam"
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
        if self.activation not in MAPS:
            raise ValueError(f"activation {self.activation!r} not in {MAPS}")
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
class TrainConfig(LoopConfig):
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
    freeze_encoder : bool
        True: only the decoder learns (encoder, codebooks and their batch-norm statistics
        stay as initialised, ``--init``): a fine-tune that teaches the decoder to use the
        unquantized vectors without moving what the transmitter sends.
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
    ema_decay : EMA of the encoder/decoder weights, exported instead of them (0 = off).
    """

    steps: int = 20000
    adv_weight: float = 0.1
    adv_max: float = 0.2
    l1_weight: float = 1.0
    codebook_weight: float = 1.0
    commit_floats: bool = True
    freeze_encoder: bool = False
    tau_choices: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.7, 1.0)
    hflip_p: float = 0.5
    data: tuple[DataSource, ...] = (DataSource(),)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_weights({"adv_weight": self.adv_weight, "adv_max": self.adv_max,
                            "l1_weight": self.l1_weight, "codebook_weight": self.codebook_weight,
                            "perceptual_weight": self.perceptual_weight})
        if not self.tau_choices or any(not 0.0 <= t <= 1.0 for t in self.tau_choices):
            raise ValueError(f"tau_choices {self.tau_choices} must be a non-empty list of "
                             "values in [0, 1]")
        self.check_sources(self.hflip_p, self.data)

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
    return config_from_dict(read_yaml(path), source=str(path))


def config_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> AMVQConfig:
    """Build a validated :class:`AMVQConfig` from nested plain data (``train.data[i].params``
    free-form, checked by :class:`DataSource`)."""
    return typed_config(AMVQConfig, data, source)
