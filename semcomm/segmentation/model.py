"""The segmenters' networks: compact encoder-decoders for CPU inference.

Two architectures, chosen by :attr:`SegNetConfig.arch`: ``segnet`` (the bundled
segmenter, below) and ``judgenet`` (:class:`JudgeNet`, the independent judge of mIoU:
another design, trained separately with another seed, never used in a codec's loss).

::

    x [B,3,H,W] ─► stem s2 (c0) ─► s4 (c1) ─► s8 (c2, residual blocks)
                        │            │          ─► s16 (c3, dilated residual blocks
                        │            │                 + global pooling context)
                        │            │                        │ up x2
                        │            │          s8 + ◄────────┘   1x1 fuse
                        │            └──► s4 + ◄── up x2          1x1 fuse, 3x3
                        └───────────────► s2 + ◄── up x2          1x1 fuse, 3x3 ─► logits
                                                                   up x2 ─► [B,19,H,W]

The layout follows the "learning to downsample + context + skip fusion" recipe of
Fast-SCNN (Poudel et al., BMVC 2019) and the dilated context of DeepLab (Chen et al.
2017), scaled down so that a 128 x 256 image costs about 0.3 GMAC: the bundled model
must segment >= 50 images/s on a 2-core CPU. Widths are stored in the checkpoint as
:class:`SegNetConfig`, so loading needs no other file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from semcomm.data.types import NUM_CLASSES

#: Format tag of weights-only checkpoints (see semcomm.segmentation.train.export_weights).
FORMAT = "semcomm-segnet-v1"
#: Architectures a SegNetConfig can name.
ARCHS = ("segnet", "judgenet")


@dataclass(frozen=True)
class SegNetConfig:
    """Architecture of :class:`SegNet` (stored inside the checkpoint).

    Attributes
    ----------
    widths : (c0, c1, c2, c3)
        Channels at strides 2, 4, 8 and 16.
    blocks8, blocks16 : int
        Blocks at stride 8 and at stride 16 (the latter dilated): basic residual blocks
        for ``segnet``, inverted residual blocks for ``judgenet``.
    num_classes : int
        Output channels (19 Cityscapes trainIds).
    arch : ``"segnet"`` | ``"judgenet"``
        :class:`SegNet` or :class:`JudgeNet`.
    """

    widths: tuple[int, int, int, int] = (16, 32, 64, 96)
    blocks8: int = 2
    blocks16: int = 3
    num_classes: int = NUM_CLASSES
    arch: str = "segnet"

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch {self.arch!r} not one of {', '.join(ARCHS)}")
        if len(self.widths) != 4 or any(int(c) < 4 for c in self.widths):
            raise ValueError(f"widths {self.widths} must be 4 channel counts >= 4")
        if self.blocks8 < 0 or self.blocks16 < 0:
            raise ValueError(f"block counts ({self.blocks8}, {self.blocks16}) must be >= 0")
        if self.num_classes < 2:
            raise ValueError(f"num_classes {self.num_classes} must be >= 2")

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> SegNetConfig:
        known = {"widths", "blocks8", "blocks16", "num_classes", "arch"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(
                f"unknown SegNetConfig keys {sorted(unknown)}; allowed {sorted(known)}"
            )
        widths = tuple(int(c) for c in d.get("widths", cls.widths))  # type: ignore[attr-defined]
        return cls(
            widths=widths,  # type: ignore[arg-type]
            blocks8=int(d.get("blocks8", cls.blocks8)),  # type: ignore[call-overload]
            blocks16=int(d.get("blocks16", cls.blocks16)),  # type: ignore[call-overload]
            num_classes=int(d.get("num_classes", cls.num_classes)),  # type: ignore[call-overload]
            arch=str(d.get("arch", cls.arch)),
        )


def _cbr(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """Conv + BatchNorm + ReLU, 'same' padding."""
    pad = dilation * (k - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _ResBlock(nn.Module):
    """Basic residual block (two 3x3 convs), optionally dilated for context."""

    def __init__(self, c: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = _cbr(c, c, 3, 1, dilation)
        self.conv2 = nn.Sequential(
            nn.Conv2d(c, c, 3, 1, dilation, dilation=dilation, bias=False), nn.BatchNorm2d(c)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.conv2(self.conv1(x)))


class _Fuse(nn.Module):
    """Upsample the coarse path x2 (bilinear) and add a 1x1-projected skip, then 3x3."""

    def __init__(self, c_coarse: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.proj_coarse = nn.Conv2d(c_coarse, c_out, 1, bias=False)
        self.proj_skip = nn.Conv2d(c_skip, c_out, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.refine = _cbr(c_out, c_out, 3)

    def forward(self, coarse: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(coarse, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.refine(F.relu(self.bn(self.proj_coarse(up) + self.proj_skip(skip))))


class SegNet(nn.Module):
    """Compact semantic segmentation network.

    Input
    -----
    x : [B, 3, H, W] float32
        RGB in [0, 1]; H and W multiples of 16 give exact skip alignment (others work
        too: every skip is resized to its partner).

    Output
    ------
    logits : [B, num_classes, H, W] float32
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, cfg: SegNetConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or SegNetConfig()
        c0, c1, c2, c3 = self.cfg.widths
        self.register_buffer("mean", torch.tensor([0.45, 0.45, 0.45]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.25, 0.25, 0.25]).view(1, 3, 1, 1))
        self.s2 = _cbr(3, c0, 3, 2)
        self.s4 = nn.Sequential(_cbr(c0, c1, 3, 2), _cbr(c1, c1, 3))
        self.s8 = nn.Sequential(
            _cbr(c1, c2, 3, 2), *[_ResBlock(c2) for _ in range(self.cfg.blocks8)]
        )
        dil = [1, 2, 4, 8]
        self.s16 = nn.Sequential(
            _cbr(c2, c3, 3, 2),
            *[_ResBlock(c3, dil[i % len(dil)]) for i in range(self.cfg.blocks16)],
        )
        self.ctx = nn.Sequential(nn.Conv2d(c3, c3, 1, bias=False), nn.ReLU(inplace=True))
        self.up8 = _Fuse(c3, c2, c2)
        self.up4 = _Fuse(c2, c1, c1)
        self.up2 = _Fuse(c1, c0, c0)
        self.head = nn.Conv2d(c0, self.cfg.num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = (x - self.mean) / self.std
        f2 = self.s2(x)
        f4 = self.s4(f2)
        f8 = self.s8(f4)
        f16 = self.s16(f8)
        # Image-level context (ParseNet / PSPNet global pooling), added to every position.
        f16 = f16 + self.ctx(f16.mean(dim=(2, 3), keepdim=True))
        y = self.up2(self.up4(self.up8(f16, f8), f4), f2)
        return F.interpolate(self.head(y), size=(h, w), mode="bilinear", align_corners=False)


class _InvertedResidual(nn.Module):
    """MobileNetV2 block (Sandler et al., CVPR 2018): 1x1 expand, 3x3 depthwise
    (optionally dilated), 1x1 linear projection, identity shortcut when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1,
                 expand: int = 4) -> None:
        super().__init__()
        hidden = cin * expand
        self.body = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, dilation, dilation=dilation, groups=hidden,
                      bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )
        self.shortcut = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.shortcut else y


class _Aspp(nn.Module):
    """Atrous spatial pyramid pooling (DeepLabv3, Chen et al. 2017): parallel 1x1 and
    dilated 3x3 branches plus image pooling, concatenated and projected."""

    def __init__(self, cin: int, cout: int, rates: tuple[int, ...] = (2, 4, 6)) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [_cbr(cin, cout, 1)] + [_cbr(cin, cout, 3, 1, r) for r in rates])
        self.pool = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.ReLU(inplace=True))
        self.project = _cbr(cout * (len(rates) + 2), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(x.mean(dim=(2, 3), keepdim=True)).expand(-1, -1, *x.shape[-2:])
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], dim=1))


class JudgeNet(nn.Module):
    """The judge's network: inverted-residual encoder, ASPP, DeepLabv3+ decoder.

    ::

        x ─► stem s2 (c0) ─► IR s4 (c1) ─► IR s8 (c2) x blocks8 ─► IR s16 (c3, dilated)
                                 │                                   x blocks16 ─► ASPP
                                 │                                        │ up to s4
                                 └── 1x1 (c1/2) ──────── concat ◄─────────┘
                                                           └─► 2 x 3x3 ─► logits ─► up x4

    Deliberately unlike :class:`SegNet` (depthwise-separable inverted residuals instead
    of basic residual blocks, multi-rate ASPP instead of one pooled context, a single
    concatenating decoder at stride 4 instead of additive fusion at every stride), so
    that a codec tuned to please one network is not automatically liked by the other.

    Input / Output as :class:`SegNet`.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, cfg: SegNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c0, c1, c2, c3 = cfg.widths
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.stem = _cbr(3, c0, 3, 2)
        self.s4 = nn.Sequential(_InvertedResidual(c0, c1, 2), _InvertedResidual(c1, c1))
        self.s8 = nn.Sequential(_InvertedResidual(c1, c2, 2),
                                *[_InvertedResidual(c2, c2) for _ in range(cfg.blocks8)])
        self.s16 = nn.Sequential(
            _InvertedResidual(c2, c3, 2),
            *[_InvertedResidual(c3, c3, 1, 1 + i % 3) for i in range(cfg.blocks16)])
        self.aspp = _Aspp(c3, c3)
        self.low = _cbr(c1, c1 // 2, 1)
        self.decode = nn.Sequential(_cbr(c3 + c1 // 2, c2, 3), _cbr(c2, c2, 3))
        self.head = nn.Conv2d(c2, cfg.num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = (x - self.mean) / self.std
        f4 = self.s4(self.stem(x))
        ctx = self.aspp(self.s16(self.s8(f4)))
        ctx = F.interpolate(ctx, size=f4.shape[-2:], mode="bilinear", align_corners=False)
        y = self.decode(torch.cat([ctx, self.low(f4)], dim=1))
        return F.interpolate(self.head(y), size=(h, w), mode="bilinear", align_corners=False)


def build_net(cfg: SegNetConfig) -> SegNet | JudgeNet:
    """The network ``cfg.arch`` names."""
    return JudgeNet(cfg) if cfg.arch == "judgenet" else SegNet(cfg)
