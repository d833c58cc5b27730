"""SQ-GAN: semantically masked VQ-GAN (Pezone, Barbarossa, Caire; arXiv 2502.09520).

::

    transmitter                                                        receiver
    s [B,H,W] ─► one-hot ─► E_s ─► SAMM_s(s, m_s) ─► VQ_s ─► indices_s, kept_s ──┐
        │                                                                          │
        └─► pos. emb. ─┐                                                           │
    x [B,3,H,W] ──────►+─► E_x ─► SAMM_x(s, m_x) ─► VQ_x ─► indices_x, kept_x ─┐  │
                                                                               │  │
       s_hat ◄── argmax ◄── D_s ◄── ADM_s (mask token where not kept / lost) ◄─┼──┘
         │                                                                     │
       x_hat ◄── D_x (SPADE on one-hot(s_hat)) ◄── ADM_x ◄─────────────────────┘

Both branches are :class:`MaskedVQBranch`. The SAMM scores each latent position from
the features and the semantic map, keeps the top ``floor(m h w)`` positions (m = kept
fraction, the rate knob) and quantizes only those; the ADM (de-masker) fills the others,
and positions lost on the channel the same way, with a learned mask token refined by
attention that down-weights unfilled keys.

Conventions: images are float32 in [0, 1] at the API (the networks work in [-1, 1]);
semantic maps are int64 trainIds in [0, 19) with 255 = void; one-hot maps have 20
channels, void last. Latent grid (h, w) = (H, W) / downsampling.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from semcomm.codecs.layers import (
    Downsample,
    EMAVectorQuantizer,
    ResBlock,
    SelfAttention,
    SPADEGroupNorm,
    Upsample,
    VQOutput,
    group_norm,
)
from semcomm.codecs.sqgan.config import SEM_CHANNELS, VOID_INDEX, BranchConfig, ModelConfig
from semcomm.data.types import NUM_CLASSES, VOID


def one_hot_labels(s: torch.Tensor) -> torch.Tensor:
    """trainIds [B, H, W] int64 (255 = void) -> one-hot [B, 20, H, W] float32, void last."""
    if s.dim() != 3 or s.dtype not in (torch.int64, torch.int32, torch.uint8):
        raise ValueError(f"semantic map must be [B, H, W] integer trainIds, got "
                         f"{tuple(s.shape)} {s.dtype}")
    idx = s.long()
    bad = (idx < 0) | ((idx >= NUM_CLASSES) & (idx != VOID))
    if bool(bad.any()):
        raise ValueError(f"semantic map has values {sorted(set(idx[bad].tolist()))[:5]}; "
                         f"allowed [0, {NUM_CLASSES}) and {VOID} (void)")
    idx = torch.where(idx == VOID, torch.full_like(idx, VOID_INDEX), idx)
    return F.one_hot(idx, SEM_CHANNELS).permute(0, 3, 1, 2).float()


def labels_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Class logits [B, 20, H, W] -> trainIds [B, H, W] int64 (argmax; void -> 255)."""
    idx = logits.argmax(dim=1)
    return torch.where(idx == VOID_INDEX, torch.full_like(idx, VOID), idx)


def kept_count(m: float, positions: int) -> int:
    """k = floor(m * positions) for a kept fraction m in [0, 1].

    A 1e-9 guard absorbs binary rounding (0.29 * 100 = 28.999999999999996 -> 29).
    """
    if not 0.0 <= m <= 1.0 or math.isnan(m):
        raise ValueError(f"kept fraction m={m} outside [0, 1]")
    return min(positions, math.floor(m * positions + 1e-9))


def analytic_bpp(kept: int, positions: int, num_pixels: int, bits_per_index: int = 10) -> float:
    """The paper's rate of one branch: (bits_per_index * kept + positions) / pixels.

    ``positions`` bits are the position mask (one bit per latent position). For a
    256 x 512 image, 512 positions, 10-bit indices: m = 0.05 -> 0.0058, m = 1 -> 0.043.
    """
    if not 0 <= kept <= positions or num_pixels < 1:
        raise ValueError(f"kept {kept} must be in [0, positions={positions}], "
                         f"num_pixels {num_pixels} >= 1")
    return (bits_per_index * kept + positions) / num_pixels


# --------------------------------------------------------------------------- networks


class SemanticPositionalEmbedding(nn.Module):
    """One-hot map -> a 1-channel map added to E_x's first features (SQ-GAN Fig. 2).

    3x3 conv to ``hidden``, ReLU, 1x1 conv to 1 channel. Input [B, 20, H, W];
    output [B, 1, H, W].
    """

    def __init__(self, label_channels: int = SEM_CHANNELS, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(label_channels, hidden, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(hidden, 1, 1))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.net(s)


def _attn_levels(cfg: BranchConfig, image_height: int) -> list[bool]:
    """Per level: does it have attention? (heights fixed at construction)."""
    top = image_height // cfg.patch
    return [top // 2 ** i in cfg.attn_resolutions for i in range(len(cfg.ch_mult))]


class _Level(nn.Module):
    """Residual blocks (each optionally followed by attention) of one resolution."""

    def __init__(self, c_in: int, c_out: int, n_blocks: int, attn: bool,
                 label_channels: int | None, spade_hidden: int, dropout: float,
                 spade_kernel: int = 3) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            ResBlock(c_in if i == 0 else c_out, c_out, label_channels, spade_hidden, dropout,
                     spade_kernel)
            for i in range(n_blocks))
        self.attns = nn.ModuleList(SelfAttention(c_out) for _ in range(n_blocks if attn else 0))

    def forward(self, h: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            h = block(h, s)
            if len(self.attns):
                h = self.attns[i](h)
        return h


class _Middle(nn.Module):
    """ResBlock - attention - ResBlock at the lowest resolution (VQGAN)."""

    def __init__(self, c: int, label_channels: int | None, spade_hidden: int,
                 dropout: float, spade_kernel: int = 3) -> None:
        super().__init__()
        self.block1 = ResBlock(c, c, label_channels, spade_hidden, dropout, spade_kernel)
        self.attn = SelfAttention(c)
        self.block2 = ResBlock(c, c, label_channels, spade_hidden, dropout, spade_kernel)

    def forward(self, h: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        return self.block2(self.attn(self.block1(h, s)), s)


class Encoder(nn.Module):
    """VQGAN encoder: [B, in_channels, H, W] -> z [B, z_channels, H/f, W/f],
    f = patch * 2^(L-1).

    conv_in (stride ``cfg.patch``) + GN, then per level ``num_res_blocks`` ResBlocks
    (+ attention where configured) and a stride-2 downsample (not after the last
    level), the middle Res-Attn-Res, GN, SiLU, conv_out. An optional additive map
    ``pos`` [B, 1, H/patch, W/patch] (the semantic positional embedding) is added to the
    first feature map.
    """

    def __init__(self, in_channels: int, cfg: BranchConfig, image_height: int) -> None:
        super().__init__()
        chans = [cfg.ch * m for m in cfg.ch_mult]
        attn = _attn_levels(cfg, image_height)
        self.conv_in = nn.Sequential(nn.Conv2d(in_channels, cfg.ch, 3, stride=cfg.patch,
                                               padding=1), group_norm(cfg.ch))
        self.levels = nn.ModuleList()
        self.downs = nn.ModuleList()
        c_in = cfg.ch
        for i, c in enumerate(chans):
            self.levels.append(_Level(c_in, c, cfg.num_res_blocks, attn[i], None, 0, cfg.dropout))
            c_in = c if cfg.num_res_blocks else c_in
            self.downs.append(Downsample(c_in) if i < len(chans) - 1 else nn.Identity())
        self.mid = _Middle(c_in, None, 0, cfg.dropout)
        self.norm_out = group_norm(c_in)
        self.conv_out = nn.Conv2d(c_in, cfg.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv_in(x)
        if pos is not None:
            h = h + pos
        for level, down in zip(self.levels, self.downs, strict=True):
            h = down(level(h))
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """VQGAN decoder: [B, z_channels, h, w] -> [B, out_channels, h f, w f].

    conv_in, middle Res-Attn-Res, per level (lowest first) ``num_res_blocks + 1``
    ResBlocks (+ attention where configured) and a nearest x2 upsample, then norm,
    SiLU, conv_out. With ``label_channels`` every normalisation is SPADE-GN
    conditioned on the label map ``s`` (SQ-GAN's D_x; the map is the decoded one at
    the receiver). The SPADE hidden width of a level is ``min(spade_hidden, level
    channels)``: the paper's 128 wherever its decoder is >= 128 wide (everywhere), and
    narrow where a compact decoder is narrow, since SPADE at full resolution otherwise
    costs several times the decoder's own convolutions. With ``cfg.patch`` 2 the first
    level runs at half resolution and conv_out feeds a x2 pixel shuffle.
    """

    def __init__(self, out_channels: int, cfg: BranchConfig, image_height: int,
                 label_channels: int | None = None) -> None:
        super().__init__()
        chans = [cfg.ch * m for m in cfg.ch_mult]
        attn = _attn_levels(cfg, image_height)
        hid, kern = cfg.spade_hidden, cfg.spade_kernel
        c_in = chans[-1]
        self.conv_in = nn.Conv2d(cfg.z_channels, c_in, 3, padding=1)
        self.mid = _Middle(c_in, label_channels, min(hid, c_in), cfg.dropout, kern)
        self.levels = nn.ModuleList()
        self.ups = nn.ModuleList()
        for i in reversed(range(len(chans))):
            self.levels.append(_Level(c_in, chans[i], cfg.num_res_blocks + 1, attn[i],
                                      label_channels, min(hid, chans[i]), cfg.dropout, kern))
            c_in = chans[i]
            self.ups.append(Upsample(c_in) if i > 0 else nn.Identity())
        self.norm_out: nn.Module = (SPADEGroupNorm(c_in, label_channels, min(hid, c_in), kern)
                                    if label_channels else group_norm(c_in))
        self.conditional = label_channels is not None
        self.conv_out = nn.Conv2d(c_in, out_channels * cfg.patch ** 2, 3, padding=1)
        self.shuffle: nn.Module = (nn.PixelShuffle(cfg.patch) if cfg.patch > 1
                                   else nn.Identity())

    @property
    def last_layer(self) -> torch.Tensor:
        """Weight of the output conv (for the adaptive adversarial weight)."""
        return self.conv_out.weight

    def forward(self, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        h = self.mid(self.conv_in(z), s)
        for level, up in zip(self.levels, self.ups, strict=True):
            h = up(level(h, s))
        h = self.norm_out(h, s) if self.conditional else self.norm_out(h)
        return self.shuffle(self.conv_out(F.silu(h)))


@dataclass(frozen=True)
class SAMMOutput:
    """Kept features of :class:`SAMM`.

    Attributes
    ----------
    features : [B, k, codebook_dim] float32
        Projected kept vectors, to be quantized; ordered like ``positions``.
    positions : [B, k] int64
        Flat positions (row-major over the h x w grid) of the kept vectors, ascending.
    kept : [B, h, w] bool
        The position mask.
    scores : [B, h*w] float32 in (0, 1)
        Relevance score of every position.
    """

    features: torch.Tensor
    positions: torch.Tensor
    kept: torch.Tensor
    scores: torch.Tensor


class SAMM(nn.Module):
    """Semantic-conditioned adaptive masking module (SQ-GAN Fig. 3).

    Score net: SPADE-GN(s) -> 3x3 conv -> ReLU -> SPADE-GN(s) -> 1x1 conv -> sigmoid.
    The top ``k = floor(m h w)`` positions are kept; their features are layer-normed,
    multiplied by their score (the only gradient path into the score net) and
    linearly projected to the code dimension.

    Input
    -----
    z : [B, z_channels, h, w] float32
    s : [B, 20, H, W] float32 one-hot map (resized inside the SPADE norms)
    m : float in [0, 1]

    Output
    ------
    :class:`SAMMOutput`
    """

    def __init__(self, z_channels: int, codebook_dim: int, label_channels: int,
                 spade_hidden: int, spade_kernel: int = 3) -> None:
        super().__init__()
        self.norm1 = SPADEGroupNorm(z_channels, label_channels, spade_hidden, spade_kernel)
        self.conv1 = nn.Conv2d(z_channels, z_channels, 3, padding=1)
        self.norm2 = SPADEGroupNorm(z_channels, label_channels, spade_hidden, spade_kernel)
        self.conv2 = nn.Conv2d(z_channels, 1, 1)
        self.feature_norm = nn.LayerNorm(z_channels, elementwise_affine=False)
        self.project = nn.Linear(z_channels, codebook_dim, bias=False)

    def score(self, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Relevance scores [B, h*w] in (0, 1)."""
        h = F.relu(self.conv1(self.norm1(z, s)))
        return torch.sigmoid(self.conv2(self.norm2(h, s))).flatten(1)

    def forward(self, z: torch.Tensor, s: torch.Tensor, m: float,
                select: torch.Tensor | None = None) -> SAMMOutput:
        """``select`` [B, k] int64 (k = floor(m h w)): keep these flat positions instead
        of the top-k scores (the uniform-masking ablation, benchmarks/sqgan_samm_ablation.py);
        the kept features are still scaled by their scores."""
        b, c, h, w = z.shape
        scores = self.score(z, s)
        k = kept_count(m, h * w)
        if select is None:
            # Stable sort: equal scores keep raster order, so the choice is deterministic.
            select = torch.sort(scores.detach(), dim=1, descending=True, stable=True).indices
            select = select[:, :k]
        elif select.shape != (b, k) or select.dtype != torch.long:
            raise ValueError(f"select must be int64 [{b}, {k}] (k = floor(m h w)), got "
                             f"{select.dtype} {tuple(select.shape)}")
        # Raster order of the kept positions: the position mask alone then tells the
        # receiver where each index goes (the public code emitted indices in score
        # order, which a position mask cannot describe).
        positions = select.sort(dim=1).values
        feats = self.feature_norm(z.flatten(2).transpose(1, 2))  # [B, h*w, c]
        feats = feats.gather(1, positions.unsqueeze(-1).expand(-1, -1, c))
        feats = feats * scores.gather(1, positions).unsqueeze(-1)
        kept = torch.zeros(b, h * w, dtype=torch.bool, device=z.device)
        kept.scatter_(1, positions, True)
        return SAMMOutput(self.project(feats), positions, kept.view(b, h, w), scores)


class Demasker(nn.Module):
    """Adaptive de-masker (ADM): fills the positions that carry no code vector.

    Unfilled positions (not kept by the SAMM, or lost on the channel: the same
    thing to this module) get a learned mask token; then 1x1 projection, 3x3 conv,
    ``n_layers`` x (ResBlock, attention in which unfilled keys start with weight
    ``mask_weight`` and the weights are square-rooted after each layer, so later
    layers trust the in-filled positions more; MQ-VAE, Huang et al. CVPR 2023), and a
    final ResBlock.

    Input
    -----
    grid : [B, codebook_dim, h, w] float32 (values at unfilled positions are ignored)
    present : [B, h, w] bool

    Output
    ------
    [B, z_channels, h, w] float32
    """

    def __init__(self, codebook_dim: int, z_channels: int, n_layers: int,
                 mask_weight: float = 0.02) -> None:
        super().__init__()
        if not 0.0 < mask_weight <= 1.0:
            raise ValueError(f"mask_weight {mask_weight} outside (0, 1]")
        self.mask_weight = mask_weight
        bound = 1.0 / codebook_dim
        self.mask_token = nn.Parameter(torch.empty(codebook_dim).uniform_(-bound, bound))
        self.post_projection = nn.Conv2d(codebook_dim, z_channels, 1)
        self.conv_in = nn.Conv2d(z_channels, z_channels, 3, padding=1)
        self.blocks = nn.ModuleList(ResBlock(z_channels) for _ in range(n_layers))
        self.attns = nn.ModuleList(SelfAttention(z_channels) for _ in range(n_layers))
        self.last = ResBlock(z_channels)

    def forward(self, grid: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        token = self.mask_token.view(1, -1, 1, 1).to(grid.dtype)
        h = torch.where(present.unsqueeze(1), grid, token)
        h = self.conv_in(self.post_projection(h))
        weight = torch.where(present.flatten(1), 1.0, self.mask_weight).to(h.dtype)
        for block, attn in zip(self.blocks, self.attns, strict=True):
            h = attn(block(h), weight)
            weight = weight.sqrt()
        return self.last(h)


# --------------------------------------------------------------------------- branches


@dataclass(frozen=True)
class BranchEncoding:
    """Transmitter side of one branch for a batch.

    Attributes
    ----------
    z_q : [B, k, codebook_dim] float32 (straight-through in training)
    indices : [B, k] int64 in [0, K), ordered like ``positions``
    positions : [B, k] int64, ascending raster positions
    kept : [B, h, w] bool
    scores : [B, h*w] float32
    vq : VQOutput (commitment loss, perplexity, restarts)
    """

    z_q: torch.Tensor
    indices: torch.Tensor
    positions: torch.Tensor
    kept: torch.Tensor
    scores: torch.Tensor
    vq: VQOutput


class MaskedVQBranch(nn.Module):
    """One masked VQ-GAN: encoder, SAMM, EMA VQ, de-masker, decoder.

    Parameters
    ----------
    cfg : BranchConfig
    in_channels, out_channels : int
        3 and 3 for G_x; 20 and 20 (one-hot in, class logits out) for G_s.
    image_height : int
        Height at which ``cfg.attn_resolutions`` are evaluated.
    spade_decoder : bool
        Decoder normalisations conditioned on the map (G_x).
    pos_embed_hidden : int or None
        Add the semantic positional embedding to the encoder (G_x).
    """

    def __init__(self, cfg: BranchConfig, in_channels: int, out_channels: int,
                 image_height: int, spade_decoder: bool, pos_embed_hidden: int | None) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(in_channels, cfg, image_height)
        self.pos_embed = (SemanticPositionalEmbedding(SEM_CHANNELS, pos_embed_hidden)
                          if pos_embed_hidden else None)
        self.samm = SAMM(cfg.z_channels, cfg.codebook_dim, SEM_CHANNELS,
                         min(cfg.spade_hidden, cfg.z_channels), cfg.spade_kernel)
        self.quantizer = EMAVectorQuantizer(cfg.codebook_size, cfg.codebook_dim, cfg.vq_decay,
                                            cfg.vq_beta, cfg.vq_dead_threshold)
        self.demasker = Demasker(cfg.codebook_dim, cfg.z_channels, cfg.demasker_layers,
                                 cfg.mask_weight)
        self.decoder = Decoder(out_channels, cfg, image_height,
                               SEM_CHANNELS if spade_decoder else None)

    def encode(self, inp: torch.Tensor, s_onehot: torch.Tensor, m: float,
               select: torch.Tensor | None = None) -> BranchEncoding:
        """inp [B, C_in, H, W], s_onehot [B, 20, H, W], m in [0, 1] -> BranchEncoding
        (``select``: kept positions instead of SAMM's choice, see :meth:`SAMM.forward`)."""
        pos = None
        if self.pos_embed is not None:  # at the first level's resolution
            p = self.cfg.patch
            pos = self.pos_embed(F.avg_pool2d(s_onehot, p) if p > 1 else s_onehot)
        z = self.encoder(inp, pos)
        samm = self.samm(z, s_onehot, m, select)
        b, k, d = samm.features.shape
        vq = self.quantizer(samm.features.reshape(b * k, d))
        return BranchEncoding(vq.z_q.reshape(b, k, d), vq.indices.reshape(b, k),
                              samm.positions, samm.kept, samm.scores, vq)

    def decode_vectors(self, z_q: torch.Tensor, positions: torch.Tensor, present: torch.Tensor,
                       s_cond: torch.Tensor | None = None) -> torch.Tensor:
        """Scatter z_q [B, k, d] to ``positions`` [B, k]; ADM on ``present`` [B, h, w]; decode."""
        b, h, w = present.shape
        d = z_q.shape[-1]
        flat = z_q.new_zeros(b, h * w, d).scatter(1, positions.unsqueeze(-1).expand(-1, -1, d),
                                                  z_q)
        return self._decode_grid(flat.view(b, h, w, d), present, s_cond)

    def decode_indices(self, indices: torch.Tensor, present: torch.Tensor,
                       s_cond: torch.Tensor | None = None) -> torch.Tensor:
        """Code indices [B, h, w] (used only where ``present``) -> decoder output."""
        safe = torch.where(present, indices, torch.zeros_like(indices))
        return self._decode_grid(self.quantizer.lookup(safe), present, s_cond)

    def _decode_grid(self, grid: torch.Tensor, present: torch.Tensor,
                     s_cond: torch.Tensor | None) -> torch.Tensor:
        # One memory layout for both decode paths, so that they agree bit for bit.
        grid = grid.permute(0, 3, 1, 2).contiguous()
        return self.decoder(self.demasker(grid, present), s_cond)


# --------------------------------------------------------------------------- SQ-GAN


@dataclass(frozen=True)
class BranchTokens:
    """What one branch puts on the link, per image of a batch.

    Attributes
    ----------
    indices : [B, h, w] int64 in [0, K)
        Code index per position; meaningful only where ``kept`` (0 elsewhere).
    kept : [B, h, w] bool
        Position mask; exactly ``floor(m h w)`` True per image. In raster order the
        kept indices are ``indices[b][kept[b]]``.
    """

    indices: torch.Tensor
    kept: torch.Tensor

    def sequence(self, b: int) -> torch.Tensor:
        """Kept indices of image ``b`` in raster order: [n_kept] int64."""
        return self.indices[b][self.kept[b]]

    @classmethod
    def from_sequences(cls, kept: torch.Tensor,
                       sequences: Sequence[torch.Tensor]) -> BranchTokens:
        """Inverse of :meth:`sequence`: position masks [B, h, w] bool plus each image's
        kept indices in raster order ([n_b] int64, n_b = kept[b].sum()) -> tokens."""
        if kept.dim() != 3 or kept.dtype != torch.bool or len(sequences) != kept.shape[0]:
            raise ValueError(f"kept must be bool [B, h, w] with B = {len(sequences)} "
                             f"sequences, got {tuple(kept.shape)} {kept.dtype}")
        indices = torch.zeros(kept.shape, dtype=torch.long, device=kept.device)
        for b, seq in enumerate(sequences):
            n = int(kept[b].sum())
            if seq.shape != (n,):
                raise ValueError(f"image {b}: {tuple(seq.shape)} indices for {n} kept positions")
            indices[b][kept[b]] = seq.to(device=kept.device, dtype=torch.long)
        return cls(indices, kept)


@dataclass(frozen=True)
class SQGANTokens:
    """Tokens of both branches: ``image`` (G_x) and ``semantic`` (G_s)."""

    image: BranchTokens
    semantic: BranchTokens


@dataclass(frozen=True)
class SQGANDecoded:
    """Receiver output.

    Attributes
    ----------
    x_hat : [B, 3, H, W] float32, approximately in [0, 1] (not clamped)
    s_logits : [B, 20, H, W] float32
    s_hat : [B, H, W] int64 trainIds, 255 = void
    """

    x_hat: torch.Tensor
    s_logits: torch.Tensor
    s_hat: torch.Tensor


@dataclass(frozen=True)
class BranchOutput:
    """Training-time output of one branch: decoder ``output`` plus its encoding.

    ``output`` is x_hat [B, 3, H, W] in [0, 1] units for G_x, class logits
    [B, 20, H, W] for G_s.
    """

    output: torch.Tensor
    encoding: BranchEncoding


@dataclass(frozen=True)
class SQGANOutput:
    """``forward`` result; a branch not run by the stage is None."""

    image: BranchOutput | None
    semantic: BranchOutput | None


STAGES = ("ssm", "img", "all")


class SQGAN(nn.Module):
    """Both branches of SQ-GAN and the token-level transmitter/receiver.

    Parameters
    ----------
    config : ModelConfig
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        height = config.image_size[0]
        self.semantic = MaskedVQBranch(config.semantic, SEM_CHANNELS, SEM_CHANNELS, height,
                                       spade_decoder=False, pos_embed_hidden=None)
        self.image = MaskedVQBranch(config.image, 3, 3, height, spade_decoder=True,
                                    pos_embed_hidden=config.pos_embed_hidden)

    @property
    def downsampling(self) -> int:
        return self.config.image.downsampling

    # ----------------------------------------------------------------- training paths

    def forward_semantic(self, s: torch.Tensor, m_s: float) -> BranchOutput:
        """G_s: trainIds [B, H, W] -> class logits [B, 20, H, W] and encoding."""
        onehot = one_hot_labels(self._check_map(s))
        enc = self.semantic.encode(onehot, onehot, m_s)
        logits = self.semantic.decode_vectors(enc.z_q, enc.positions, enc.kept)
        return BranchOutput(logits, enc)

    def forward_image(self, x: torch.Tensor, s: torch.Tensor, m_x: float,
                      s_dec: torch.Tensor | None = None) -> BranchOutput:
        """G_x: x [B, 3, H, W] in [0, 1], map s -> x_hat.

        The encoder side is conditioned on the true map ``s``; the decoder on
        ``s_dec`` (trainIds [B, H, W], the receiver's decoded map), or on ``s`` when
        None (stage 2, "img").
        """
        onehot = one_hot_labels(self._check_map(s))
        cond = onehot if s_dec is None else one_hot_labels(self._check_map(s_dec))
        enc = self.image.encode(2.0 * self._check_image(x, s) - 1.0, onehot, m_x)
        out = self.image.decode_vectors(enc.z_q, enc.positions, enc.kept, cond)
        return BranchOutput((out + 1.0) * 0.5, enc)

    def forward(self, x: torch.Tensor, s: torch.Tensor, m_x: float, m_s: float,
                stage: str = "all") -> SQGANOutput:
        """Run the branches of a training ``stage``.

        ``"ssm"``: G_s only. ``"img"``: G_x with its decoder on the true map.
        ``"all"``: G_s, then G_x with its decoder on G_s's decoded map (the receiver).
        """
        if stage not in STAGES:
            raise ValueError(f"stage {stage!r} not in {STAGES}")
        sem = self.forward_semantic(s, m_s) if stage in ("ssm", "all") else None
        img = None
        if stage == "img":
            img = self.forward_image(x, s, m_x)
        elif stage == "all" and sem is not None:
            img = self.forward_image(x, s, m_x, labels_from_logits(sem.output))
        return SQGANOutput(img, sem)

    # ----------------------------------------------------------------- tokens

    @torch.no_grad()
    def encode_tokens(self, x: torch.Tensor, s: torch.Tensor, m_x: float, m_s: float,
                      select_x: torch.Tensor | None = None,
                      select_s: torch.Tensor | None = None) -> SQGANTokens:
        """Transmitter: x [B, 3, H, W] in [0, 1], s [B, H, W] trainIds -> tokens.

        ``select_x`` / ``select_s``: [B, floor(m h w)] int64 flat positions to keep
        instead of SAMM's top scores (for the masking ablation); None: SAMM decides.
        Runs in eval mode (no codebook updates) whatever the module's mode.
        """
        with self._eval_mode():
            onehot = one_hot_labels(self._check_map(s))
            enc_s = self.semantic.encode(onehot, onehot, m_s, select_s)
            enc_x = self.image.encode(2.0 * self._check_image(x, s) - 1.0, onehot, m_x,
                                      select_x)
        return SQGANTokens(self._tokens(enc_x), self._tokens(enc_s))

    @torch.no_grad()
    def decode_tokens(self, tokens: SQGANTokens, missing_x: torch.Tensor | None = None,
                      missing_s: torch.Tensor | None = None) -> SQGANDecoded:
        """Receiver: tokens (+ positions lost on the channel) -> x_hat, s_hat.

        ``missing_x`` / ``missing_s`` : [B, h, w] bool, True where a kept token was
        lost; those positions are filled by the de-masker exactly like unkept ones
        (their index values are ignored). Runs in eval mode.

        Results are bit-identical for identical inputs, batch size and thread
        settings; batching images together changes float rounding (~1e-5), so a
        transmitter that predicts the receiver's x_hat must decode with the
        receiver's batch size (one image per call in the codec).
        """
        with self._eval_mode():
            present_s = self._present(tokens.semantic, missing_s, "missing_s")
            present_x = self._present(tokens.image, missing_x, "missing_x")
            s_logits = self.semantic.decode_indices(tokens.semantic.indices, present_s)
            s_hat = labels_from_logits(s_logits)
            out = self.image.decode_indices(tokens.image.indices, present_x,
                                            one_hot_labels(s_hat))
        return SQGANDecoded((out + 1.0) * 0.5, s_logits, s_hat)

    # ----------------------------------------------------------------- helpers

    @staticmethod
    def _tokens(enc: BranchEncoding) -> BranchTokens:
        b, h, w = enc.kept.shape
        flat = torch.zeros(b, h * w, dtype=torch.long, device=enc.kept.device)
        flat.scatter_(1, enc.positions, enc.indices)
        return BranchTokens(flat.view(b, h, w), enc.kept)

    def _present(self, tok: BranchTokens, missing: torch.Tensor | None,
                 name: str) -> torch.Tensor:
        branch = "image" if name == "missing_x" else "semantic"
        if tok.kept.dtype != torch.bool or tok.indices.shape != tok.kept.shape:
            raise ValueError(f"{branch} tokens: indices {tuple(tok.indices.shape)} and bool kept "
                             f"{tuple(tok.kept.shape)} {tok.kept.dtype} must match")
        if tok.kept.dim() != 3:
            raise ValueError(f"{branch} tokens must be [B, h, w], got {tuple(tok.kept.shape)}")
        if missing is None:
            return tok.kept
        if missing.shape != tok.kept.shape or missing.dtype != torch.bool:
            raise ValueError(f"{name} must be bool {tuple(tok.kept.shape)}, got "
                             f"{tuple(missing.shape)} {missing.dtype}")
        return tok.kept & ~missing

    def _check_map(self, s: torch.Tensor) -> torch.Tensor:
        f = self.downsampling
        if s.dim() != 3 or s.shape[-2] % f or s.shape[-1] % f:
            raise ValueError(f"semantic map shape {tuple(s.shape)} must be [B, H, W] with H, W "
                             f"multiples of {f}")
        return s

    def _check_image(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[-2:] != s.shape[-2:] or (
                x.shape[0] != s.shape[0]):
            raise ValueError(f"image shape {tuple(x.shape)} must be [B, 3, H, W] matching the "
                             f"map {tuple(s.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"image dtype {x.dtype} must be float in [0, 1]")
        return x

    @contextmanager
    def _eval_mode(self) -> Iterator[None]:
        was_training = self.training
        if was_training:
            warnings.warn("SQGAN token coding called in training mode; running it in eval mode",
                          stacklevel=3)
            self.eval()
        try:
            yield
        finally:
            if was_training:
                self.train()


def count_parameters(model: SQGAN) -> dict[str, int]:
    """Parameter counts per component (``image.encoder``, ...), per branch and in total.

    Counts trainable parameters; the EMA codebooks are buffers and are listed as
    ``<branch>.codebook``.
    """
    counts: dict[str, int] = {}
    for bname in ("image", "semantic"):
        branch: MaskedVQBranch = getattr(model, bname)
        total = 0
        for cname, child in branch.named_children():
            n = sum(p.numel() for p in child.parameters())
            if cname == "quantizer":
                n = branch.quantizer.codebook.numel()
                cname = "codebook"
            counts[f"{bname}.{cname}"] = n
            total += n
        counts[bname] = total
    counts["total"] = counts["image"] + counts["semantic"]
    return counts
