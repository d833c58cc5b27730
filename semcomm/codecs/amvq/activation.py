"""The activation map of AM-VQ (Sec. III-A, Eqs. 5-7): where would VQ distort most?

::

    F [B,C,h,w]  last feature layer (post-ReLU encoder block output, >= 0)
    z = head(F)  [B,d,h,w]  the latent (1x1 conv), e = nearest code vectors (constants)
    F' = detached leaf copy of F (requires grad)
    L_q = sum ||head(F') - e||^2                 quantization loss (Eq. 4, data term)
    g = dL_q/dF'  (torch.autograd.grad w.r.t. F' only: no weight gradient is created)
    alpha_c = mean_{h,w} g_c                     global average pooling (Eq. 5)
    A = ReLU(sum_c alpha_c F_c)                  Grad-CAM style map (Eq. 6)
    A <- A / max_{h,w} A   (per image; 0 everywhere when the max is 0)
    m = A > 1 - tau                              positions NOT quantized (Eq. 7, tau
                                                 on the axis of the paper's Fig. 7)

This is Grad-CAM (Selvaraju et al. 2017) with the quantization loss as the score:
non-negative feature maps weighted by their pooled gradients. ``head=None`` takes the
latent itself as the feature layer (F = z).

Normalisation: each image's map is divided by its own maximum, so A lies in [0, 1]
with max 1 (unless A is 0 everywhere, which the ReLU allows: then nothing is sent
unquantized at any tau) and the scale of L_q does not matter.

tau follows the paper's Fig. 7 (and its text: "when tau is set to 0 the VPSNR reaches
its minimum; as the threshold increases, more image detail is kept"): ``tau = 0`` sends
nothing unquantized (plain VQ: nothing exceeds 1) and raising tau sends more positions
unquantized, the nested sets {A > 1 - tau}. The literal "A > tau" of Eq. 7 as extracted
would make tau = 0 the *richest* setting, which contradicts Fig. 7; we follow Fig. 7, so
the issue's "plain VQ (tau = 0)" and "quality rises with tau" both hold.

The gradient is taken with autograd on a detached leaf copy of the features inside
``torch.enable_grad()`` (and outside inference mode), so it works in eval mode, under
``torch.no_grad()`` or ``torch.inference_mode()`` callers, and never creates or
accumulates ``.grad`` on model weights.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from semcomm.codecs.amvq.config import MAPS


def quantization_loss(z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """L_q = sum over the batch of ||z - e||^2 (e is treated as a constant).

    Summed, not averaged, over images so that each image's gradient depends on that
    image alone (batching does not change any map).
    """
    return (z - e.detach()).pow(2).sum()


def activation_map(f: torch.Tensor, e: torch.Tensor,
                   head: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   kind: str = "gradcam") -> torch.Tensor:
    """Normalised activation map A of one latent grid.

    ``kind="gradcam"`` is the paper's Eqs. 5-6: A = ReLU(sum_c alpha_c F_c) with the
    gradients pooled over positions. With the 1x1 head z = W F + b this is
    ReLU(2 r_mean . (z - b)), r_mean the image's mean residual z - e: a projection of
    the latent on one direction, which does not locate the large residuals (rank
    correlation with ||z - e||^2 about 0.1 on the shipped models). ``kind="layercam"``
    (LayerCAM, Jiang et al., IEEE TIP 2021) keeps the gradients per position,
    A = sum_c ReLU(g_c) F_c, so each position is weighted by its own residual
    (rank correlation about 0.7); benchmarks/amvq_selection.py compares the two.

    Input
    -----
    f : [B, C, h, w] float32
        The last feature layer (encoder features before the latent projection).
    e : [B, d, h, w] float32
        Nearest codebook vectors of the latent z = head(f).
    head : callable [B, C, h, w] -> [B, d, h, w], or None (z = f)
        The layer(s) from the features to the latent, e.g. the 1x1 conv.
    kind : "gradcam" (pooled gradients, the paper) or "layercam" (per-position).

    Output
    ------
    A : [B, h, w] float32 in [0, 1], detached; per image either max A = 1 or A = 0.
    """
    if f.dim() != 4 or e.dim() != 4 or f.shape[0] != e.shape[0] or f.shape[2:] != e.shape[2:]:
        raise ValueError(f"features {tuple(f.shape)} and codes {tuple(e.shape)} must be "
                         "[B, C, h, w] and [B, d, h, w] on the same grid")
    if kind not in MAPS:
        raise ValueError(f"activation map kind {kind!r} not in {MAPS}")
    with torch.inference_mode(False), torch.enable_grad():
        # clone(): an inference-mode tensor cannot become an autograd leaf.
        leaf = f.detach().clone().requires_grad_(True)
        z = leaf if head is None else head(leaf)
        (grad,) = torch.autograd.grad(quantization_loss(z, e.detach().clone()), leaf)
    if kind == "layercam":  # per-position weights (LayerCAM Eq. 3)
        cam = (torch.relu(grad) * f.detach()).sum(dim=1)  # [B, h, w], >= 0 as F >= 0
    else:
        alpha = grad.mean(dim=(2, 3), keepdim=True)  # [B, C, 1, 1], Eq. 5
        cam = torch.relu((alpha * f.detach()).sum(dim=1))  # [B, h, w], Eq. 6
    peak = cam.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, cam / peak.clamp_min(torch.finfo(cam.dtype).tiny),
                       torch.zeros_like(cam))


def unquantized_mask(a: torch.Tensor, tau: float) -> torch.Tensor:
    """m = A > 1 - tau: True where the vector is sent unquantized (scalar-quantized floats).

    The one place the threshold is applied (model, codec, trainer statistics).
    Input: a [B, h, w] (or [h, w]) in [0, 1]; tau in [0, 1]: 0 = plain VQ, 1 = every
    position with a positive map. Output: bool, the shape of ``a``.
    """
    return a > 1.0 - check_tau(tau)


def check_tau(tau: float) -> float:
    """tau as float; ValueError unless it is a number in [0, 1]."""
    if isinstance(tau, bool) or not isinstance(tau, int | float) or not 0.0 <= tau <= 1.0:
        raise ValueError(f"AM-VQ threshold tau={tau!r} must be a number in [0, 1]")
    return float(tau)
