"""AM-VQ training objectives (Sec. III-C, Eqs. 8-10).

::

    generator:     w_l1 |x - x_hat|_1 + w_p perceptual(x, x_hat)           (L_rec, LAD loss)
                 + lambda * BCE_G(D(x_hat))                                 (Eq. 9-10)
                 + w_vq * sum_s beta ||z_s - sg(e_s)||^2                    (commitment, Eq. 4)
    discriminator: BCE_D(D(x), D(x_hat))                                     (PatchGAN, Eq. 9)

``lambda`` is VQGAN's adaptive weight (gradient-norm balance at the decoder's last
layer, scaled by ``adv_weight`` and capped at ``adv_max``): the paper's lambda "that
governs the balance" of L_rec and L_GAN, whose value it does not give. The codebooks
move by EMA, so the codebook term of Eq. 4 is replaced by the EMA update (VQ-VAE-2).
The perceptual term reuses SQ-GAN's builders (segmenter features offline, or LPIPS-VGG
from user weight files; the paper names VGG features).
"""

from __future__ import annotations

import torch
from torch import nn

from semcomm.codecs.amvq.config import TrainConfig
from semcomm.codecs.amvq.model import AMVQOutput
from semcomm.codecs.layers import (
    PatchDiscriminator,
    adaptive_adversarial_weight,
    bce_d_loss,
    bce_g_loss,
)
from semcomm.codecs.learned.perceptual import LossResult

__all__ = ["AMVQLoss", "LossResult"]


class AMVQLoss(nn.Module):
    """Generator and discriminator objectives.

    Parameters
    ----------
    train : TrainConfig
    perceptual : module (x, x_hat) -> scalar, or None

    Images x, x_hat are [B, 3, H, W] float32 in [0, 1]; the discriminator sees them
    mapped to [-1, 1].
    """

    def __init__(self, train: TrainConfig, perceptual: nn.Module | None = None) -> None:
        super().__init__()
        self.cfg = train
        self.disc = PatchDiscriminator(3, train.disc_ndf, train.disc_layers, train.disc_norm)
        self.perceptual = perceptual

    def reconstruction(self, x: torch.Tensor, x_hat: torch.Tensor
                       ) -> tuple[torch.Tensor, dict[str, float]]:
        """L_rec = w_l1 * L1 (+ w_p * perceptual) and its parts."""
        l1 = (x - x_hat).abs().mean()
        rec = self.cfg.l1_weight * l1
        logs = {"l1": l1.item()}
        if self.perceptual is not None and self.cfg.perceptual_weight > 0:
            p = self.perceptual(x, x_hat)
            rec = rec + self.cfg.perceptual_weight * p
            logs["perceptual"] = p.item()
        return rec, logs

    def generator(self, x: torch.Tensor, out: AMVQOutput, last_layer: torch.Tensor,
                  step: int) -> LossResult:
        """Generator objective at training step ``step`` (adversarial from disc_start)."""
        rec, logs = self.reconstruction(x, out.x_hat)
        vq = out.vq_loss
        loss = rec + self.cfg.codebook_weight * vq
        if step >= self.cfg.disc_start:
            g = bce_g_loss(self.disc(2.0 * out.x_hat - 1.0))
            lam = adaptive_adversarial_weight(rec, g, last_layer, self.cfg.adv_weight,
                                              self.cfg.adv_max)
            loss = loss + lam * g
            logs.update(g=g.item(), adv_weight=lam.item())
        logs.update(rec=rec.item(), vq=vq.item(),
                    perplexity=float(sum(v.perplexity.item() for v in out.vq) / len(out.vq)),
                    restarts=float(sum(v.restarted for v in out.vq)),
                    unquantized=out.unquantized_fraction, g_total=loss.item())
        return LossResult(loss, logs)

    def discriminator(self, x: torch.Tensor, out: AMVQOutput) -> LossResult:
        """BCE of the discriminator on real x and the detached reconstruction."""
        logits_real = self.disc(2.0 * x - 1.0)
        logits_fake = self.disc(2.0 * out.x_hat.detach() - 1.0)
        d = bce_d_loss(logits_real, logits_fake)
        return LossResult(d, {"d": d.item(), "logit_real": logits_real.mean().item(),
                              "logit_fake": logits_fake.mean().item()})
