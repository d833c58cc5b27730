"""Datasets: built-in procedural street scenes, Cityscapes, and plain image folders.

``build_dataset(name, **kwargs)`` is the one entry point used by the runner::

    build_dataset("streetscenes", split="val", count=200, size=(128, 256), seed=0)
    build_dataset("streetscenes", split="val", count=200, size=(128, 256), seed=0,
                  projection="equirectangular")   # 360 x 180 degree panoramas
    build_dataset("cityscapes", split="val", count=None, size=(256, 512), root="/path")
    build_dataset("imagefolder", root="/path", size=None)
    build_dataset("shards", root="/path")   # written once by `semcomm data render`

Every dataset has ``len(ds)`` and ``ds[i] -> Sample``.
"""

from __future__ import annotations

import inspect
from typing import Any

from semcomm.data.base import ImageDataset
from semcomm.data.cityscapes import Cityscapes
from semcomm.data.imagefolder import ImageFolder
from semcomm.data.shards import Shards
from semcomm.data.streetscenes import CLASS_NAMES, StreetScenes
from semcomm.data.types import NUM_CLASSES, VOID, Sample

__all__ = [
    "CLASS_NAMES",
    "DATASETS",
    "ImageDataset",
    "NUM_CLASSES",
    "VOID",
    "Cityscapes",
    "ImageFolder",
    "Sample",
    "Shards",
    "StreetScenes",
    "build_dataset",
]

#: YAML name -> dataset class.
DATASETS: dict[str, type[ImageDataset]] = {
    "streetscenes": StreetScenes,
    "cityscapes": Cityscapes,
    "imagefolder": ImageFolder,
    "shards": Shards,
}


def build_dataset(name: str, **kwargs: Any) -> ImageDataset:
    """Build a dataset by its YAML name with its constructor's keyword arguments.

    Unknown names and unknown keyword arguments raise ValueError naming them.
    """
    if name not in DATASETS:
        raise ValueError(f"dataset {name!r} unknown; choose one of {sorted(DATASETS)}")
    cls = DATASETS[name]
    params = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise ValueError(f"dataset {name!r} does not take {unknown}; allowed: {params}")
    dataset: ImageDataset = cls(**kwargs)
    return dataset
