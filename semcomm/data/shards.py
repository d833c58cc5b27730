"""Rendered StreetScenes shards: generate once, reuse across runs and machines.

::

    semcomm data render --out data/streetscenes_256x512 --count 20000 --size 256 512
      -> <out>/manifest.json                     what was rendered (dataset, params, files)
         <out>/shard-00000.npz ...               ``shard_size`` images each: per image the
                                                 members img_<k> [H, W, 3] uint8 and
                                                 lab_<k> [H, W] uint8 (deflate-compressed)
    build_dataset("shards", root="data/streetscenes_256x512")  # same Samples, read back

A shard is a zip of one member per image, so reading image i decompresses that image
alone (a few ms at 256 x 512) instead of rendering it (about 65 ms on one core). The
samples equal those of ``StreetScenes`` with the manifest's parameters, pixel for pixel,
so a training run gives the same numbers from shards as from the generator.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from semcomm.data.base import ImageDataset
from semcomm.data.streetscenes import StreetScenes
from semcomm.data.types import Sample

__all__ = ["MANIFEST", "SHARD_FORMAT", "Shards", "render_shards"]

SHARD_FORMAT = "semcomm.shards/1"
MANIFEST = "manifest.json"


def _render_one(params: dict[str, Any], start: int, stop: int, path: str) -> list[str]:
    ds = StreetScenes(**params)
    members: dict[str, np.ndarray] = {}
    names = []
    for k, i in enumerate(range(start, stop)):
        smp = ds[i]
        members[f"img_{k}"], members[f"lab_{k}"] = smp.image, np.asarray(smp.labels)
        names.append(smp.name)
    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, **members)  # type: ignore[arg-type]
    os.replace(tmp, path)
    return names


def render_shards(out: str | Path, count: int, size: Sequence[int] = (128, 256),
                  split: str = "train", seed: int = 0, projection: str = "pinhole",
                  shard_size: int = 256, workers: int | None = None) -> Path:
    """Render ``count`` StreetScenes images into ``out`` (shards + manifest); returns the
    manifest's path. Shards already complete in ``out`` for the same parameters are kept
    (an interrupted render resumes). ValueError for bad parameters, before any work."""
    hw = (int(size[0]), int(size[1]))
    gen_params: dict[str, Any] = {"split": split, "count": int(count), "size": hw,
                                  "seed": int(seed), "projection": projection}
    StreetScenes(**gen_params)  # validates, renders nothing
    params = {**gen_params, "size": list(hw)}  # as JSON stores it
    if shard_size < 1:
        raise ValueError(f"shard_size {shard_size} must be >= 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / MANIFEST
    if manifest.is_file() and json.loads(manifest.read_text()).get("params") != params:
        raise ValueError(f"{manifest} holds other parameters "
                         f"{json.loads(manifest.read_text()).get('params')}; use another --out")
    jobs = [(start, min(start + shard_size, count), out / f"shard-{k:05d}.npz")
            for k, start in enumerate(range(0, count, shard_size))]
    workers = (os.cpu_count() or 1) if workers is None else max(1, workers)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_render_one, gen_params, a, b, str(p))
                   for a, b, p in jobs if not p.is_file()]
        for f in futures:
            f.result()
    shards = [{"file": p.name, "start": a, "count": b - a} for a, b, p in jobs]
    manifest.write_text(json.dumps({"format": SHARD_FORMAT, "dataset": "streetscenes",
                                    "params": params, "shards": shards}, indent=1) + "\n")
    return manifest


class Shards(ImageDataset):
    """Samples read back from :func:`render_shards` output.

    Parameters
    ----------
    root : folder holding ``manifest.json`` and the shards
    split : must equal the rendered split (a guard against training on val)
    count : the first ``count`` images (None: all)
    size : must equal the rendered (H, W) when given (shards are not resized)
    """

    def __init__(self, root: str | Path, split: str | None = None, count: int | None = None,
                 size: Sequence[int] | None = None) -> None:
        if root is None:
            raise ValueError("shards needs root=<folder written by `semcomm data render`>")
        self.root = Path(root)
        path = self.root / MANIFEST
        if not path.is_file():
            raise ValueError(f"no {MANIFEST} in {self.root}; write it with `semcomm data "
                             "render --out DIR`")
        meta = json.loads(path.read_text())
        if meta.get("format") != SHARD_FORMAT:
            raise ValueError(f"{path}: format {meta.get('format')!r}, expected {SHARD_FORMAT!r}")
        self.params, self.shards = meta["params"], meta["shards"]
        total = sum(s["count"] for s in self.shards)
        if split is not None and split != self.params["split"]:
            raise ValueError(f"{path}: split {self.params['split']!r} rendered, {split!r} asked")
        if size is not None and list(size) != list(self.params["size"]):
            raise ValueError(f"{path}: size {self.params['size']} rendered, {list(size)} asked")
        if count is not None and not 1 <= count <= total:
            raise ValueError(f"count {count} outside [1, {total}] (images in {self.root})")
        self.length = total if count is None else int(count)
        self.starts = np.array([s["start"] for s in self.shards])
        self._open: tuple[int, Any] | None = None

    def __len__(self) -> int:
        return self.length

    def _load(self, index: int) -> Sample:
        k = int(np.searchsorted(self.starts, index, side="right")) - 1
        if self._open is None or self._open[0] != k:
            self._open = (k, np.load(self.root / self.shards[k]["file"]))
        member = index - int(self.starts[k])
        npz = self._open[1]
        proj = "streetscenes360" if self.params["projection"] == "equirectangular" else (
            "streetscenes")
        return Sample(image=npz[f"img_{member}"], labels=npz[f"lab_{member}"],
                      name=f"{proj}/{self.params['split']}/{index:06d}")

    def __getstate__(self) -> dict[str, Any]:
        # Open zip files do not cross into DataLoader workers; each reopens its own.
        return {**self.__dict__, "_open": None}
