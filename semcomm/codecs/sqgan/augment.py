"""Training augmentation for SQ-GAN: geometry, colour, and pasting small objects.

::

    x [B,3,H,W], s [B,H,W] ─► per image: affine (rotation, zoom-crop, flip) ─► colour jitter
                            ─► per batch: paste traffic lights / signs from other images

Image and map get the same geometry (bilinear for x, nearest for s; pixels from
outside the source image are black in x and void in s). Pasting copies connected
components of the paste classes from image j into image i at the same position
(where they are plausible: lights and signs are placed by the scene's geometry),
skipping components that would overlap objects of those classes already there;
this raises the share of the small, rate-hungry classes the loss weights most
(the public SQ-GAN code's "label enhancer"; REFERENCE.md Sec. 1). All randomness
comes from ``rng``.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.ndimage
import torch
import torch.nn.functional as F

from semcomm.codecs.sqgan.config import CLASS_NAMES, AugmentConfig
from semcomm.data.types import VOID


def augment_batch(x: torch.Tensor, s: torch.Tensor, cfg: AugmentConfig,
                  rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch; returns new tensors.

    Input
    -----
    x : [B, 3, H, W] float32 in [0, 1]
    s : [B, H, W] int64 trainIds (255 void)
    rng : numpy Generator (the only source of randomness)

    Output
    ------
    x : [B, 3, H, W] float32 in [0, 1]
    s : [B, H, W] int64
    """
    if x.dim() != 4 or x.shape[1] != 3 or s.shape != (x.shape[0], *x.shape[2:]):
        raise ValueError(f"x {tuple(x.shape)} must be [B, 3, H, W] and s {tuple(s.shape)} "
                         "[B, H, W] of the same size")
    theta = torch.stack([_affine(cfg, rng, x.shape[-2], x.shape[-1])
                         for _ in range(x.shape[0])])
    moved = (theta != _IDENTITY).flatten(1).any(dim=1)
    if bool(moved.any()):  # resample only the images whose geometry changes
        xw, sw = warp(x[moved], s[moved], theta[moved])
        x, s = x.clone(), s.clone()
        x[moved], s[moved] = xw, sw
    x = torch.stack([_jitter(img, cfg, rng) for img in x])
    return paste_objects(x, s, cfg, rng)


_IDENTITY = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _affine(cfg: AugmentConfig, rng: np.random.Generator, h: int, w: int) -> torch.Tensor:
    """2 x 3 output->input map in normalised coordinates (``F.affine_grid`` convention)."""
    angle = (math.radians(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg))
             if rng.random() < cfg.rotate_p else 0.0)
    zoom = rng.uniform(1.0, cfg.zoom_max) if rng.random() < cfg.zoom_p else 1.0
    flip = -1.0 if rng.random() < cfg.hflip_p else 1.0
    c, sn = math.cos(angle), math.sin(angle)
    # Rotation in pixel space, expressed in normalised coordinates (aspect w/h).
    a = np.array([[c, -sn * h / w], [sn * w / h, c]]) / zoom
    a[:, 0] *= flip
    slack = 1.0 - 1.0 / zoom
    t = rng.uniform(-slack, slack, size=2) if slack > 0 else np.zeros(2)
    return torch.tensor(np.concatenate([a, t[:, None]], axis=1), dtype=torch.float32)


def warp(x: torch.Tensor, s: torch.Tensor,
         theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply per-image affine maps theta [B, 2, 3]; outside pixels -> black / void."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    xw = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    inside = torch.ones_like(s, dtype=torch.float32)
    sw = F.grid_sample(torch.stack([s.float(), inside], dim=1), grid, mode="nearest",
                       padding_mode="zeros", align_corners=False)
    labels = torch.where(sw[:, 1] > 0.5, sw[:, 0].round().long(), torch.full_like(s, VOID))
    return xw.clamp(0.0, 1.0), labels


def _jitter(img: torch.Tensor, cfg: AugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """Brightness and saturation factors in U(1 - a, 1 + a), with probability jitter_p."""
    if rng.random() >= cfg.jitter_p:
        return img
    bright = rng.uniform(1.0 - cfg.brightness, 1.0 + cfg.brightness)
    sat = rng.uniform(1.0 - cfg.saturation, 1.0 + cfg.saturation)
    grey = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]).unsqueeze(0)  # ITU-R BT.601
    return ((grey + sat * (img - grey)) * bright).clamp(0.0, 1.0)


def _components(labels: np.ndarray, classes: list[int], min_pixels: int) -> list[np.ndarray]:
    """Boolean masks [H, W] of the connected components of ``classes`` in one map."""
    lab, n = scipy.ndimage.label(np.isin(labels, classes))
    masks = [lab == k for k in range(1, n + 1)]
    return [m for m in masks if int(m.sum()) >= min_pixels]


def paste_objects(x: torch.Tensor, s: torch.Tensor, cfg: AugmentConfig,
                  rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste components of ``cfg.paste_classes`` between the images of a batch.

    x [B, 3, H, W], s [B, H, W] -> new x, s (inputs are not modified).
    """
    classes = [CLASS_NAMES.index(c) for c in cfg.paste_classes]
    s_np = s.cpu().numpy()
    comps = [_components(s_np[j], classes, cfg.paste_min_pixels) for j in range(len(s_np))]
    x_out, s_out = x.clone(), s.clone()
    for i in range(len(s_np)):
        if rng.random() >= cfg.paste_p:
            continue
        pool = [(j, m) for j in range(len(s_np)) if j != i for m in comps[j]]
        if not pool:
            continue
        occupied = np.isin(s_np[i], classes)
        budget = int(rng.integers(1, cfg.paste_max + 1)) if cfg.paste_max > 0 else 0
        for k in rng.permutation(len(pool))[:budget]:
            j, mask = pool[int(k)]
            if (occupied & mask).any():
                continue
            occupied |= mask
            m = torch.from_numpy(mask).to(x.device)
            x_out[i][:, m] = x[j][:, m]
            s_out[i][m] = s[j][m]
    return x_out, s_out
