"""ISC (coarse-to-fine image semantic coding) configuration, validated before any compute.

A YAML file has two sections, ``model`` (:class:`ModelConfig`, stored inside every
model file so that it needs no other file) and ``train`` (:class:`TrainConfig`).
Unknown keys are errors that name the file, the key path and the nearest valid key
(STYLE.md rule 6); out-of-range values name the value and what is allowed. See
``configs/isc_compact.yaml`` (the model to ship, 128 x 256 built-in data on a CPU) and
``configs/isc_paper.yaml`` (256 x 512, for a GPU).

The paper (Huang et al., GLOBECOM 2021, REFERENCE.md Sec. 2) publishes only its
abstract; every value below is our choice and is documented as such in ``docs/isc.md``.
The YAML -> dataclass conversion and the dataset entries are the shared ones
(``semcomm.codecs.learned.config``), reused, not copied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semcomm.codecs.config_schema import build_config, config_to_dict
from semcomm.codecs.learned.config import DataSource, LoopConfig, VQKeys, read_yaml, typed_config

__all__ = ["DataSource", "ISCConfig", "ModelConfig", "TrainConfig", "config_from_dict",
           "config_to_dict", "load_config", "model_config_from_dict"]

#: Map downsampling factors the map coder accepts (1 = exactly lossless).
MAP_FACTORS = (1, 2, 4, 8, 16)


def _log2_exact(value: int, name: str) -> int:
    if value < 1 or value & (value - 1):
        raise ValueError(f"{name} {value} must be a power of two >= 1")
    return value.bit_length() - 1


@dataclass(frozen=True)
class ModelConfig(VQKeys):
    """Architecture of the base layer (map coder, latent, SPADE generator) and the
    enhancement layer (residual encoder, residual VQ stages, residual decoder).

    Attributes
    ----------
    image_size : (H, W)
        Training size; H, W multiples of every factor below. Any such size can be coded
        later (the networks are fully convolutional).
    map_factor : int in (1, 2, 4, 8, 16)
        The semantic map is sent at (H, W) / map_factor, each cell the majority trainId
        of its block (void counts as a class), losslessly coded; 1 = the exact map.
    base_latent : bool
        Also send a compact latent (conv encoder + EMA VQ) with the base layer; False:
        the SPADE generator starts from a learned constant (map-only base layer).
    latent_factor : int (power of two >= 2)
        Base latent grid = (H, W) / latent_factor; also the generator's start resolution.
    enc_ch : tuple of int
        Base encoder widths, finest first, log2(latent_factor) + 1 entries.
    latent_codes, latent_dim : int
        K and d of the base latent's codebook.
    gen_ch : tuple of int
        SPADE generator widths, coarsest (latent grid) first, one SPADE residual block
        per entry, each entry doubling the resolution; at most log2(latent_factor) + 1
        entries. With fewer, the last level is nearest-upsampled to full size before the
        output conv (a full-resolution SPADE block costs more than the rest together).
    spade_hidden, spade_kernel : int
        Hidden width of the shared conv on the map and kernel of gamma/beta.
    enh_factor : int (power of two >= 2)
        Enhancement latent grid = (H, W) / enh_factor.
    enh_ch : tuple of int
        Residual encoder/decoder widths, finest first, log2(enh_factor) + 1 entries
        (entry 0 is the full-resolution head).
    enh_stages : int >= 1
        S, residual VQ stages = enhancement rates (knob 0..S; 0 = base only).
    enh_codes, enh_dim : int
        K and d of every stage's codebook.
    vq_decay, vq_beta, vq_dead_threshold : float
        EMA decay, commitment weight and dead-code threshold of every quantizer.
    """

    image_size: tuple[int, int] = (128, 256)
    map_factor: int = 4
    base_latent: bool = True
    latent_factor: int = 16
    enc_ch: tuple[int, ...] = (16, 32, 48, 64, 64)
    latent_codes: int = 256
    latent_dim: int = 8
    gen_ch: tuple[int, ...] = (96, 64, 48, 32)
    spade_hidden: int = 32
    spade_kernel: int = 1
    enh_factor: int = 8
    enh_ch: tuple[int, ...] = (16, 32, 48, 64)
    enh_stages: int = 4
    enh_codes: int = 256
    enh_dim: int = 8

    def __post_init__(self) -> None:
        if self.map_factor not in MAP_FACTORS:
            raise ValueError(f"map_factor {self.map_factor} not in {MAP_FACTORS}")
        lat = _log2_exact(self.latent_factor, "latent_factor")
        enh = _log2_exact(self.enh_factor, "enh_factor")
        if lat < 1 or enh < 1:
            raise ValueError(f"latent_factor {self.latent_factor} and enh_factor "
                             f"{self.enh_factor} must be >= 2")
        if len(self.enc_ch) != lat + 1:
            raise ValueError(f"enc_ch {self.enc_ch} needs log2(latent_factor) + 1 = "
                             f"{lat + 1} entries")
        if not 1 <= len(self.gen_ch) <= lat + 1:
            raise ValueError(f"gen_ch {self.gen_ch} needs 1 to log2(latent_factor) + 1 = "
                             f"{lat + 1} entries")
        if len(self.enh_ch) != enh + 1:
            raise ValueError(f"enh_ch {self.enh_ch} needs log2(enh_factor) + 1 = "
                             f"{enh + 1} entries")
        widths = (*self.enc_ch, *self.gen_ch, *self.enh_ch, self.spade_hidden,
                  self.latent_dim, self.enh_dim)
        if min(widths) < 1:
            raise ValueError(f"all widths and dims must be >= 1, got {widths}")
        if self.spade_kernel < 1 or self.spade_kernel % 2 == 0:
            raise ValueError(f"spade_kernel {self.spade_kernel} must be odd and >= 1")
        if not 1 <= self.enh_stages <= 16:
            raise ValueError(f"enh_stages {self.enh_stages} outside [1, 16]")
        for name, k in (("latent_codes", self.latent_codes), ("enh_codes", self.enh_codes)):
            if not 2 <= k <= 2**16:
                raise ValueError(f"{name} {k} outside [2, 65536]")
        if not 0.0 < self.vq_decay < 1.0 or self.vq_beta < 0 or self.vq_dead_threshold <= 0:
            raise ValueError(f"vq_decay {self.vq_decay} must lie in (0, 1), vq_beta "
                             f"{self.vq_beta} >= 0, vq_dead_threshold "
                             f"{self.vq_dead_threshold} > 0")
        h, w = self.image_size
        f = self.multiple
        if h < f or w < f or h % f or w % f:
            raise ValueError(f"image_size {self.image_size} is not a positive multiple of "
                             f"{f} (the largest of map_factor, latent_factor, enh_factor)")

    @property
    def multiple(self) -> int:
        """H and W must be multiples of this."""
        return max(self.map_factor, self.latent_factor, self.enh_factor)

    @property
    def latent_levels(self) -> int:
        return self.latent_factor.bit_length() - 1

    @property
    def enh_levels(self) -> int:
        return self.enh_factor.bit_length() - 1


@dataclass(frozen=True)
class TrainConfig(LoopConfig):
    """Optimisation, losses, enhancement-depth sampling and data.

    Attributes (weights are dimensionless)
    ----------
    steps, batch_size, lr, min_lr, warmup_steps, betas :
        Adam with linear warm-up then cosine decay to min_lr.
    disc_start : int
        Step from which the adversarial terms and discriminator updates run.
    disc_ndf, disc_layers, disc_norm : PatchGAN size.
    adv_weight, adv_max : scale and cap of VQGAN's adaptive weight of each hinge term.
    l1_weight, mse_weight : pixel terms (both layers).
    perceptual : {"segmenter", "lpips", "none"}; perceptual_weight, perceptual_layers
        as SQ-GAN (segmenter = bundled segmenter features, offline).
    enh_weight : weight of the enhancement layer's terms against the base layer's.
    enh_adv_scale : multiplies adv_weight and adv_max for the enhanced image (< 1: the
        enhancement layer leans towards distortion, the base layer towards perception).
    codebook_weight : weight of the commitment losses.
    depth_choices : enhancement depths (1..S) a step draws from, uniformly; the base
        image (depth 0) is trained at every step.
    hflip_p : probability of a horizontal flip of image and map together.
    data : training datasets (they must carry labels), concatenated.
    log_every, save_every : steps between loss-log lines / checkpoints.
    ema_decay : EMA of the generator weights, exported instead of them (0 = off).
    """

    steps: int = 4000
    lr: float = 2e-4
    min_lr: float = 1e-5
    warmup_steps: int = 200
    disc_start: int = 1000
    disc_ndf: int = 32
    adv_weight: float = 0.1
    adv_max: float = 0.2
    l1_weight: float = 1.0
    mse_weight: float = 0.0
    enh_weight: float = 1.0
    enh_adv_scale: float = 0.5
    codebook_weight: float = 1.0
    depth_choices: tuple[int, ...] = (1, 2, 3, 4)
    hflip_p: float = 0.5
    data: tuple[DataSource, ...] = (DataSource(),)
    save_every: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_weights({"adv_weight": self.adv_weight, "adv_max": self.adv_max,
                            "l1_weight": self.l1_weight, "mse_weight": self.mse_weight,
                            "perceptual_weight": self.perceptual_weight,
                            "enh_weight": self.enh_weight, "enh_adv_scale": self.enh_adv_scale,
                            "codebook_weight": self.codebook_weight})
        if not self.depth_choices or any(d < 1 for d in self.depth_choices):
            raise ValueError(f"depth_choices {self.depth_choices} must be a non-empty list of "
                             "enhancement depths >= 1")
        self.check_sources(self.hflip_p, self.data)


@dataclass(frozen=True)
class ISCConfig:
    """A whole YAML file: ``model`` and ``train`` sections."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        s = self.model.enh_stages
        if max(self.train.depth_choices) > s:
            raise ValueError(f"train.depth_choices {self.train.depth_choices} exceed "
                             f"model.enh_stages {s}; allowed depths 1..{s}")


def load_config(path: str | Path) -> ISCConfig:
    """Read and validate a YAML config; errors name the file and the key path."""
    return config_from_dict(read_yaml(path), source=str(path))


def model_config_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> ModelConfig:
    """The ``model`` section alone (a model file stores no ``train`` section)."""
    try:
        cfg: ModelConfig = build_config(ModelConfig, data, source, "model")
        return cfg
    except (TypeError, ValueError) as err:
        if str(err).startswith(source):
            raise
        raise ValueError(f"{source}: {err}") from err


def config_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> ISCConfig:
    """Build a validated :class:`ISCConfig` from nested plain data (e.g. parsed YAML)."""
    return typed_config(ISCConfig, data, source)
