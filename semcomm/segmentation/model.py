"""The bundled segmenter's network: a compact encoder-decoder for CPU inference.

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


@dataclass(frozen=True)
class SegNetConfig:
    """Architecture of :class:`SegNet` (stored inside the checkpoint).

    Attributes
    ----------
    widths : (c0, c1, c2, c3)
        Channels at strides 2, 4, 8 and 16.
    blocks8, blocks16 : int
        Residual blocks at stride 8 and at stride 16 (the latter dilated).
    num_classes : int
        Output channels (19 Cityscapes trainIds).
    """

    widths: tuple[int, int, int, int] = (16, 32, 64, 96)
    blocks8: int = 2
    blocks16: int = 3
    num_classes: int = NUM_CLASSES

    def __post_init__(self) -> None:
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
        known = {"widths", "blocks8", "blocks16", "num_classes"}
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
