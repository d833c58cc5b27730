"""The learned codecs' model-file format: one ``torch.save`` dict, ``weights_only``-safe.

::

    {"format": "semcomm.<codec>.model/1",          # checked on load
     "config": {"model": <plain-data ModelConfig>}, # the file needs no other file
     "state_dict": {name: tensor},                  # CPU tensors
     <histograms>: tensor | {name: tensor},         # the entropy coder's statistics
     "meta": {...}}                                 # step, seed, stage, ...

Inference code (each codec's ``modelfile.py``/``codec.py``) reads it through
:func:`read_model_file`; training code writes it through :func:`write_model_file`.
Neither imports the trainer. Resumable training checkpoints use the same atomic writer.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch
from torch import nn

from semcomm.codecs.config_schema import config_to_dict

__all__ = ["ModelBundle", "atomic_save", "load_bundle", "read_model_file", "statistics_mode",
           "write_model_file"]

_M = TypeVar("_M", bound=nn.Module)


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, then rename: a killed run never leaves a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def write_model_file(path: str | Path, fmt: str, model: nn.Module,
                     statistics: Mapping[str, Any], meta: Mapping[str, Any]) -> Path:
    """Write ``model`` (with a ``config`` dataclass attribute) and its statistics.

    ``statistics`` are top-level entries beside the weights (tensors or dicts of
    tensors, moved to the CPU by the caller); ``meta`` is plain data.
    """
    path = Path(path)
    config = getattr(model, "config", None)
    if config is None:
        raise ValueError(f"{type(model).__name__} has no .config to store in {path}")
    atomic_save({"format": fmt, "config": {"model": config_to_dict(config)},
                 "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                 **statistics, "meta": dict(meta)}, path)
    return path


def read_model_file(path: str | Path, fmt: str,
                    device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a model file (``weights_only=True``) and check its format tag.

    ValueError naming the file, the format found and the one expected.
    """
    ckpt = torch.load(Path(path), map_location=device, weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != fmt:
        got = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path}: format {got!r}, expected {fmt!r}")
    return ckpt


@contextlib.contextmanager
def statistics_mode(model: nn.Module, count: int) -> Iterator[torch.device]:
    """Evaluation mode for the histograms of a model file over ``count`` images; yields
    the model's device and restores its training mode afterwards."""
    if count < 1:
        raise ValueError(f"statistics need at least one image, got count={count}")
    was_training = model.training
    model.eval()
    try:
        yield next(model.parameters()).device
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class ModelBundle(Generic[_M]):
    """A loaded model file: the model (eval mode), its statistics by name (also readable
    as attributes: ``bundle.index_counts``) and the training metadata."""

    model: _M
    statistics: dict[str, Any]
    meta: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        stats = self.__dict__.get("statistics", {})
        if name in stats:
            return stats[name]
        raise AttributeError(f"model file has no statistic {name!r}; it has {sorted(stats)}")


def load_bundle(path: str | Path, fmt: str, build: Callable[[Any, str], _M],
                names: Sequence[str], device: torch.device | str = "cpu",
                shapes: Callable[[Any], Mapping[str, tuple[int, ...]]] | None = None
                ) -> ModelBundle[_M]:
    """Load a model file: ``build(model config data, source)`` makes the network, the
    weights are loaded, the statistics ``names`` are read (tensors moved to the CPU) and
    checked against ``shapes(model.config)``. ValueError naming the file and the entry."""
    ckpt = read_model_file(path, fmt, device)
    model = build(ckpt["config"]["model"], str(path)).to(device)
    model.load_state_dict(ckpt["state_dict"])
    stats: dict[str, Any] = {
        n: ckpt[n].cpu() if isinstance(ckpt[n], torch.Tensor) else dict(ckpt[n]) for n in names}
    for key, shape in (shapes(model.config) if shapes else {}).items():
        if tuple(stats[key].shape) != tuple(shape):
            raise ValueError(f"{path}: {key} has shape {tuple(stats[key].shape)}, expected "
                             f"{tuple(shape)}")
    return ModelBundle(model.eval(), stats, dict(ckpt["meta"]))
