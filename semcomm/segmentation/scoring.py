"""Confusion matrix and IoU for semantic maps (void pixels ignored).

mIoU follows the Cityscapes benchmark: one confusion matrix accumulated over the whole
set, IoU_c = TP / (TP + FP + FN), averaged over the classes that occur in the ground
truth or the prediction (a class absent from both has no IoU, not 0 or 1).
"""

from __future__ import annotations

import numpy as np
import torch

from semcomm.data.types import NUM_CLASSES, VOID


def confusion(
    pred: torch.Tensor | np.ndarray,
    target: torch.Tensor | np.ndarray,
    num_classes: int = NUM_CLASSES,
) -> torch.Tensor:
    """Confusion counts [C, C + 1] int64: rows = truth, columns = prediction.

    pred, target : same shape, integer trainIds. Pixels whose target is 255 (void) are
    ignored. A prediction outside 0..C-1 (e.g. void) on a labelled pixel is counted in
    the extra last column: a miss (false negative) that is no other class's false
    positive.
    """
    p = torch.as_tensor(pred).long()
    t = torch.as_tensor(target).long()
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {tuple(p.shape)} != target shape {tuple(t.shape)}")
    keep = t != VOID
    t, p = t[keep], p[keep]
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        raise ValueError(
            f"target ids [{int(t.min())}, {int(t.max())}] outside 0..{num_classes - 1} or 255"
        )
    p = torch.where((p >= 0) & (p < num_classes), p, torch.full_like(p, num_classes))
    counts = torch.bincount(t * (num_classes + 1) + p, minlength=num_classes * (num_classes + 1))
    return counts.view(num_classes, num_classes + 1)


def iou_from_confusion(conf: torch.Tensor | np.ndarray) -> tuple[np.ndarray, float]:
    """Per-class IoU [C] float64 (NaN where the class is in neither truth nor prediction)
    and their mean over the remaining classes (NaN if none)."""
    c = np.asarray(conf, np.float64)
    n = c.shape[0]
    tp = np.diag(c[:, :n])
    denom = c.sum(1) + c[:, :n].sum(0) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(denom > 0, tp / np.where(denom > 0, denom, 1), np.nan)
    valid = ~np.isnan(iou)
    return iou, float(iou[valid].mean()) if valid.any() else float("nan")
