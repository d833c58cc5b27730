"""Training data of the learned codecs: sources, resumable batch order, a step loader.

::

    train.data sources ─► training_data() ─► one Sequence[Sample]
    step t ─► BatchMaker(t) = knobs + host tensors      (a pure function of seed and t)
          ─► step_loader: DataLoader over steps [start, stop), W worker processes,
             prefetch P batches each, pinned memory on CUDA ─► the training loop

Everything random in a batch derives from ``(seed, stream, step)``, so batches do not
depend on the number of workers and a resumed run sees exactly the batches of an
uninterrupted one. ``stream`` separates codecs and stages (SQ-GAN 1-3, AM-VQ 7, ISC 8).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar

import numpy as np
import torch

from semcomm.data.types import Sample

_T = TypeVar("_T")

__all__ = ["BatchMaker", "ConcatDataset", "StepData", "batch_indices", "images_tensor",
           "step_loader", "step_rng", "training_data"]


def batch_indices(n: int, batch: int, step: int, seed: int, stream: int) -> list[int]:
    """Dataset indices of batch ``step``: walks a per-epoch permutation, resumable."""
    out = []
    for j in range(batch):
        epoch, pos = divmod(step * batch + j, n)
        perm = np.random.default_rng([seed, stream, 0, epoch]).permutation(n)
        out.append(int(perm[pos]))
    return out


def step_rng(seed: int, stream: int, step: int) -> np.random.Generator:
    """The generator of everything a step draws on the host (knobs, augmentation)."""
    return np.random.default_rng([seed, stream, 1, step])


def images_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    """[H, W, 3] uint8 images -> x [B, 3, H, W] float32 in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(np.stack(images))).permute(0, 3, 1, 2)
    return x.float().div_(255.0)


class ConcatDataset(Sequence[Sample]):
    """The training sources one after the other."""

    def __init__(self, parts: Sequence[Sequence[Sample]]) -> None:
        self.parts = list(parts)
        self.ends = np.cumsum([len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    def __getitem__(self, index: int) -> Sample:  # type: ignore[override]
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} outside [0, {len(self)})")
        k = int(np.searchsorted(self.ends, index, side="right"))
        start = int(self.ends[k - 1]) if k else 0
        return self.parts[k][index - start]


def training_data(sources: Sequence[Any], size: tuple[int, int], seed: int,
                  root: str | None = None) -> Sequence[Sample]:
    """The concatenated ``train.data`` sources (:class:`DataSource`) at ``size``.

    Each source gets those of split="train", count, seed, size and root (``--data-root``)
    that its dataset class takes, plus its own ``params``.
    """
    from semcomm.data import DATASETS, build_dataset

    parts = []
    for src in sources:
        if src.name not in DATASETS:
            raise ValueError(f"train.data: dataset {src.name!r} unknown; choose one of "
                             f"{sorted(DATASETS)}")
        accepted = inspect.signature(DATASETS[src.name]).parameters
        offered: dict[str, Any] = {"split": "train", "count": src.count, "seed": seed,
                                   "size": tuple(size), "root": root}
        kwargs = {k: v for k, v in offered.items() if k in accepted}
        parts.append(build_dataset(src.name, **{**kwargs, **src.params}))
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


class StepData(NamedTuple):
    """What the host prepares for one step: the drawn knobs (m, tau, depth, ...) and the
    batch tensors on the CPU (moved to the device by the loop)."""

    knobs: dict[str, float]
    tensors: tuple[torch.Tensor, ...]


class BatchMaker(Protocol):
    """A picklable function step -> :class:`StepData`, pure in (its seed, step)."""

    def __call__(self, step: int) -> StepData: ...


class _Steps(torch.utils.data.Dataset[_T]):
    """Item k = the batch of step ``start + k``."""

    def __init__(self, make: Callable[[int], _T], start: int, stop: int) -> None:
        self.make, self.start, self.stop = make, start, stop

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    def __getitem__(self, k: int) -> _T:
        return self.make(self.start + k)


def step_loader(make: Callable[[int], _T], start: int, stop: int, workers: int = 0,
                prefetch: int = 4, pin_memory: bool = False) -> Iterator[_T]:
    """Batches ``make(step)`` of steps ``start .. stop - 1`` in order (``make`` is a
    picklable function of the step alone: a :class:`BatchMaker`, or the segmenter's).

    ``workers`` = 0 builds each batch in this process when the step asks for it (the
    2-core CPU case); W > 0 builds them in W processes, ``prefetch`` batches ahead each,
    so the step does not wait when W workers are faster than one step.
    """
    if workers < 0 or prefetch < 1:
        raise ValueError(f"workers {workers} must be >= 0 and prefetch {prefetch} >= 1")
    loader = torch.utils.data.DataLoader(
        _Steps(make, start, stop), batch_size=None, shuffle=False, num_workers=workers,
        prefetch_factor=prefetch if workers else None, pin_memory=pin_memory,
        persistent_workers=False)
    return iter(loader)
