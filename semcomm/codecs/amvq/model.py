"""AM-VQ: activation-map-based vector quantization (Sec. III; arXiv 2406.04740).

::

    x [B,3,H,W] ─► conv3x3 + ReLU ─► DownBlock x L (2 ResBlocks, strided conv, norm, ReLU)
                                          │ features of the last S levels
                                          ▼
                     z_s = conv1x1(features)   [B, d, H/f_s, W/f_s]   s = 0 (coarsest) .. S-1
                                          │
              VQ_s (EMA codebook, shared with the receiver) ─► indices, e_s = codebook[indices]
              activation map A_s in [0, 1]: Grad-CAM of ||z_s - e_s||^2 on the
              last feature layer F_s (z_s = conv1x1(F_s))  (activation.py, Eqs. 5-6)
              m_s = A_s > 1 - tau                          (Eq. 7; tau 0 = plain VQ)
              z_hat_s = m_s ? SQ(z_s) : e_s                unquantized vectors scalar-quantized
                                          │
    x_hat ◄── conv3x3 ◄── UpBlock x L (ResBlocks, nearest x2 + conv, norm, ReLU) ◄── conv3x3 + ReLU
                              ▲ z_hat_s (s >= 1) added through a 1x1 conv at its resolution

Multi-scale: with ``scales = S`` the S coarsest encoder levels each send a latent grid,
and the decoder receives each dequantized grid at the matching level ("the
reconstructed feature tensors are fed into the corresponding layers of the semantic
decoder", Sec. III-A). Each scale has its own codebook and its own activation map.

Departures from the paper, for reasons stated: the residual blocks are the shared
pre-activation ``ResBlock`` of ``layers.py`` (group norm + SiLU: batch-independent,
one implementation for all codecs); the norm after each strided / upsampling conv is
batch norm as in the paper (``norm: group`` switches it). The codebooks move by EMA
(VQ-VAE-2) instead of the codebook loss term; the commitment term stays.

Images are float32 in [0, 1] at the API; the networks work in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from semcomm.bitstream import ScalarQuantizer
from semcomm.codecs.amvq.activation import activation_map, check_tau, unquantized_mask
from semcomm.codecs.amvq.config import ModelConfig
from semcomm.codecs.layers import (
    Downsample,
    EMAVectorQuantizer,
    ResBlock,
    Upsample,
    VQOutput,
    group_norm,
)

#: Largest tensor handed to torch.quantile (its documented input limit is 2**24).
_QUANTILE_LIMIT = 2**24


def _norm(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "batch" else group_norm(channels)


def to_rows(z: torch.Tensor) -> torch.Tensor:
    """[B, d, h, w] -> [B*h*w, d] (raster order per image)."""
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])


def from_rows(rows: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_rows` for a tensor shaped like ``like`` [B, d, h, w]."""
    b, d, h, w = like.shape
    return rows.reshape(b, h, w, d).permute(0, 3, 1, 2)


# --------------------------------------------------------------------------- networks


class DownBlock(nn.Module):
    """Two (``n_res``) residual blocks, a stride-2 conv, norm, ReLU (Sec. III-B).

    Input [B, c_in, H, W]; output [B, c_out, H/2, W/2]. ``res_width`` ``"output"``: the
    residual blocks widen to c_out at H x W; ``"input"``: they keep c_in and the
    strided conv widens (``ModelConfig.res_width``).
    """

    def __init__(self, c_in: int, c_out: int, n_res: int, norm: str,
                 res_width: str = "output") -> None:
        super().__init__()
        c_res = c_in if res_width == "input" else c_out
        res = [ResBlock(c_in if i == 0 else c_res, c_res) for i in range(n_res)]
        self.res = nn.Sequential(*res)
        if res_width == "input":
            self.down = Downsample(c_in, c_out)
            self.proj: nn.Module = nn.Identity()
        else:
            self.down = Downsample(c_out if n_res else c_in)
            self.proj = nn.Identity() if n_res or c_in == c_out else nn.Conv2d(c_in, c_out, 1)
        self.norm = _norm(norm, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.proj(self.down(self.res(x)))))


class UpBlock(nn.Module):
    """Residual block(s), nearest x2 + conv, norm, ReLU (Sec. III-B).

    Input [B, c_in, H, W]; output [B, c_out, 2H, 2W].
    """

    def __init__(self, c_in: int, c_out: int, n_res: int, norm: str) -> None:
        super().__init__()
        res = [ResBlock(c_in if i == 0 else c_out, c_out) for i in range(max(n_res, 1))]
        self.res = nn.Sequential(*res)
        self.up = Upsample(c_out)
        self.norm = _norm(norm, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.up(self.res(x))))


class Encoder(nn.Module):
    """Semantic encoder: x [B,3,H,W] in [-1,1] -> [z_0, ..., z_{S-1}], coarsest first,
    z_s [B, d, H/f_s, W/f_s]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        widths = [cfg.ch * m for m in cfg.ch_mult]
        self.conv_in = nn.Conv2d(3, widths[0], 3, padding=1)
        self.blocks = nn.ModuleList(
            DownBlock(widths[i], widths[i + 1], cfg.num_res_blocks, cfg.norm, cfg.res_width)
            for i in range(len(widths) - 1))
        # Level of block i's output is i + 1; the sent levels are the last S, coarsest first.
        self.levels = [len(widths) - 1 - s for s in range(cfg.scales)]
        self.to_latent = nn.ModuleList(nn.Conv2d(widths[lv], cfg.code_dim, 1)
                                       for lv in self.levels)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x [B,3,H,W] in [-1,1] -> the last feature layer of every sent scale, coarsest
        first: F_s [B, C_s, H/f_s, W/f_s], non-negative (post-ReLU block outputs)."""
        h = F.relu(self.conv_in(x))
        feats = {}
        for i, block in enumerate(self.blocks):
            h = block(h)
            feats[i + 1] = h
        return [feats[lv] for lv in self.levels]

    def head(self, scale: int) -> nn.Module:
        """The 1x1 conv F_s -> z_s of scale ``scale``."""
        return self.to_latent[scale]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.head(s)(f) for s, f in enumerate(self.features(x))]


class Decoder(nn.Module):
    """Semantic decoder: [z_hat_0, ..., z_hat_{S-1}] (coarsest first) -> x_hat
    [B, 3, H, W] in about [-1, 1] (not clamped)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        widths = [cfg.ch * m for m in cfg.ch_mult]
        top = len(widths) - 1
        self.conv_in = nn.Conv2d(cfg.code_dim, widths[top], 3, padding=1)
        # Block j goes from level top - j to level top - j - 1.
        self.blocks = nn.ModuleList(
            UpBlock(widths[lv], widths[lv - 1], cfg.num_res_blocks, cfg.norm)
            for lv in range(top, 0, -1))
        # Scale s >= 1 enters after block s - 1 (its level is top - s).
        self.inject = nn.ModuleList(nn.Conv2d(cfg.code_dim, widths[top - s], 1)
                                    for s in range(1, cfg.scales))
        self.conv_out = nn.Conv2d(widths[0], 3, 3, padding=1)

    @property
    def last_layer(self) -> torch.Tensor:
        """Weight of the output conv (for the adaptive adversarial weight)."""
        return self.conv_out.weight

    def forward(self, z_hat: list[torch.Tensor]) -> torch.Tensor:
        if len(z_hat) != len(self.inject) + 1:
            raise ValueError(f"decoder needs {len(self.inject) + 1} latent grids, got "
                             f"{len(z_hat)}")
        h = F.relu(self.conv_in(z_hat[0]))
        for j, block in enumerate(self.blocks):
            h = block(h)
            if j + 1 < len(z_hat):
                h = h + self.inject[j](z_hat[j + 1])
        return self.conv_out(h)


# --------------------------------------------------------------------------- typed values


@dataclass(frozen=True)
class ScaleAnalysis:
    """What the transmitter computes once per image and scale (any tau).

    Attributes
    ----------
    z : [B, d, h, w] float32      encoder features (the last feature layer)
    indices : [B, h, w] int64     nearest code per position, in [0, K)
    a : [B, h, w] float32         activation map in [0, 1]
    """

    z: torch.Tensor
    indices: torch.Tensor
    a: torch.Tensor


@dataclass(frozen=True)
class AMVQOutput:
    """Training forward pass.

    Attributes
    ----------
    x_hat : [B, 3, H, W] float32, ~[0, 1]
    vq : per scale, the quantizer output (commitment loss, perplexity, restarts)
    masks : per scale [B, h, w] bool, True = sent unquantized
    maps : per scale [B, h, w] float32 activation maps
    """

    x_hat: torch.Tensor
    vq: list[VQOutput]
    masks: list[torch.Tensor]
    maps: list[torch.Tensor]

    @property
    def vq_loss(self) -> torch.Tensor:
        """Commitment loss summed over scales."""
        return torch.stack([v.loss for v in self.vq]).sum()

    @property
    def unquantized_fraction(self) -> float:
        """Share of latent positions sent unquantized, over all scales."""
        total = sum(m.numel() for m in self.masks)
        return float(sum(int(m.sum()) for m in self.masks)) / max(total, 1)


# --------------------------------------------------------------------------- model


class AMVQ(nn.Module):
    """Encoder, one EMA vector quantizer per scale, decoder, float-range statistics.

    Buffers
    -------
    float_range : [S, 2] float32
        [lo, hi] of the scalar quantizer of each scale's unquantized vectors, from
        training statistics (EMA of batch quantiles in training, recomputed over
        training images at export).
    range_updates : [] int64
        EMA updates of ``float_range`` so far (0 = not yet initialised).
    """

    float_range: torch.Tensor
    range_updates: torch.Tensor

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.quantizers = nn.ModuleList(
            EMAVectorQuantizer(cfg.codebook_size, cfg.code_dim, cfg.vq_decay, cfg.vq_beta,
                               cfg.vq_dead_threshold) for _ in range(cfg.scales))
        self.decoder = Decoder(cfg)
        self.register_buffer("float_range", torch.tensor([[-1.0, 1.0]] * cfg.scales))
        self.register_buffer("range_updates", torch.zeros((), dtype=torch.long))

    @property
    def downsampling(self) -> int:
        return self.config.downsampling

    def quantizer(self, scale: int) -> EMAVectorQuantizer:
        q = self.quantizers[scale]
        assert isinstance(q, EMAVectorQuantizer)
        return q

    def grid_shapes(self, shape: tuple[int, int]) -> list[tuple[int, int]]:
        """Image (H, W) -> latent grid (h, w) of every scale, coarsest first."""
        f = self.downsampling
        h, w = (int(v) for v in shape)
        if h < f or w < f or h % f or w % f:
            raise ValueError(f"image size {h}x{w} must be a positive multiple of the AM-VQ "
                             f"downsampling {f} in both dimensions")
        return [(h // s, w // s) for s in self.config.scale_factors]

    # ------------------------------------------------------------------ scalar quantizer
    def scalar_quantizer(self, scale: int, bits: int | None = None) -> ScalarQuantizer:
        """The uniform quantizer of scale ``scale``'s unquantized vectors (float range from
        the buffers, ``bits`` default ``config.float_bits``)."""
        lo, hi = (float(v) for v in self.float_range[scale].tolist())
        if not hi > lo:
            hi = lo + 1e-6
        return ScalarQuantizer(lo, hi, self.config.float_bits if bits is None else bits)

    @torch.no_grad()
    def update_float_range(self, zs: list[torch.Tensor], masks: list[torch.Tensor]) -> None:
        """EMA update of ``float_range`` from a batch: [q, 1 - q] quantiles of the values
        of unquantized positions (all positions when none is unquantized)."""
        new = torch.stack([_value_range(z, m, self.config.range_quantile)
                           for z, m in zip(zs, masks, strict=True)])
        if int(self.range_updates) == 0:
            self.float_range.copy_(new)
        else:
            mom = self.config.range_momentum
            self.float_range.mul_(mom).add_(new, alpha=1.0 - mom)
        self.range_updates.add_(1)

    # ------------------------------------------------------------------ transmitter
    @torch.no_grad()
    def analyze(self, x: torch.Tensor) -> list[ScaleAnalysis]:
        """x [B, 3, H, W] in [0, 1] -> per scale features, nearest indices, activation map.

        Call in eval mode for transmission (no EMA update). The maps need gradients: they
        are taken inside :func:`activation_map`, w.r.t. the features only.
        """
        self.grid_shapes((x.shape[-2], x.shape[-1]))
        out = []
        for s, f in enumerate(self.encoder.features(2.0 * x - 1.0)):
            head = self.encoder.head(s)
            z = head(f)
            q = self.quantizer(s)
            idx = q.nearest(to_rows(z))
            e = from_rows(q.lookup(idx), z)
            out.append(ScaleAnalysis(z, idx.reshape(z.shape[0], z.shape[2], z.shape[3]),
                                     activation_map(f, e, head, self.config.activation)))
        return out

    # ------------------------------------------------------------------ receiver
    def lookup(self, scale: int, indices: torch.Tensor) -> torch.Tensor:
        """Code vectors [B, d, h, w] of indices [B, h, w] in [0, K)."""
        return self.quantizer(scale).lookup(indices).permute(0, 3, 1, 2)

    def mean_code(self, scale: int, probs: np.ndarray | None = None) -> torch.Tensor:
        """Expected code vector [d] under index probabilities [K] (uniform when None)."""
        cb = self.quantizer(scale).codebook
        if probs is None:
            return cb.mean(dim=0)
        p = torch.as_tensor(np.asarray(probs, dtype=np.float64) / np.sum(probs))
        return (p.to(cb.dtype).to(cb.device)[:, None] * cb).sum(dim=0)

    @torch.no_grad()
    def decode(self, z_hat: list[torch.Tensor]) -> torch.Tensor:
        """Dequantized grids (coarsest first) -> x_hat [B, 3, H, W] float32 (~[0, 1])."""
        return (self.decoder(z_hat) + 1.0) / 2.0

    # ------------------------------------------------------------------ training
    def forward(self, x: torch.Tensor, tau: float, bits: int | None = None,
                commit_floats: bool = True) -> AMVQOutput:
        """Training pass at threshold ``tau``: straight-through VQ at quantized positions,
        straight-through scalar quantization at unquantized ones (the channel sees SQ).

        In training mode the codebooks (EMA) and ``float_range`` are updated. With
        ``commit_floats=False`` each scale's commitment loss counts only the positions
        quantized at this tau (``beta * sum ||z - sg(e)||^2 / (N d)`` over them, so plain
        VQ gives the usual mean); the unquantized ones are not pulled towards a code.
        """
        tau = check_tau(tau)
        feats = self.encoder.features(2.0 * x - 1.0)
        zs = [self.encoder.head(s)(f) for s, f in enumerate(feats)]
        vqs, masks, maps, z_hats = [], [], [], []
        for s, z in enumerate(zs):
            rows = to_rows(z)
            vq = self.quantizer(s)(rows)
            a = activation_map(feats[s], from_rows(vq.z_q, z).detach(), self.encoder.head(s),
                               self.config.activation)
            mask = unquantized_mask(a, tau)
            if not commit_floats:
                keep = (~mask).reshape(-1, 1).to(z.dtype)
                err = (rows - vq.z_q.detach()).pow(2) * keep
                vq = replace(vq, loss=self.quantizer(s).beta * err.mean())
            vqs.append(vq)
            maps.append(a)
            masks.append(mask)
        if self.training:
            self.update_float_range([z.detach() for z in zs],
                                    [a > 0 for a in maps])
        for s, z in enumerate(zs):
            z_q = from_rows(vqs[s].z_q, z)
            z_sq = z + (self._sq(z, s, bits) - z).detach()  # straight-through SQ
            z_hats.append(torch.where(masks[s][:, None], z_sq, z_q))
        x_hat = (self.decoder(z_hats) + 1.0) / 2.0
        return AMVQOutput(x_hat, vqs, masks, maps)

    def _sq(self, z: torch.Tensor, scale: int, bits: int | None) -> torch.Tensor:
        """Torch twin of ``ScalarQuantizer`` (training only; the codec uses NumPy)."""
        lo, hi = self.float_range[scale, 0], self.float_range[scale, 1]
        hi = torch.maximum(hi, lo + 1e-6)
        levels = (1 << (self.config.float_bits if bits is None else bits)) - 1
        step = (hi - lo) / levels
        return lo + torch.round((z.clamp(lo, hi) - lo) / step) * step


def _value_range(z: torch.Tensor, mask: torch.Tensor, q: float) -> torch.Tensor:
    """[lo, hi] = [q, 1 - q] quantiles of z [B, d, h, w] at mask [B, h, w] positions."""
    rows = to_rows(z)[mask.reshape(-1)] if bool(mask.any()) else to_rows(z)
    flat = rows.reshape(-1).float()
    if flat.numel() > _QUANTILE_LIMIT:
        flat = flat[:: -(-flat.numel() // _QUANTILE_LIMIT)]
    if q == 0.0:
        return torch.stack([flat.min(), flat.max()])
    return torch.quantile(flat, torch.tensor([q, 1.0 - q], dtype=flat.dtype,
                                             device=flat.device))


def count_parameters(model: AMVQ) -> dict[str, int]:
    """Trainable parameters of encoder and decoder, codebook entries, and the total."""
    enc = sum(p.numel() for p in model.encoder.parameters())
    dec = sum(p.numel() for p in model.decoder.parameters())
    cb = sum(model.quantizer(s).codebook.numel() for s in range(model.config.scales))
    return {"encoder": enc, "decoder": dec, "codebooks": cb, "total": enc + dec + cb}
