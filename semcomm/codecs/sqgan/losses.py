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
otherwise an LPIPS-style distance on the bundled segmenter's features (works offline).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from semcomm.codecs.layers import (
    PatchDiscriminator,
    adaptive_adversarial_weight,
    hinge_d_loss,
    hinge_g_loss,
)
from semcomm.codecs.sqgan.config import CLASS_NAMES, SEM_CHANNELS, TrainConfig, class_weight_vector
from semcomm.codecs.sqgan.model import BranchOutput


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


# --------------------------------------------------------------------------- perceptual


class FeatureDistance(nn.Module):
    """LPIPS-style distance on the features of a frozen network.

    Per layer: unit-normalise each position's feature vector over channels, take the
    squared difference summed over channels, average over positions; average over
    layers (LPIPS, Zhang et al. CVPR 2018, Eq. 1, with uniform channel weights).

    Parameters
    ----------
    extractor : callable
        images [B, 3, H, W] float in [0, 1] -> list of feature maps; must be
        differentiable with respect to the images and have frozen parameters.

    Input
    -----
    x, x_hat : [B, 3, H, W] float32 in [0, 1]

    Output
    ------
    [] float32 >= 0
    """

    def __init__(self, extractor: Callable[[torch.Tensor], Sequence[torch.Tensor]]) -> None:
        super().__init__()
        self.extractor = extractor

    def forward(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            feats_x = [f.detach() for f in self.extractor(x)]
        feats_y = self.extractor(x_hat)
        total = x_hat.new_zeros(())
        for fx, fy in zip(feats_x, feats_y, strict=True):
            total = total + (_unit(fx) - _unit(fy)).pow(2).sum(dim=1).mean()
        return total / max(len(feats_x), 1)


def _unit(f: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


class ModuleFeatures(nn.Module):
    """Outputs of named submodules of a frozen network, collected with forward hooks.

    ``ModuleFeatures(segnet, ["s2", "s4", "s8", "s16"])(x)`` runs ``segnet(x)`` and
    returns the four stage outputs. The network is put in eval mode and frozen.
    """

    def __init__(self, net: nn.Module, layers: Sequence[str]) -> None:
        super().__init__()
        names = dict(net.named_modules())
        missing = [n for n in layers if n not in names]
        if missing or not layers:
            raise ValueError(f"feature layers {missing or list(layers)} not found; available: "
                             f"{[n for n in names if n and '.' not in n]}")
        self.net = net.eval().requires_grad_(False)
        self.layers = tuple(layers)
        self._found: dict[str, torch.Tensor] = {}
        for name in self.layers:
            names[name].register_forward_hook(self._hook(name))

    def _hook(self, name: str) -> Callable[..., None]:
        def hook(_mod: nn.Module, _inp: object, out: torch.Tensor) -> None:
            self._found[name] = out
        return hook

    def train(self, mode: bool = True) -> ModuleFeatures:
        super().train(mode)
        self.net.eval()  # frozen: BatchNorm keeps its running statistics
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        self._found.clear()
        self.net(x)
        feats = [self._found[n] for n in self.layers]
        self._found.clear()
        return feats


#: VGG16 ``features`` layout (torchvision indices), "M" = max-pool.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
#: LPIPS taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (indices into ``features``).
_LPIPS_TAPS = (3, 8, 15, 22, 29)


class LPIPS(nn.Module):
    """LPIPS (Zhang et al. CVPR 2018) with the VGG16 backbone, from user weight files.

    Needs two files that cannot be downloaded here: torchvision's VGG16 ImageNet
    weights (keys ``features.<i>.weight|bias``) and LPIPS' linear heads v0.1
    (``vgg.pth``, keys ``lin<k>.model.1.weight``). Both load with ``weights_only``.

    Inputs are images in [0, 1]; they are mapped to [-1, 1], the range LPIPS was
    trained on, before LPIPS' own scaling layer. (The public SQ-GAN code fed
    ImageNet-normalised tensors, a different range than LPIPS expects.)

    Input
    -----
    x, x_hat : [B, 3, H, W] float32 in [0, 1]

    Output
    ------
    [] float32 >= 0, the batch mean of LPIPS distances
    """

    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self, vgg_path: str | Path, lin_path: str | Path) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in _VGG16:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, int(v), 3, padding=1), nn.ReLU()]
                c_in = int(v)
        self.features = nn.Sequential(*layers[:_LPIPS_TAPS[-1] + 1])
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in (64, 128, 256, 512, 512))
        # LPIPS' ScalingLayer constants (lpips/pretrained_networks, v0.1).
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self._load(Path(vgg_path), Path(lin_path))
        self.eval().requires_grad_(False)

    def _load(self, vgg_path: Path, lin_path: Path) -> None:
        for p in (vgg_path, lin_path):
            if not p.is_file():
                raise ValueError(f"LPIPS weight file {str(p)!r} does not exist")
        vgg = torch.load(vgg_path, map_location="cpu", weights_only=True)
        wanted = {k: v for k, v in vgg.items() if k.startswith("features.")
                  and int(k.split(".")[1]) <= _LPIPS_TAPS[-1]}
        self.load_state_dict(wanted, strict=False)
        missing = set(self.features.state_dict()) - {k[len("features."):] for k in wanted}
        lin = torch.load(lin_path, map_location="cpu", weights_only=True)
        lin_keys = [f"lin{k}.model.1.weight" for k in range(5)]
        if missing or any(k not in lin for k in lin_keys):
            raise ValueError(f"LPIPS weights incomplete: VGG misses {sorted(missing)[:4]}, "
                             f"lin file needs {lin_keys}")
        with torch.no_grad():
            for conv, key in zip(self.lins, lin_keys, strict=True):
                cast(nn.Conv2d, conv).weight.copy_(lin[key])

    def train(self, mode: bool = True) -> LPIPS:
        return super().train(False)

    def forward(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        fx, fy = self._taps(x), self._taps(x_hat)
        total = x.new_zeros(x.shape[0])
        for lin, a, b in zip(self.lins, fx, fy, strict=True):
            total = total + lin((_unit(a) - _unit(b)).pow(2)).mean(dim=(1, 2, 3))
        return total.mean()

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = ((2.0 * x - 1.0) - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in _LPIPS_TAPS:
                out.append(h)
        return out


def segmenter_perceptual(layers: Sequence[str]) -> FeatureDistance:
    """The offline perceptual term: feature distance on the bundled segmenter.

    Uses ``semcomm.segmentation.build_segmenter("bundled")``; the network module is the
    segmenter itself or its ``net``/``model``/``network`` attribute.
    """
    try:
        from semcomm.segmentation import build_segmenter
    except ImportError as err:
        raise ValueError("perceptual 'segmenter' needs semcomm.segmentation.build_segmenter; "
                         "use perceptual 'none' or 'lpips' meanwhile") from err
    seg = build_segmenter("bundled")
    net = seg if isinstance(seg, nn.Module) else next(
        (getattr(seg, a) for a in ("net", "model", "network")
         if isinstance(getattr(seg, a, None), nn.Module)), None)
    if net is None:
        raise ValueError(f"bundled segmenter {type(seg).__name__} exposes no nn.Module "
                         "(looked for .net, .model, .network)")
    return FeatureDistance(ModuleFeatures(net, layers))


def build_perceptual(kind: str, layers: Sequence[str] = ("s2", "s4", "s8", "s16"),
                     lpips_vgg: str | Path | None = None,
                     lpips_lin: str | Path | None = None) -> nn.Module | None:
    """``"segmenter"`` -> :func:`segmenter_perceptual`, ``"lpips"`` -> :class:`LPIPS`,
    ``"none"`` -> None."""
    if kind == "none":
        return None
    if kind == "lpips":
        if lpips_vgg is None or lpips_lin is None:
            raise ValueError("perceptual 'lpips' needs both weight files (--lpips-vgg, "
                             "--lpips-lin); none can be downloaded here")
        return LPIPS(lpips_vgg, lpips_lin)
    if kind == "segmenter":
        return segmenter_perceptual(layers)
    raise ValueError(f"perceptual {kind!r} not in ('segmenter', 'lpips', 'none')")


# --------------------------------------------------------------------------- stage losses


@dataclass(frozen=True)
class LossResult:
    """A loss to back-propagate and its scalar parts for the loss log."""

    loss: torch.Tensor
    logs: dict[str, float]


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
