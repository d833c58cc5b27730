"""Config pieces every learned codec shares: data sources, loop checks, YAML loading.

Each codec's ``config.py`` keeps its own ``ModelConfig``/``TrainConfig`` (what differs)
and calls these for what is the same: ``train.data`` entries (:class:`DataSource`), the
checks of the optimisation/loop keys (:func:`check_loop`), and the YAML -> validated
dataclass conversion with errors that name the file, the key and the nearest valid key
(:func:`read_yaml`, :func:`typed_config`; STYLE.md rule 6).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

from semcomm.codecs.config_schema import build_config

__all__ = ["PERCEPTUALS", "DataSource", "LoopConfig", "VQKeys", "check_loop", "check_schedule",
           "check_weights", "read_yaml", "split_data_params", "typed_config"]

#: Perceptual terms of the generators (``semcomm.codecs.learned.perceptual``).
PERCEPTUALS = ("segmenter", "lpips", "none")
#: Discriminator norms (``semcomm.codecs.layers.PatchDiscriminator``).
DISC_NORMS = ("batch", "group", "none")
#: Scalar types allowed as dataset parameters (``train.data[i].params``).
_PARAM_TYPES = (str, int, float, bool)
_C = TypeVar("_C")


@dataclass(frozen=True)
class DataSource:
    """One training dataset: ``build_dataset(name, split="train", count=count,
    size=model.image_size, seed=seed, root=--data-root, **params)`` (the arguments its
    class takes).

    ``params`` holds extra constructor arguments (str, int, float or bool), e.g.
    ``{projection: equirectangular}`` for StreetScenes panoramas.
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
class VQKeys:
    """The EMA vector quantizer's keys (``semcomm.codecs.layers.EMAVectorQuantizer``),
    shared by every learned codec's model config: EMA decay, commitment weight (beta,
    0.25 in VQ-VAE and SQ-GAN) and dead-code threshold."""

    vq_decay: float = 0.99
    vq_beta: float = 0.25
    vq_dead_threshold: float = 0.01


@dataclass(frozen=True)
class LoopConfig:
    """The ``train`` keys of the shared loop; each codec's ``TrainConfig`` extends it
    (and may change a default by declaring the field again).

    Attributes
    ----------
    batch_size, lr, min_lr, warmup_steps, betas :
        Adam (betas (0.5, 0.9) as SQ-GAN and VQGAN) with linear warm-up, then cosine
        decay to ``min_lr`` at the last step.
    disc_start : int
        Step from which the adversarial term and the discriminator updates run.
    disc_ndf, disc_layers, disc_norm : PatchGAN size.
    perceptual : {"segmenter", "lpips", "none"}
        Bundled segmenter features (offline), LPIPS-VGG from user weight files, or none.
    perceptual_weight, perceptual_layers : weight and segmenter layers of that term.
    log_every, save_every : steps between loss-log lines / checkpoints.
    ema_decay : exponential moving average of the generator weights, exported instead
        of them (0 = off).
    """

    batch_size: int = 8
    lr: float = 1e-4
    min_lr: float = 0.0
    warmup_steps: int = 500
    betas: tuple[float, float] = (0.5, 0.9)
    disc_start: int = 0
    disc_ndf: int = 64
    disc_layers: int = 3
    disc_norm: str = "batch"
    perceptual: str = "segmenter"
    perceptual_weight: float = 0.15
    perceptual_layers: tuple[str, ...] = ("s2", "s4", "s8", "s16")
    log_every: int = 10
    save_every: int = 500
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        check_loop(self)

    @staticmethod
    def check_weights(weights: Mapping[str, float]) -> None:
        """Loss weights must be finite and >= 0; ValueError naming the bad ones."""
        check_weights(weights)

    @staticmethod
    def check_sources(hflip_p: float, data: tuple[DataSource, ...]) -> None:
        """A flip probability in [0, 1] and at least one ``train.data`` source."""
        if not 0.0 <= hflip_p <= 1.0:
            raise ValueError(f"hflip_p {hflip_p} outside [0, 1]")
        if not data:
            raise ValueError("train.data needs at least one data source")


def check_weights(weights: Mapping[str, float]) -> None:
    """Loss weights must be finite and >= 0; ValueError naming the bad ones."""
    bad = {k: v for k, v in weights.items() if not (math.isfinite(v) and v >= 0.0)}
    if bad:
        raise ValueError(f"loss weights must be finite and >= 0, got {bad}")


def check_schedule(t: Any) -> None:
    """Checks of the keys of every ``train`` section on the shared loop (steps,
    batch_size, lr, min_lr, warmup_steps, log_every, save_every); ValueError naming the
    value and the allowed range."""
    steps = getattr(t, "steps", 0)  # an int, or SQ-GAN's {stage: int} (checked there)
    if isinstance(steps, int) and steps < 0:
        raise ValueError(f"train.steps {steps} must be >= 0")
    if t.batch_size < 1 or t.lr <= 0.0 or t.min_lr < 0.0:
        raise ValueError(f"batch_size {t.batch_size} must be >= 1, lr {t.lr} > 0, "
                         f"min_lr {t.min_lr} >= 0")
    if t.warmup_steps < 0:
        raise ValueError(f"train.warmup_steps {t.warmup_steps} must be >= 0")
    if t.log_every < 1 or t.save_every < 1:
        raise ValueError(f"log_every {t.log_every} and save_every {t.save_every} "
                         "must be >= 1")


def check_loop(t: Any) -> None:
    """Checks of the keys every learned codec's ``train`` section has (those of
    :func:`check_schedule`, discriminator, perceptual term, EMA); ValueError naming the
    value and the allowed range."""
    check_schedule(t)
    if t.disc_start < 0:
        raise ValueError(f"train.disc_start {t.disc_start} and train.warmup_steps "
                         f"{t.warmup_steps} must be >= 0")
    if t.perceptual not in PERCEPTUALS:
        raise ValueError(f"perceptual {t.perceptual!r} not in {PERCEPTUALS}")
    if t.disc_norm not in DISC_NORMS:
        raise ValueError(f"disc_norm {t.disc_norm!r} not in {DISC_NORMS}")
    if not 0.0 <= t.ema_decay < 1.0:
        raise ValueError(f"train.ema_decay {t.ema_decay} outside [0, 1) (0 = no EMA)")


def read_yaml(path: str | Path) -> Any:
    """Parsed YAML of an existing file; ValueError naming a missing one."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    return yaml.safe_load(path.read_text()) or {}


def typed_config(cls: type[_C], data: Mapping[str, Any], source: str) -> _C:
    """Validated ``cls`` (a codec's whole-file config) from nested plain data.

    ``train.data[i].params`` is free-form (dataset constructor arguments): it is taken out
    before the typed conversion and checked by :class:`DataSource`. Every error starts
    with ``source`` (the file).
    """
    try:
        data, params = split_data_params(data, source)
        cfg: Any = build_config(cls, data, source)
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
