"""Perceptual terms and the loss record shared by the learned codecs' trainers.

::

    build_perceptual("segmenter")  -> FeatureDistance(ModuleFeatures(bundled SegNet))
    build_perceptual("lpips", vgg, lin) -> LPIPS (VGG16 + LPIPS v0.1 heads, user files)
    build_perceptual("none")       -> None

A codec's generator loss adds ``perceptual_weight * perceptual(x, x_hat)``; every loss
returns a :class:`LossResult` (the tensor to back-propagate and its scalars for the log).
GAN pieces (PatchGAN, hinge/BCE losses, adaptive weight) are in ``semcomm.codecs.layers``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from torch import nn

__all__ = ["LPIPS", "FeatureDistance", "LossResult", "ModuleFeatures", "build_perceptual",
           "segmenter_perceptual"]


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




@dataclass(frozen=True)
class LossResult:
    """A loss to back-propagate and its scalar parts for the loss log."""

    loss: torch.Tensor
    logs: dict[str, float]
