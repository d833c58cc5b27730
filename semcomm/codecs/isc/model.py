"""The coarse-to-fine image semantic coder (ISC; Huang et al., GLOBECOM 2021) as networks.

::

    x [B,3,H,W] in [0,1]            m [B,h_m,w_m] coded map (classes 0..19, f = map_factor)
      │                               │ one-hot [B,20,h_m,w_m]
      │ BaseEncoder (conv, f = latent_factor)          │
      ▼                               │
    z ─► EMA VQ ─► i_z [B,H/f,W/f] ─► z_q ─► SPADEGenerator(z_q, m) ─► x_base   (base layer)
                                                     │ (learned constant without a latent)
    r = x - sg(x_base) ─┐                            │
                        ▼                            ▼
    ResidualEncoder([r, x_base]) ─► y [B,d_e,H/f_e,W/f_e]
        residual VQ: e_1 = Q_1(y), e_k = Q_k(y - e_1 - ... - e_{k-1}), k = 1..S
        i_k = indices of stage k (one TokenGrid per stage, own packets)
    y_hat_k = e_1 + ... + e_k ─► ResidualDecoder(y_hat_k, x_base) ─► r_hat
    x_hat = x_base + r_hat   (depth k >= 1);   x_hat = x_base (depth 0)

Choices the abstract leaves open (all ours; docs/isc.md says why):

* The enhancement path sees ``sg(x_base)`` (stop-gradient): the base layer is trained by
  its own losses only, so the base image is the best *base-only* image, and the
  enhancement learns on top of it (coarse-to-fine, not one jointly tuned image).
* Scalable enhancement by residual VQ: stage k refines stage k-1's quantization error,
  so decoding any prefix of stages is meaningful and one model serves every depth. The
  decoder is shared by all depths (trained with the depth drawn per step).
* All quantizers are the shared :class:`EMAVectorQuantizer`; all blocks the shared
  ``ResBlock`` / ``SPADEGroupNorm`` (one implementation with SQ-GAN and AM-VQ).
* Outputs are unbounded; the codec clamps to [0, 1] when it rounds to uint8.

Glossary: ``x`` image, ``m`` coded semantic map, ``z`` base latent, ``i_z`` its indices,
``x_base`` base image, ``r`` residual, ``y`` enhancement latent, ``e_k`` stage-k code
vectors, ``i_k`` stage-k indices, ``x_hat`` reconstruction, ``S`` stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from semcomm.codecs.isc.config import ModelConfig
from semcomm.codecs.isc.semmap import MAP_CLASSES
from semcomm.codecs.layers import (
    Downsample,
    EMAVectorQuantizer,
    ResBlock,
    Upsample,
    VQOutput,
    group_norm,
)


def to_rows(z: torch.Tensor) -> torch.Tensor:
    """[B, d, h, w] -> [B*h*w, d] (raster order per image)."""
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])


def from_rows(rows: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Inverse of :func:`to_rows` for (B, h, w) -> [B, d, h, w], contiguous."""
    b, h, w = shape
    return rows.reshape(b, h, w, -1).permute(0, 3, 1, 2).contiguous()


def map_onehot(m: torch.Tensor) -> torch.Tensor:
    """Coded map [B, h, w] int64 in 0..19 -> one-hot [B, 20, h, w] float32."""
    return F.one_hot(m.long(), MAP_CLASSES).permute(0, 3, 1, 2).float().contiguous()


class BaseEncoder(nn.Module):
    """x [B, 3, H, W] -> z [B, d, H/f, W/f]: conv, then (stride-2 conv, ResBlock) per level."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        ch = cfg.enc_ch
        self.conv_in = nn.Conv2d(3, ch[0], 3, padding=1)
        self.down = nn.ModuleList()
        for i in range(cfg.latent_levels):
            self.down.append(nn.Sequential(Downsample(ch[i]), ResBlock(ch[i], ch[i + 1])))
        self.norm_out = group_norm(ch[-1])
        self.conv_out = nn.Conv2d(ch[-1], cfg.latent_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(2.0 * x - 1.0)
        for block in self.down:
            h = block(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class SPADEGenerator(nn.Module):
    """(z_q or a learned constant, map) -> x_base [B, 3, H, W], fully generated.

    One SPADE residual block per entry of ``gen_ch`` (coarsest first), doubling the
    resolution between them (nearest + conv); then nearest upsampling to full size when
    the last level is coarser, and GN, SiLU, conv3x3 -> 3 channels.

    Input
    -----
    z_q : [B, d, H/f, W/f] float32 or None (map-only base layer)
    s : [B, 20, h_m, w_m] float32 one-hot coded map
    size : (H, W)

    Output
    ------
    x_base : [B, 3, H, W] float32 (about [0, 1], unclamped)
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        ch = cfg.gen_ch
        self.latent = cfg.base_latent
        if cfg.base_latent:
            self.conv_in: nn.Module = nn.Conv2d(cfg.latent_dim, ch[0], 3, padding=1)
        else:
            self.const = nn.Parameter(torch.randn(1, ch[0], 1, 1) * 0.1)
        self.blocks = nn.ModuleList()
        self.ups = nn.ModuleList()
        for i, c in enumerate(ch):
            prev = ch[max(i - 1, 0)]
            self.blocks.append(ResBlock(prev, c, label_channels=MAP_CLASSES,
                                        spade_hidden=min(cfg.spade_hidden, max(c, 8)),
                                        spade_kernel=cfg.spade_kernel))
            if i < len(ch) - 1:
                self.ups.append(Upsample(c))
        self.factor = cfg.latent_factor
        self.norm_out = group_norm(ch[-1])
        self.conv_out = nn.Conv2d(ch[-1], 3, 3, padding=1)

    @property
    def last_layer(self) -> torch.Tensor:
        return self.conv_out.weight

    def forward(self, z_q: torch.Tensor | None, s: torch.Tensor,
                size: tuple[int, int]) -> torch.Tensor:
        grid = (size[0] // self.factor, size[1] // self.factor)
        if self.latent:
            if z_q is None:
                raise ValueError("this generator takes the base latent z_q (base_latent: true)")
            h = self.conv_in(z_q)
        else:
            h = self.const.expand(s.shape[0], -1, *grid)
        for i, block in enumerate(self.blocks):
            h = block(h, s)
            if i < len(self.ups):
                h = self.ups[i](h)
        h = F.silu(self.norm_out(h))
        if h.shape[-2:] != size:
            h = F.interpolate(h, size=size, mode="nearest")
        return self.conv_out(h) + 0.5


class ResidualEncoder(nn.Module):
    """[r, x_base] [B, 6, H, W] -> y [B, d_e, H/f_e, W/f_e]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        ch = cfg.enh_ch
        self.conv_in = nn.Conv2d(6, ch[0], 3, padding=1)
        self.down = nn.ModuleList(
            nn.Sequential(Downsample(ch[i]), ResBlock(ch[i], ch[i + 1]))
            for i in range(cfg.enh_levels))
        self.norm_out = group_norm(ch[-1])
        self.conv_out = nn.Conv2d(ch[-1], cfg.enh_dim, 1)

    def forward(self, r: torch.Tensor, x_base: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(torch.cat([4.0 * r, 2.0 * x_base - 1.0], dim=1))
        for block in self.down:
            h = block(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class ResidualDecoder(nn.Module):
    """(y_hat [B, d_e, H/f_e, W/f_e], x_base) -> r_hat [B, 3, H, W].

    conv, ResBlock, then per level nearest x2 + conv and a ResBlock (half resolution and
    coarser); the full-resolution head is cheap: nearest x2, concatenated with x_base,
    conv3x3 -> enh_ch[0], SiLU, conv3x3 -> 3.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        ch = cfg.enh_ch
        n = cfg.enh_levels
        self.conv_in = nn.Conv2d(cfg.enh_dim, ch[n], 3, padding=1)
        self.mid = ResBlock(ch[n])
        self.up = nn.ModuleList(
            nn.Sequential(Upsample(ch[i + 1]), ResBlock(ch[i + 1], ch[i]))
            for i in range(n - 1, 0, -1))
        self.norm_out = group_norm(ch[1])
        self.head = nn.Conv2d(ch[1] + 3, ch[0], 3, padding=1)
        self.conv_out = nn.Conv2d(ch[0], 3, 3, padding=1)

    @property
    def last_layer(self) -> torch.Tensor:
        return self.conv_out.weight

    def forward(self, y_hat: torch.Tensor, x_base: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(y_hat))
        for block in self.up:
            h = block(h)
        h = F.interpolate(F.silu(self.norm_out(h)), size=x_base.shape[-2:], mode="nearest")
        h = F.silu(self.head(torch.cat([h, 2.0 * x_base - 1.0], dim=1)))
        return self.conv_out(h) * 0.25


@dataclass(frozen=True)
class ISCOutput:
    """Training-mode pass (:meth:`ISC.forward`).

    Attributes
    ----------
    x_base : [B, 3, H, W] float32   base image
    x_hat : [B, 3, H, W] float32    enhanced image at ``depth``
    depth : int                     enhancement stages used
    vq : VQ outputs (base latent first when present, then stages 1..S)
    vq_loss : [] float32            sum of the commitment losses
    """

    x_base: torch.Tensor
    x_hat: torch.Tensor
    depth: int
    vq: tuple[VQOutput, ...]
    vq_loss: torch.Tensor


class ISC(nn.Module):
    """Base layer (map + optional latent -> SPADE image) and residual enhancement layer.

    Parameters
    ----------
    config : ModelConfig
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.base_encoder = BaseEncoder(c) if c.base_latent else None
        self.base_vq = EMAVectorQuantizer(c.latent_codes, c.latent_dim, c.vq_decay, c.vq_beta,
                                          c.vq_dead_threshold) if c.base_latent else None
        self.generator = SPADEGenerator(c)
        self.res_encoder = ResidualEncoder(c)
        self.stages = nn.ModuleList(
            EMAVectorQuantizer(c.enh_codes, c.enh_dim, c.vq_decay, c.vq_beta,
                               c.vq_dead_threshold) for _ in range(c.enh_stages))
        self.res_decoder = ResidualDecoder(c)

    @property
    def quantizers(self) -> list[EMAVectorQuantizer]:
        """The S enhancement stages' quantizers, stage 1 first (typed view)."""
        return [cast(EMAVectorQuantizer, q) for q in self.stages]

    # ------------------------------------------------------------------ geometry
    def grids(self, size: tuple[int, int]) -> dict[str, tuple[int, int]]:
        """Grid shapes for an (H, W) image: ``map``, ``latent``, ``enh``; ValueError unless
        H, W are positive multiples of every factor."""
        h, w = (int(v) for v in size)
        c = self.config
        f = c.multiple
        if h < f or w < f or h % f or w % f:
            raise ValueError(f"image size {h}x{w} must be a positive multiple of {f} "
                             "(map, latent and enhancement factors) in both dimensions")
        return {"map": (h // c.map_factor, w // c.map_factor),
                "latent": (h // c.latent_factor, w // c.latent_factor),
                "enh": (h // c.enh_factor, w // c.enh_factor)}

    # ------------------------------------------------------------------ base layer
    def latent_indices(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, 3, H, W] -> base latent indices [B, H/f, W/f] int64 (nearest codes)."""
        if self.base_encoder is None or self.base_vq is None:
            raise ValueError("this model has no base latent (base_latent: false)")
        z = self.base_encoder(x)
        b, _, h, w = z.shape
        return self.base_vq.nearest(to_rows(z)).reshape(b, h, w)

    def base_image(self, latent_indices: torch.Tensor | None, s: torch.Tensor,
                   size: tuple[int, int]) -> torch.Tensor:
        """(i_z [B, h, w] or None, one-hot map [B, 20, h_m, w_m]) -> x_base [B, 3, H, W]."""
        z_q = None
        if self.base_vq is not None:
            if latent_indices is None:
                raise ValueError("this model needs the base latent indices")
            z_q = self.base_vq.lookup(latent_indices).permute(0, 3, 1, 2).contiguous()
        return self.generator(z_q, s, size)

    # ------------------------------------------------------------ enhancement layer
    def stage_indices(self, x: torch.Tensor, x_base: torch.Tensor) -> torch.Tensor:
        """Residual VQ of the enhancement latent: [B, S, h_e, w_e] int64, stage 1 first."""
        y = self.res_encoder(x - x_base, x_base)
        b, _, h, w = y.shape
        rest = to_rows(y)
        out = []
        for vq in self.quantizers:
            idx = vq.nearest(rest)
            rest = rest - vq.lookup(idx)
            out.append(idx.reshape(b, h, w))
        return torch.stack(out, dim=1)

    def enhancement_latent(self, indices: torch.Tensor) -> torch.Tensor:
        """Stage indices [B, k, h_e, w_e] (first k stages) -> y_hat [B, d_e, h_e, w_e]."""
        k = indices.shape[1]
        if not 1 <= k <= len(self.stages):
            raise ValueError(f"{k} stages given, allowed 1..{len(self.stages)}")
        vqs = self.quantizers
        total = vqs[0].lookup(indices[:, 0])
        for j in range(1, k):
            total = total + vqs[j].lookup(indices[:, j])
        return total.permute(0, 3, 1, 2).contiguous()

    def enhance(self, x_base: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """x_base + r_hat from the first k stages' indices [B, k, h_e, w_e]."""
        return x_base + self.res_decoder(self.enhancement_latent(indices), x_base)

    # ------------------------------------------------------------------ training
    def forward(self, x: torch.Tensor, s: torch.Tensor, depth: int) -> ISCOutput:
        """Training pass: x [B, 3, H, W] in [0, 1], s one-hot map [B, 20, h_m, w_m],
        depth in 1..S. Every quantizer sees its input (EMA updates for all stages)."""
        if not 1 <= depth <= len(self.stages):
            raise ValueError(f"depth {depth} outside 1..{len(self.stages)}")
        size = (x.shape[-2], x.shape[-1])
        vq: list[VQOutput] = []
        z_q = None
        if self.base_encoder is not None and self.base_vq is not None:
            z = self.base_encoder(x)
            out = self.base_vq(to_rows(z))
            vq.append(out)
            z_q = from_rows(out.z_q, (z.shape[0], z.shape[2], z.shape[3]))
        x_base = self.generator(z_q, s, size)
        base = x_base.detach()
        y = self.res_encoder(x - base, base)
        b, _, h, w = y.shape
        rows = to_rows(y)
        rest, codes = rows, torch.zeros_like(rows)
        used = codes
        for j, stage in enumerate(self.stages):
            out = stage(rest)
            vq.append(out)
            e = out.z_q.detach()  # the codes before this step's EMA update
            codes = codes + e
            rest = rest - e
            if j + 1 == depth:
                used = codes
        y_hat = rows + (used - rows).detach()  # straight-through over the first depth stages
        x_hat = base + self.res_decoder(from_rows(y_hat, (b, h, w)), base)
        loss = torch.stack([v.loss for v in vq]).sum()
        return ISCOutput(x_base, x_hat, depth, tuple(vq), loss)


def count_parameters(model: ISC) -> dict[str, int]:
    """Parameters per part and in total (buffers such as codebooks not counted)."""
    parts = {"base_encoder": model.base_encoder, "generator": model.generator,
             "res_encoder": model.res_encoder, "res_decoder": model.res_decoder}
    out = {k: sum(p.numel() for p in m.parameters()) if m is not None else 0
           for k, m in parts.items()}
    out["total"] = sum(p.numel() for p in model.parameters())
    return out
