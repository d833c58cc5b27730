"""ISC training objectives: rate-perception-distortion, per layer.

::

    generator:  L_base + w_enh L_enh + w_vq sum_q beta ||z_q - sg(e_q)||^2
      L_base = w_l1 |x - x_base|_1 + w_mse |x - x_base|^2 + w_p P(x, x_base)
               + lambda_b * hinge_G(D(x_base))                      (base: fully generated)
      L_enh  = w_l1 |x - x_hat|_1 + w_mse |x - x_hat|^2 + w_p P(x, x_hat)
               + lambda_e * hinge_G(D(x_hat))                       (x_hat at depth k)
    discriminator: hinge_D(D(x), D(sg(x_base)) and D(sg(x_hat)))    (one PatchGAN)

``lambda_b`` and ``lambda_e`` are VQGAN's adaptive weights at the generator's and the
residual decoder's last layer (scale ``adv_weight``, cap ``adv_max``; for the enhanced
image both times ``enh_adv_scale``, so the enhancement leans towards distortion and the
base image towards perception: the perception-distortion trade-off moves with the depth).
The perceptual term is SQ-GAN's (bundled segmenter features offline, LPIPS from user
files, or none). The rate is not in the loss: it is set by the architecture (map
factor, grids, codebooks) and by the depth k at coding time.
"""

from __future__ import annotations

import torch
from torch import nn

from semcomm.codecs.isc.config import TrainConfig
from semcomm.codecs.isc.model import ISCOutput
from semcomm.codecs.layers import (
    PatchDiscriminator,
    adaptive_adversarial_weight,
    hinge_d_loss,
    hinge_g_loss,
)
from semcomm.codecs.learned.perceptual import LossResult

__all__ = ["ISCLoss", "LossResult"]


class ISCLoss(nn.Module):
    """Generator and discriminator objectives.

    Parameters
    ----------
    train : TrainConfig
    perceptual : module (x, x_hat) -> scalar, or None

    Images are [B, 3, H, W] float32 in [0, 1]; the discriminator sees them in [-1, 1].
    """

    def __init__(self, train: TrainConfig, perceptual: nn.Module | None = None) -> None:
        super().__init__()
        self.cfg = train
        self.disc = PatchDiscriminator(3, train.disc_ndf, train.disc_layers, train.disc_norm)
        self.perceptual = perceptual

    def reconstruction(self, x: torch.Tensor, x_hat: torch.Tensor, tag: str
                       ) -> tuple[torch.Tensor, dict[str, float]]:
        """w_l1 L1 + w_mse MSE (+ w_p perceptual) and its parts (log keys prefixed)."""
        t = self.cfg
        l1 = (x - x_hat).abs().mean()
        mse = (x - x_hat).pow(2).mean()
        rec = t.l1_weight * l1 + t.mse_weight * mse
        logs = {f"{tag}_l1": l1.item(), f"{tag}_mse": mse.item()}
        if self.perceptual is not None and t.perceptual_weight > 0:
            p = self.perceptual(x, x_hat)
            rec = rec + t.perceptual_weight * p
            logs[f"{tag}_perceptual"] = p.item()
        return rec, logs

    def _adversarial(self, rec: torch.Tensor, x_fake: torch.Tensor, last_layer: torch.Tensor,
                     scale: float, tag: str) -> tuple[torch.Tensor, dict[str, float]]:
        g = hinge_g_loss(self.disc(2.0 * x_fake - 1.0))
        lam = adaptive_adversarial_weight(rec, g, last_layer, self.cfg.adv_weight * scale,
                                          self.cfg.adv_max * scale)
        return lam * g, {f"{tag}_g": g.item(), f"{tag}_adv_weight": lam.item()}

    def generator(self, x: torch.Tensor, out: ISCOutput, base_last: torch.Tensor,
                  enh_last: torch.Tensor, step: int) -> LossResult:
        """Generator objective at training step ``step`` (adversarial from disc_start)."""
        t = self.cfg
        rec_b, logs = self.reconstruction(x, out.x_base, "base")
        rec_e, logs_e = self.reconstruction(x, out.x_hat, "enh")
        logs.update(logs_e)
        loss = rec_b + t.enh_weight * rec_e + t.codebook_weight * out.vq_loss
        if step >= t.disc_start and t.adv_weight > 0:
            adv_b, lb = self._adversarial(rec_b, out.x_base, base_last, 1.0, "base")
            adv_e, le = self._adversarial(rec_e, out.x_hat, enh_last, t.enh_adv_scale, "enh")
            loss = loss + adv_b + t.enh_weight * adv_e
            logs.update(lb)
            logs.update(le)
        logs.update(vq=out.vq_loss.item(),
                    perplexity=float(sum(v.perplexity.item() for v in out.vq) / len(out.vq)),
                    restarts=float(sum(v.restarted for v in out.vq)), g_total=loss.item())
        return LossResult(loss, logs)

    def discriminator(self, x: torch.Tensor, out: ISCOutput) -> LossResult:
        """Hinge loss on real x against both detached fakes (base and enhanced)."""
        logits_real = self.disc(2.0 * x - 1.0)
        fakes = torch.cat([out.x_base.detach(), out.x_hat.detach()], dim=0)
        logits_fake = self.disc(2.0 * fakes - 1.0)
        d = hinge_d_loss(logits_real, logits_fake)
        return LossResult(d, {"d": d.item(), "logit_real": logits_real.mean().item(),
                              "logit_fake": logits_fake.mean().item()})
