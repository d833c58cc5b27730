"""Training scaffolding shared by the learned codecs' trainers (SQ-GAN, AM-VQ, ...)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch


def lr_at(step: int, total: int, lr: float, min_lr: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``min_lr`` at ``total``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    span = max(total - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def truncate_log(path: Path, step: int) -> None:
    """Drop log lines at or after ``step`` (left by a run that died after its checkpoint)."""
    if not path.is_file():
        return
    keep = [ln for ln in path.read_text().splitlines()
            if ln.strip() and json.loads(ln).get("step", -1) < step]
    path.write_text("".join(ln + "\n" for ln in keep))


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, then rename: a killed run never leaves a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
