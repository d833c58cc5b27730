"""SQ-GAN configuration: typed, validated before any compute, loaded from YAML.

A YAML file has two sections, ``model`` (:class:`ModelConfig`, stored inside every
checkpoint so a checkpoint needs no other file) and ``train`` (:class:`TrainConfig`).
Unknown keys are errors that name the file, the key path and the nearest valid key
(STYLE.md rule 6). See ``configs/sqgan_paper.yaml`` and ``configs/sqgan_compact.yaml``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semcomm.codecs.learned.config import DataSource, LoopConfig, VQKeys, read_yaml, typed_config
from semcomm.data import CLASS_NAMES as _TRAIN_ID_NAMES
from semcomm.data.types import NUM_CLASSES

#: One-hot channel names: the 19 Cityscapes trainIds, then void (trainId 255).
CLASS_NAMES: tuple[str, ...] = (*_TRAIN_ID_NAMES, "void")
#: Channels of the one-hot semantic map: 19 classes + void (REFERENCE.md Sec. 1).
SEM_CHANNELS = NUM_CLASSES + 1
VOID_INDEX = NUM_CLASSES


#: Allowed ``BranchConfig.patch`` values.
PATCHES = (1, 2)


@dataclass(frozen=True)
class BranchConfig(VQKeys):
    """Architecture of one masked VQ-GAN branch (G_x or G_s).

    Attributes
    ----------
    ch : int
        Base width; level i has ``ch * ch_mult[i]`` channels.
    ch_mult : tuple of int
        One entry per resolution level; ``len - 1`` stride-2 downsamplings, so the
        downsampling factor is ``2 ** (len(ch_mult) - 1)``.
    patch : {1, 2}
        Resolution of the first level relative to the input. 1 (VQGAN, the paper): the
        first level runs at full resolution. 2: the encoder starts with a 3x3 stride-2
        conv and the decoder ends with a sub-pixel conv (conv to ``out_channels * 4``,
        pixel shuffle x2), so no layer runs at full resolution; the downsampling
        becomes ``patch * 2 ** (len(ch_mult) - 1)``. Our CPU-speed option: the
        full-resolution layers cost about half of a compact model's decode.
    num_res_blocks : int
        Residual blocks per level in the encoder (the decoder has one more, as VQGAN).
    attn_resolutions : tuple of int
        Feature-map heights (at the configured image height) with self-attention
        after each residual block; the middle blocks always have attention.
    z_channels : int
        Width of the encoder output and of the de-masker (paper: 256).
    codebook_size : int
        K; each index costs ceil(log2 K) bits in the analytic bpp (paper: 1024, 10 bits).
    codebook_dim : int
        Dimension of the code vectors (paper: 256).
    spade_hidden : int
        Hidden width of the SPADE norms, capped at the normalised layer's width
        (SPADE and the paper: 128).
    spade_kernel : int
        Kernel of SPADE's gamma/beta convs (SPADE and the paper: 3).
    demasker_layers : int
        (ResBlock, attention) pairs in the de-masker (paper: 8).
    mask_weight : float
        Initial attention weight of masked keys in the de-masker, square-rooted after
        each layer (MQ-VAE: 0.02).
    vq_decay, vq_beta, vq_dead_threshold : float
        EMA decay, commitment weight and dead-code threshold of the quantizer.
    dropout : float
    """

    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    patch: int = 1
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    z_channels: int = 256
    codebook_size: int = 1024
    codebook_dim: int = 256
    spade_hidden: int = 128
    spade_kernel: int = 3
    demasker_layers: int = 8
    mask_weight: float = 0.02
    dropout: float = 0.0

    def __post_init__(self) -> None:
        ints = {"ch": self.ch, "num_res_blocks": self.num_res_blocks,
                "z_channels": self.z_channels, "codebook_dim": self.codebook_dim,
                "spade_hidden": self.spade_hidden, "demasker_layers": self.demasker_layers}
        for name, value in ints.items():
            if value < (0 if name in ("num_res_blocks", "demasker_layers") else 1):
                raise ValueError(f"{name} {value} must be positive")
        if not self.ch_mult or any(c < 1 for c in self.ch_mult):
            raise ValueError(f"ch_mult {self.ch_mult} must be a non-empty list of ints >= 1")
        if self.patch not in PATCHES:
            raise ValueError(f"patch {self.patch} not in {PATCHES}")
        if self.spade_kernel < 1 or self.spade_kernel % 2 == 0:
            raise ValueError(f"spade_kernel {self.spade_kernel} must be odd and >= 1")
        if not 2 <= self.codebook_size <= 2 ** 16:
            raise ValueError(f"codebook_size {self.codebook_size} outside [2, 65536]")
        if not 0.0 < self.mask_weight <= 1.0:
            raise ValueError(f"mask_weight {self.mask_weight} outside (0, 1]")

    @property
    def downsampling(self) -> int:
        """Spatial downsampling factor of the encoder."""
        return self.patch * 2 ** (len(self.ch_mult) - 1)

    @property
    def bits_per_index(self) -> int:
        """ceil(log2 K): the paper's fixed-length cost of one index (10 for K = 1024)."""
        return math.ceil(math.log2(self.codebook_size))


@dataclass(frozen=True)
class ModelConfig:
    """Both branches and the image size they were built for.

    Attributes
    ----------
    image_size : (H, W)
        Training size; H and W must be multiples of both branches' downsampling, and
        both branches must give the same latent grid (h, w).
    image, semantic : BranchConfig
        G_x and G_s.
    pos_embed_hidden : int
        Hidden width of the semantic positional embedding of E_x (paper: 128).
    """

    image_size: tuple[int, int] = (256, 512)
    image: BranchConfig = field(default_factory=BranchConfig)
    semantic: BranchConfig = field(default_factory=BranchConfig)
    pos_embed_hidden: int = 128

    def __post_init__(self) -> None:
        h, w = self.image_size
        for name, branch in (("image", self.image), ("semantic", self.semantic)):
            f = branch.downsampling
            if h % f or w % f or h < f or w < f:
                raise ValueError(f"image_size {self.image_size} is not a multiple of the "
                                 f"{name} branch's downsampling {f}")
        if self.image.downsampling != self.semantic.downsampling:
            raise ValueError(f"image and semantic downsampling differ ({self.image.downsampling}"
                             f" vs {self.semantic.downsampling}): one latent grid is assumed")

    @property
    def grid_size(self) -> tuple[int, int]:
        """Latent grid (h, w) = image_size / downsampling."""
        f = self.image.downsampling
        return self.image_size[0] // f, self.image_size[1] // f


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation (SQ-GAN public data pipeline; probabilities per image).

    Attributes
    ----------
    rotate_p, rotate_deg : rotation by U(-deg, deg) degrees with probability p.
    zoom_p, zoom_max : crop-and-resize by a zoom in U(1, zoom_max) at a random offset.
    hflip_p : horizontal flip (street scenes are left-right symmetric).
    jitter_p, brightness, saturation : colour jitter factors in U(1 - a, 1 + a).
    paste_p : probability to paste small objects from other images of the batch.
    paste_classes : class names whose connected components are pasted.
    paste_max : at most this many objects pasted into one image.
    paste_min_pixels : components smaller than this are ignored.
    """

    rotate_p: float = 0.5
    rotate_deg: float = 5.0
    zoom_p: float = 0.5
    zoom_max: float = 1.5
    hflip_p: float = 0.5
    jitter_p: float = 0.3
    brightness: float = 0.1
    saturation: float = 0.1
    paste_p: float = 0.9
    paste_classes: tuple[str, ...] = ("traffic light", "traffic sign")
    paste_max: int = 8
    paste_min_pixels: int = 4

    def __post_init__(self) -> None:
        for name in ("rotate_p", "zoom_p", "hflip_p", "jitter_p", "paste_p"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"augment.{name} {p} outside [0, 1]")
        if self.zoom_max < 1.0 or self.rotate_deg < 0.0:
            raise ValueError(f"zoom_max {self.zoom_max} must be >= 1, rotate_deg >= 0")
        if not (0.0 <= self.brightness < 1.0 and 0.0 <= self.saturation < 1.0):
            raise ValueError(f"brightness {self.brightness}, saturation {self.saturation} "
                             "outside [0, 1)")
        _check_class_names(self.paste_classes, "augment.paste_classes")


@dataclass(frozen=True)
class TrainConfig(LoopConfig):
    """Optimisation, losses and data of the three training stages.

    Attributes (units in the names; weights are dimensionless)
    ----------
    steps : {stage: int}
        Optimiser steps per stage ``ssm`` (G_s), ``img`` (G_x on ground-truth maps)
        and ``all`` (G_x on G_s's decoded maps).
    batch_size, lr, min_lr, warmup_steps, betas :
        Adam (betas (0.5, 0.9) as SQ-GAN) with linear warm-up then cosine decay to min_lr.
    disc_start : int
        Step from which the adversarial term is used (0 = from the start).
    disc_ndf, disc_layers, disc_norm : PatchGAN size.
    adv_weight_img, adv_max_img, adv_weight_ssm, adv_max_ssm :
        Scale and cap of the adaptive adversarial weight (public config: 0.15 / 0.2
        for G_x, 0.75 / 1.0 for G_s).
    codebook_weight_img, codebook_weight_ssm : weight of the VQ commitment loss.
    perceptual : {"segmenter", "lpips", "none"}
        Perceptual term of G_x: features of the bundled segmenter (works offline),
        LPIPS (needs ``--lpips-vgg`` and ``--lpips-lin`` weight files) or none.
    perceptual_weight : float (paper: 0.15 with LPIPS)
    perceptual_layers : names of the segmenter submodules whose outputs are compared.
    l1_class_weights, ce_class_weights : {class name or "default": weight}
        Per-class weights of the L1 term (G_x) and of the cross-entropy (G_s); "void"
        is a class of its own (index 19); unnamed classes take "default".
    blend_classes, blend_alpha :
        Semantic-aware discriminator: on these classes the fake image is
        ``x_hat + alpha (x - x_hat)``, alpha in [0, 1].
    mask_fractions : the values of m a step may use (paper: 5 from 0.05 to 1).
    mask_lognormal_mu, mask_lognormal_sigma :
        m ~ LogNormal(mu, sigma) snapped to the nearest of ``mask_fractions``.
    dataset, train_count : training data (``semcomm.data.build_dataset`` at the
        model's ``image_size``).
    log_every, save_every : steps between loss-log lines / checkpoints.
    ema_decay : EMA of the trained branch's weights, exported instead of them (0 = off).
    """

    steps: dict[str, int] = field(default_factory=lambda: {"ssm": 20000, "img": 20000,
                                                             "all": 5000})
    adv_weight_img: float = 0.15
    adv_max_img: float = 0.2
    adv_weight_ssm: float = 0.75
    adv_max_ssm: float = 1.0
    codebook_weight_img: float = 0.15
    codebook_weight_ssm: float = 1.0
    # SQ-GAN public config (REFERENCE.md Sec. 1): lights/signs 1.0, person/rider 0.55,
    # vegetation/sky 0 (need not be reproduced exactly), everything else 0.15.
    l1_class_weights: dict[str, float] = field(default_factory=lambda: {
        "default": 0.15, "traffic light": 1.0, "traffic sign": 1.0, "person": 0.55,
        "rider": 0.55, "vegetation": 0.0, "sky": 0.0})
    ce_class_weights: dict[str, float] = field(default_factory=lambda: {
        "default": 0.5, "traffic light": 1.0, "traffic sign": 1.0, "person": 0.85,
        "rider": 0.85, "vegetation": 0.2, "sky": 0.2})
    blend_classes: tuple[str, ...] = ("vegetation", "sky")
    blend_alpha: float = 0.85
    mask_fractions: tuple[float, ...] = (0.05, 0.2875, 0.525, 0.7625, 1.0)
    mask_lognormal_mu: float = -0.95
    mask_lognormal_sigma: float = 0.4
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    dataset: str = "streetscenes"
    train_count: int = 2000

    def __post_init__(self) -> None:
        unknown = set(self.steps) - {"ssm", "img", "all"}
        if unknown or any(v < 0 for v in self.steps.values()):
            raise ValueError(f"train.steps {self.steps}: keys must be ssm/img/all, values >= 0")
        super().__post_init__()
        if not 0.0 <= self.blend_alpha <= 1.0:
            # Never extrapolate past the real image (the public code's 1.5 x 0.85 did).
            raise ValueError(f"blend_alpha {self.blend_alpha} outside [0, 1]")
        if not self.mask_fractions or any(not 0.0 < m <= 1.0 for m in self.mask_fractions):
            raise ValueError(f"mask_fractions {self.mask_fractions} must lie in (0, 1]")
        for name in ("l1_class_weights", "ce_class_weights"):
            weights = getattr(self, name)
            _check_class_names(tuple(k for k in weights if k != "default"), f"train.{name}")
            if any(v < 0 for v in weights.values()):
                raise ValueError(f"train.{name} has negative weights: {weights}")
        _check_class_names(self.blend_classes, "train.blend_classes")
        if self.train_count < 1:
            raise ValueError(f"train.train_count {self.train_count} must be >= 1")

    @property
    def data(self) -> tuple[DataSource, ...]:
        """The one training source, in the shape the other codecs' ``train.data`` has."""
        return (DataSource(self.dataset, self.train_count),)


@dataclass(frozen=True)
class SQGANConfig:
    """A whole YAML file: ``model`` and ``train`` sections."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _check_class_names(names: tuple[str, ...], where: str) -> None:
    for name in names:
        if name not in CLASS_NAMES:
            near = difflib.get_close_matches(name, CLASS_NAMES, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(f"{where}: unknown class {name!r}{hint} (allowed {CLASS_NAMES})")


def class_weight_vector(weights: Mapping[str, float]) -> list[float]:
    """Resolve ``{class name | "default": w}`` to one weight per channel (20, void last).

    The public code pairs 20 weights with 19 channels; here every one of the 20
    one-hot channels (void included) gets exactly one weight.
    """
    default = float(weights.get("default", 0.0))
    return [float(weights.get(name, default)) for name in CLASS_NAMES]


def load_config(path: str | Path) -> SQGANConfig:
    """Read and validate a YAML config; errors name the file and the key path."""
    return config_from_dict(read_yaml(path), source=str(path))


def config_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> SQGANConfig:
    """Build a validated :class:`SQGANConfig` from nested plain data."""
    return typed_config(SQGANConfig, data, source)
