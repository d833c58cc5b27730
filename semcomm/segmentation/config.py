"""The segmenter trainer's config (``configs/segmenter.yaml``, ``configs/judge.yaml``).

Frozen dataclasses validated by the learned codecs' pydantic schema
(:func:`semcomm.codecs.config_schema.build_config`): strict types, unknown keys refused,
and the first error as ONE line naming the file, the key path and, for an unknown key,
the nearest valid key (STYLE.md rule 6), e.g.
``c.yaml: unknown key 'train.step'; nearest valid key: 'train.steps'``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from semcomm.codecs.config_schema import build_config
from semcomm.codecs.learned.config import read_yaml
from semcomm.segmentation.model import SegNetConfig

__all__ = ["DATASETS", "DEVICES", "DataSection", "ModelSection", "SegmenterConfig",
           "TrainSection", "load_config"]

#: Datasets the segmenter trains on (``semcomm.data`` registry names).
DATASETS = ("streetscenes", "cityscapes")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class ModelSection:
    """The network (:class:`SegNetConfig` less ``num_classes``, which is 19 here).

    widths : (c0, c1, c2, c3), channels at strides 2, 4, 8, 16.
    blocks8, blocks16 : blocks at strides 8 and 16.
    arch : "segnet" (the bundled segmenter) or "judgenet" (the judge of mIoU).
    """

    widths: tuple[int, int, int, int] = (24, 48, 64, 128)
    blocks8: int = 2
    blocks16: int = 4
    arch: str = "segnet"

    def __post_init__(self) -> None:
        self.net_config()  # SegNetConfig's checks (arch, widths, block counts)

    def net_config(self) -> SegNetConfig:
        return SegNetConfig(widths=self.widths, blocks8=self.blocks8, blocks16=self.blocks16,
                            arch=self.arch)


@dataclass(frozen=True)
class DataSection:
    """Training and validation images: ``dataset`` at ``size`` (H, W); StreetScenes
    renders them from ``seed``, Cityscapes reads them from ``root``."""

    dataset: str = "streetscenes"
    size: tuple[int, int] = (128, 256)
    seed: int = 0
    root: str | None = None
    split: str = "train"
    val_split: str = "val"

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset {self.dataset!r} not one of {', '.join(DATASETS)}")
        if min(self.size) < 16:
            raise ValueError(f"size {list(self.size)} must be >= 16 pixels per side")
        if self.seed < 0:
            raise ValueError(f"seed {self.seed} must be >= 0")


@dataclass(frozen=True)
class TrainSection:
    """Optimisation (AdamW, OneCycle peak ``lr``), augmentation, loop and machine.

    jpeg_prob, jpeg_quality : share of inputs JPEG-compressed, quality range [lo, hi].
    ckpt_every, eval_every, eval_count : checkpoint / mIoU interval (steps), val images.
    device, threads, workers : "auto"|"cpu"|"cuda", torch threads, batch processes.
    init : exported or training checkpoint to fine-tune from (None: random weights).
    """

    steps: int = 9000
    batch: int = 8
    lr: float = 0.004
    weight_decay: float = 1e-4
    jpeg_prob: float = 0.5
    jpeg_quality: tuple[int, int] = (3, 95)
    flip: bool = True
    ckpt_every: int = 250
    eval_every: int = 1000
    eval_count: int = 48
    device: str = "auto"
    threads: int = 1
    workers: int = 1
    seed: int = 0
    init: str | None = None

    def __post_init__(self) -> None:
        for key in ("steps", "batch", "ckpt_every", "eval_every", "eval_count", "threads"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} {getattr(self, key)} must be >= 1")
        if self.workers < 0 or self.seed < 0:
            raise ValueError(f"workers {self.workers} and seed {self.seed} must be >= 0")
        if not 0.0 <= self.jpeg_prob <= 1.0:
            raise ValueError(f"jpeg_prob {self.jpeg_prob} outside [0, 1]")
        lo, hi = self.jpeg_quality
        if not 1 <= lo <= hi <= 95:
            raise ValueError(f"jpeg_quality {list(self.jpeg_quality)} must be [lo, hi] with "
                             "1 <= lo <= hi <= 95")
        if self.device not in DEVICES:
            raise ValueError(f"device {self.device!r} not one of {', '.join(DEVICES)}")
        if not self.lr > 0.0 or self.weight_decay < 0.0:
            raise ValueError(f"lr {self.lr} must be > 0 and weight_decay "
                             f"{self.weight_decay} >= 0")


@dataclass(frozen=True)
class SegmenterConfig:
    """A whole segmenter config file; ``export`` is where the weights-only model goes."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    export: str = "semcomm/assets/segmenter.pt"


def load_config(path: str | Path) -> SegmenterConfig:
    """Validated config of a YAML file (defaults for absent keys); ValueError, one line
    naming the file, the key path and the nearest valid key."""
    return build_config(SegmenterConfig, read_yaml(path), str(path))
