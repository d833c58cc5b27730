"""SQ-GAN training objectives (SQ-GAN Figs. 4-5; REFERENCE.md Sec. 1).

::

    stage ssm (G_s):  CE_w(logits, s) + lambda * hinge_G(D_s(softmax logits)) + VQ
    stage img/all (G_x):
        L1_w(x, x_hat) + w_p * perceptual(x, x_hat)
        + lambda * hinge_G(D_x(blend(x_hat, x)))  + w_vq * VQ
    D: hinge loss on real vs. fake (the same blended fake for D_x)

``L1_w`` and ``CE_w`` weight each pixel by its class (20 weights for 19 classes + void,
one per one-hot channel). ``blend`` is the semantic-aware discriminator input: on
vegetation and sky the fake is pulled toward the real image by alpha <= 1, so the
discriminator does not demand exact foliage and clouds. ``lambda`` is VQGAN's
adaptive weight. The perceptual term is LPIPS when its weight files are given,
otherwise an LPIPS-style distance on the bundled segmenter's features (works offline);
both live in ``semcomm.codecs.learned.perceptual``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from semcomm.codecs.layers import (
    PatchDiscriminator,
    adaptive_adversarial_weight,
    hinge_d_loss,
    hinge_g_loss,
)
from semcomm.codecs.learned.perceptual import (
    LPIPS,
    FeatureDistance,
    LossResult,
    ModuleFeatures,
    build_perceptual,
)
from semcomm.codecs.sqgan.config import CLASS_NAMES, SEM_CHANNELS, TrainConfig, class_weight_vector
from semcomm.codecs.sqgan.model import BranchOutput

# The perceptual terms moved to the shared core; re-exported for existing callers.
__all__ = ["LPIPS", "FeatureDistance", "LossResult", "ModuleFeatures", "SQGANLoss",
           "build_perceptual", "semantic_aware_fake", "weighted_cross_entropy", "weighted_l1"]


def class_pixel_weights(onehot: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-pixel weight [B, 1, H, W] from a one-hot map [B, 20, H, W] and weights [20]."""
    if weights.shape != (onehot.shape[1],):
        raise ValueError(f"{weights.numel()} class weights for {onehot.shape[1]} channels")
    return (onehot * weights.view(1, -1, 1, 1)).sum(dim=1, keepdim=True)


def weighted_l1(x: torch.Tensor, x_hat: torch.Tensor, onehot: torch.Tensor,
                weights: torch.Tensor) -> torch.Tensor:
    """Class-weighted L1: mean over pixels and channels of w(s) |x - x_hat|.

    x, x_hat : [B, 3, H, W] in [0, 1]; onehot : [B, 20, H, W]; weights : [20].
    """
    return (class_pixel_weights(onehot, weights) * (x - x_hat).abs()).mean()


def weighted_cross_entropy(logits: torch.Tensor, onehot: torch.Tensor,
                           weights: torch.Tensor) -> torch.Tensor:
    """Class-weighted cross-entropy of logits [B, 20, H, W] against a one-hot map.

    Void is a class of its own (channel 19); the mean is weighted (PyTorch's
    convention: divided by the summed weights of the targets).
    """
    return F.cross_entropy(logits, onehot.argmax(dim=1), weight=weights)


def semantic_aware_fake(x: torch.Tensor, x_hat: torch.Tensor, onehot: torch.Tensor,
                        channels: Sequence[int], alpha: float) -> torch.Tensor:
    """x_hat pulled toward x by ``alpha`` on the given classes: x_hat + alpha M (x - x_hat).

    M is 1 on pixels of ``channels`` and 0 elsewhere, and alpha is in [0, 1], so the
    result always lies between x_hat and x. (The public code used M = 1.5 on
    vegetation, i.e. 1.275 x (x - x_hat): past the real image.)
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"blend alpha {alpha} outside [0, 1]")
    mask = onehot[:, list(channels)].sum(dim=1, keepdim=True).clamp(max=1.0)
    return x_hat + alpha * mask * (x - x_hat)


class SQGANLoss(nn.Module):
    """Generator and discriminator objectives of one training stage.

    Parameters
    ----------
    train : TrainConfig
    stage : {"ssm", "img", "all"}
        "ssm" trains G_s against a discriminator on class-probability maps (20 ch);
        "img" and "all" train G_x against a discriminator on images.
    perceptual : module (x, x_hat) -> scalar, or None
        Used by the image stages with weight ``train.perceptual_weight``.
    """

    l1_weights: torch.Tensor
    ce_weights: torch.Tensor

    def __init__(self, train: TrainConfig, stage: str, perceptual: nn.Module | None = None) -> None:
        super().__init__()
        if stage not in ("ssm", "img", "all"):
            raise ValueError(f"stage {stage!r} not in ('ssm', 'img', 'all')")
        self.cfg, self.stage = train, stage
        self.semantic = stage == "ssm"
        self.disc = PatchDiscriminator(SEM_CHANNELS if self.semantic else 3, train.disc_ndf,
                                       train.disc_layers, train.disc_norm)
        self.perceptual = perceptual
        self.register_buffer("l1_weights", torch.tensor(class_weight_vector(
            train.l1_class_weights)))
        self.register_buffer("ce_weights", torch.tensor(class_weight_vector(
            train.ce_class_weights)))
        self.blend_channels = [CLASS_NAMES.index(c) for c in train.blend_classes]

    def _real_fake(self, x: torch.Tensor, onehot: torch.Tensor,
                   out: BranchOutput) -> tuple[torch.Tensor, torch.Tensor]:
        """Discriminator inputs, centred: maps as 2p - 1, images as 2x - 1."""
        if self.semantic:
            return 2.0 * onehot - 1.0, 2.0 * torch.softmax(out.output, dim=1) - 1.0
        fake = semantic_aware_fake(x, out.output, onehot, self.blend_channels,
                                   self.cfg.blend_alpha)
        return 2.0 * x - 1.0, 2.0 * fake - 1.0

    def _reconstruction(self, x: torch.Tensor, onehot: torch.Tensor,
                        out: BranchOutput) -> tuple[torch.Tensor, dict[str, float]]:
        if self.semantic:
            ce = weighted_cross_entropy(out.output, onehot, self.ce_weights)
            return ce, {"ce": ce.item()}
        l1 = weighted_l1(x, out.output, onehot, self.l1_weights)
        logs = {"l1": l1.item()}
        rec = l1
        if self.perceptual is not None and self.cfg.perceptual_weight > 0:
            p = self.perceptual(x, out.output)
            rec = rec + self.cfg.perceptual_weight * p
            logs["perceptual"] = p.item()
        return rec, logs

    def generator(self, x: torch.Tensor, onehot: torch.Tensor, out: BranchOutput,
                  last_layer: torch.Tensor, step: int) -> LossResult:
        """Generator objective. x [B,3,H,W] in [0,1]; onehot [B,20,H,W] true map."""
        rec, logs = self._reconstruction(x, onehot, out)
        w_vq = self.cfg.codebook_weight_ssm if self.semantic else self.cfg.codebook_weight_img
        loss = rec + w_vq * out.encoding.vq.loss
        if step >= self.cfg.disc_start:
            _, fake = self._real_fake(x, onehot, out)
            g = hinge_g_loss(self.disc(fake))
            scale, cap = ((self.cfg.adv_weight_ssm, self.cfg.adv_max_ssm) if self.semantic
                          else (self.cfg.adv_weight_img, self.cfg.adv_max_img))
            lam = adaptive_adversarial_weight(rec, g, last_layer, scale, cap)
            loss = loss + lam * g
            logs.update(g=g.item(), adv_weight=lam.item())
        vq = out.encoding.vq
        logs.update(rec=rec.item(), vq=vq.loss.item(), perplexity=vq.perplexity.item(),
                    restarts=float(vq.restarted), g_total=loss.item())
        return LossResult(loss, logs)

    def discriminator(self, x: torch.Tensor, onehot: torch.Tensor,
                      out: BranchOutput) -> LossResult:
        """Hinge loss of the discriminator on the detached reconstruction."""
        real, fake = self._real_fake(x, onehot, out)
        logits_real, logits_fake = self.disc(real.detach()), self.disc(fake.detach())
        d = hinge_d_loss(logits_real, logits_fake)
        return LossResult(d, {"d": d.item(), "logit_real": logits_real.mean().item(),
                              "logit_fake": logits_fake.mean().item()})
