"""Shared building blocks of the learned codecs (SQ-GAN, AM-VQ, coarse-to-fine).

One implementation each, reused by every learned codec::

    group_norm / SPADEGroupNorm      normalisation, optionally conditioned on a label map
    ResBlock                         pre-activation residual block (GN or SPADE-GN)
    SelfAttention                    single-head attention over positions, optional key weights
    Downsample / Upsample            stride-2 conv / nearest x2 + conv
    EMAVectorQuantizer               VQ with EMA codebook, dead-code restart, straight-through
    PatchDiscriminator               pix2pix PatchGAN
    hinge_* / bce_* losses           adversarial losses
    adaptive_adversarial_weight      VQGAN's gradient-norm balance of the adversarial term

Glossary (STYLE.md rule 4): ``x`` image, ``s`` semantic map, ``z`` latent before the
quantizer, ``z_q`` quantized latent, ``K`` codebook size, ``d`` code dimension.
All tensors are float32 NCHW unless stated otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

_M = TypeVar("_M", bound=nn.Module)

#: GroupNorm epsilon of VQGAN (taming-transformers), kept for all our norms.
GN_EPS = 1e-6


def num_groups(channels: int, max_groups: int = 32) -> int:
    """Largest group count <= ``max_groups`` that divides ``channels`` (32 for >= 32 ch)."""
    if channels < 1:
        raise ValueError(f"channels {channels} must be >= 1")
    return math.gcd(channels, max_groups)


def channels_last(module: _M) -> _M:
    """Convert ``module``'s 4-D parameters and buffers to channels-last in place, and
    return it (``Module.to`` accepts ``memory_format``; its type stubs do not)."""
    module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return module


def group_norm(channels: int, affine: bool = True) -> nn.GroupNorm:
    """GroupNorm with up to 32 groups (VQGAN's ``Normalize``), any channel count."""
    return nn.GroupNorm(num_groups(channels), channels, eps=GN_EPS, affine=affine)


class SPADEGroupNorm(nn.Module):
    """Group norm whose affine parameters are predicted per pixel from a label map.

    SPADE (Park et al., CVPR 2019, Sec. 3) with GroupNorm instead of BatchNorm, as in
    SQ-GAN's decoder and SAMM: ``GN(x) * (1 + gamma(s)) + beta(s)``, where gamma and
    beta come from a small conv net on the label map resized to ``x``'s size.

    The map is resized by area averaging when it is larger than ``x`` (our choice:
    a small object such as a traffic light still leaves a fractional trace in an
    8 x 16 grid, where nearest sampling would drop it) and by nearest otherwise.

    Parameters
    ----------
    channels : int
        Channels of ``x``.
    label_channels : int
        Channels of the label map (e.g. 20 for a one-hot map of 19 classes + void).
    hidden : int
        Width of the shared 3x3 conv on the map (SPADE uses 128).
    kernel_size : int
        Odd kernel size of the gamma and beta convs (SPADE uses 3; 1 costs 9x less at
        full resolution, and the shared 3x3 conv already sees each pixel's
        neighbourhood).

    Input
    -----
    x : [B, channels, H, W] float32
    s : [B, label_channels, H', W'] float32, e.g. one-hot or class probabilities

    Output
    ------
    [B, channels, H, W] float32
    """

    def __init__(self, channels: int, label_channels: int, hidden: int = 128,
                 kernel_size: int = 3) -> None:
        super().__init__()
        if label_channels < 1 or hidden < 1:
            raise ValueError(f"label_channels {label_channels} and hidden {hidden} must be >= 1")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size {kernel_size} must be odd and >= 1")
        pad = kernel_size // 2
        self.label_channels = label_channels
        self.norm = group_norm(channels, affine=False)
        self.shared = nn.Sequential(nn.Conv2d(label_channels, hidden, 3, padding=1), nn.ReLU())
        self.gamma = nn.Conv2d(hidden, channels, kernel_size, padding=pad)
        self.beta = nn.Conv2d(hidden, channels, kernel_size, padding=pad)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        if s.dim() != 4 or s.shape[1] != self.label_channels or s.shape[0] != x.shape[0]:
            raise ValueError(
                f"label map shape {tuple(s.shape)} must be [B={x.shape[0]}, "
                f"{self.label_channels}, H, W]")
        s = resize_labels(s, (x.shape[-2], x.shape[-1]))
        actv = self.shared(s)
        return self.norm(x) * (1.0 + self.gamma(actv)) + self.beta(actv)


def resize_labels(s: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a [B, C, H, W] label map: area average when shrinking, nearest otherwise."""
    if (s.shape[-2], s.shape[-1]) == size:
        return s
    if s.shape[-2] >= size[0] and s.shape[-1] >= size[1]:
        return F.adaptive_avg_pool2d(s, size)
    return F.interpolate(s, size=size, mode="nearest")


class ResBlock(nn.Module):
    """Pre-activation residual block: (norm, SiLU, conv3x3) x 2 plus a 1x1 shortcut.

    VQGAN's ``ResnetBlock``; with ``label_channels`` set, both norms are
    :class:`SPADEGroupNorm` (SQ-GAN's decoder block, after SDM's ``SDMResBlock``).

    Input
    -----
    x : [B, in_channels, H, W] float32
    s : [B, label_channels, H', W'] float32, required iff ``label_channels`` is set

    Output
    ------
    [B, out_channels, H, W] float32
    """

    def __init__(self, in_channels: int, out_channels: int | None = None,
                 label_channels: int | None = None, spade_hidden: int = 128,
                 dropout: float = 0.0, spade_kernel: int = 3) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout {dropout} outside [0, 1)")
        self.conditional = label_channels is not None
        self.norm1: nn.Module
        self.norm2: nn.Module
        if label_channels is not None:
            self.norm1 = SPADEGroupNorm(in_channels, label_channels, spade_hidden, spade_kernel)
            self.norm2 = SPADEGroupNorm(out_channels, label_channels, spade_hidden, spade_kernel)
        else:
            self.norm1, self.norm2 = group_norm(in_channels), group_norm(out_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.shortcut: nn.Module = (nn.Identity() if in_channels == out_channels
                                    else nn.Conv2d(in_channels, out_channels, 1))

    def _norm(self, norm: nn.Module, h: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
        if not self.conditional:
            return norm(h)
        if s is None:
            raise ValueError("this ResBlock is SPADE-conditioned: a label map s is required")
        return norm(h, s)

    def forward(self, x: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self._norm(self.norm1, x, s)))
        h = self.conv2(self.dropout(F.silu(self._norm(self.norm2, h, s))))
        return self.shortcut(x) + h


class SelfAttention(nn.Module):
    """Single-head self-attention over the H*W positions, with a residual connection.

    VQGAN's ``AttnBlock``. Optional ``key_weight`` in (0, 1] scales the attention paid
    to each key position, then the weights are renormalised to sum to one per query;
    this equals adding ``log(key_weight)`` to the logits. SQ-GAN's de-masker uses it to
    down-weight masked positions (the public MQ-VAE code multiplies without
    renormalising; we renormalise so a query's output scale does not depend on how
    many positions were masked). Written with explicit matmuls, not a fused kernel, so
    that results are bit-identical whether or not autograd is recording.

    Input
    -----
    x : [B, C, H, W] float32
    key_weight : [B, H*W] float32 in (0, 1], or None

    Output
    ------
    [B, C, H, W] float32
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, key_weight: torch.Tensor | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)
        logits = torch.bmm(q.transpose(1, 2), k) * c ** -0.5  # [B, HW(query), HW(key)]
        if key_weight is not None:
            if key_weight.shape != (b, h * w):
                raise ValueError(f"key_weight shape {tuple(key_weight.shape)} != {(b, h * w)}")
            logits = logits + torch.log(key_weight).unsqueeze(1)
        attn = torch.softmax(logits, dim=-1)
        out = torch.bmm(v, attn.transpose(1, 2)).reshape(b, c, h, w)
        return x + self.proj(out)


class Downsample(nn.Module):
    """Halve H and W with a 3x3 stride-2 conv (VQGAN pads right/bottom by one).

    Input ``[B, C, H, W]`` with even H, W; output ``[B, C_out, H/2, W/2]``
    (``out_channels``, default C).
    """

    def __init__(self, channels: int, out_channels: int | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels if out_channels is None else out_channels,
                              3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Double H and W: nearest-neighbour x2 then a 3x3 conv (no checkerboard artefacts).

    Input ``[B, C, H, W]``; output ``[B, C, 2H, 2W]``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


@dataclass(frozen=True)
class VQOutput:
    """Result of :class:`EMAVectorQuantizer`.

    Attributes
    ----------
    z_q : [N, d] float32
        Quantized vectors; in training mode with straight-through gradients
        (``z + sg(z_q - z)``), in eval mode exactly the codebook rows.
    indices : [N] int64 in [0, K)
    loss : [] float32
        Commitment loss ``beta * mean ||z - sg(z_q)||^2`` (the codebook itself moves by
        EMA, not by gradients).
    perplexity : [] float32
        exp(entropy) of this batch's code usage, in [1, K] (1.0 for an empty batch).
    restarted : int
        Dead codes re-initialised by this call (0 in eval mode).
    """

    z_q: torch.Tensor
    indices: torch.Tensor
    loss: torch.Tensor
    perplexity: torch.Tensor
    restarted: int


class EMAVectorQuantizer(nn.Module):
    """Vector quantizer with an EMA-updated codebook and dead-code restarts.

    VQ-VAE-2 style EMA updates (Razavi et al. 2019, App. A.1; decay 0.99 as in SQ-GAN):
    per code an EMA of its assignment count ``N_k`` and of the sum of assigned vectors
    ``m_k``; the code is ``m_k / N_k`` with Laplace smoothing. Codes whose ``N_k`` (the
    expected assignments per step) falls below ``dead_threshold`` are dead; they are
    restarted from randomly chosen vectors of the current batch (with tiny noise) and
    given ``N_k = 2 * dead_threshold``, i.e. a grace period of about
    ``ln 2 / (1 - decay)`` steps. At the first training step all codes are dead, so
    the codebook is initialised from data. Gradients pass straight through.

    Randomness comes from torch's global generator (seeded by ``seed_everything``).

    Parameters
    ----------
    num_codes : int
        K.
    dim : int
        d.
    decay : float in (0, 1)
    beta : float >= 0
        Commitment weight (0.25 in VQ-VAE and SQ-GAN).
    dead_threshold : float > 0
        EMA assignments per step below which a code is restarted.

    Input
    -----
    z : [N, d] float32 (N may be 0)

    Output
    ------
    :class:`VQOutput`
    """

    codebook: torch.Tensor
    cluster_size: torch.Tensor
    embed_sum: torch.Tensor

    def __init__(self, num_codes: int, dim: int, decay: float = 0.99, beta: float = 0.25,
                 dead_threshold: float = 0.01, eps: float = 1e-5) -> None:
        super().__init__()
        if num_codes < 2 or dim < 1:
            raise ValueError(f"num_codes {num_codes} must be >= 2 and dim {dim} >= 1")
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay {decay} outside (0, 1)")
        if beta < 0.0 or dead_threshold <= 0.0:
            raise ValueError(f"beta {beta} must be >= 0 and dead_threshold {dead_threshold} > 0")
        self.num_codes, self.dim = num_codes, dim
        self.decay, self.beta, self.eps = decay, beta, eps
        self.dead_threshold = dead_threshold
        bound = 1.0 / num_codes
        self.register_buffer("codebook", torch.empty(num_codes, dim).uniform_(-bound, bound))
        self.register_buffer("cluster_size", torch.zeros(num_codes))
        self.register_buffer("embed_sum", torch.zeros(num_codes, dim))

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Indices [N] int64 of the nearest code (squared Euclidean) to each row of z."""
        dist = torch.addmm(
            z.pow(2).sum(1, keepdim=True) + self.codebook.pow(2).sum(1).unsqueeze(0),
            z, self.codebook.t(), alpha=-2.0)
        return dist.argmin(dim=1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codebook rows for int64 ``indices`` of any shape in [0, K): shape + [d]."""
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.num_codes):
            raise ValueError(f"code indices span [{int(indices.min())}, {int(indices.max())}], "
                             f"allowed [0, {self.num_codes})")
        return F.embedding(indices, self.codebook)

    def forward(self, z: torch.Tensor) -> VQOutput:
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f"z shape {tuple(z.shape)} must be [N, {self.dim}]")
        # Distances, EMA statistics and the codebook stay float32 under bf16 autocast
        # (mixed-precision VQ loses code assignments); a no-op for float32 input.
        with torch.autocast(z.device.type, enabled=False):
            return self._quantize(z.float())

    def _quantize(self, z: torch.Tensor) -> VQOutput:
        with torch.no_grad():
            indices = self.nearest(z) if z.shape[0] else z.new_zeros(0, dtype=torch.long)
            z_q = F.embedding(indices, self.codebook)
            counts = torch.bincount(indices, minlength=self.num_codes).to(z.dtype)
            restarted = self._ema_update(z.detach(), indices, counts) if (
                self.training and z.shape[0]) else 0
        loss = self.beta * (z - z_q).pow(2).mean() if z.shape[0] else z.sum() * 0.0
        if self.training:
            z_q = z + (z_q - z).detach()  # straight-through estimator (VQ-VAE Sec. 3.2)
        return VQOutput(z_q, indices, loss, _perplexity(counts), restarted)

    @torch.no_grad()
    def _ema_update(self, z: torch.Tensor, indices: torch.Tensor, counts: torch.Tensor) -> int:
        sums = torch.zeros_like(self.embed_sum).index_add_(0, indices, z)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1.0 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1.0 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.num_codes * self.eps) * n
        self.codebook.copy_(self.embed_sum / smoothed.unsqueeze(1))
        return self._restart_dead(z)

    @torch.no_grad()
    def _restart_dead(self, z: torch.Tensor) -> int:
        dead = (self.cluster_size < self.dead_threshold).nonzero().squeeze(1)
        if dead.numel() == 0:
            return 0
        pick = torch.randint(0, z.shape[0], (dead.numel(),), device=z.device)
        noise_std = 1e-3 * float(z.std()) if z.numel() > 1 else 1e-3
        fresh = z[pick] + noise_std * torch.randn(dead.numel(), self.dim, device=z.device)
        grace = 2.0 * self.dead_threshold
        self.codebook[dead] = fresh
        self.cluster_size[dead] = grace
        self.embed_sum[dead] = fresh * grace
        return int(dead.numel())


def _perplexity(counts: torch.Tensor) -> torch.Tensor:
    total = counts.sum()
    if total <= 0:
        return counts.new_tensor(1.0)
    p = counts / total
    return torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator (pix2pix, Isola et al. CVPR 2017, Sec. 3.2.2).

    ``n_layers`` stride-2 4x4 convs (width ndf, 2 ndf, ... capped at 8 ndf), one
    stride-1 conv, then a 1-channel 4x4 conv: one real/fake logit per overlapping
    patch (70 x 70 receptive field for ``n_layers=3``). Weights N(0, 0.02).

    Parameters
    ----------
    in_channels : int
        3 for images, 20 for class probability maps, more when conditioned.
    ndf : int
    n_layers : int >= 1
    norm : {"batch", "group", "none"}
        "batch" as pix2pix/VQGAN; "group" behaves the same at batch 1.

    Input
    -----
    x : [B, in_channels, H, W] float32 (H, W >= 2**(n_layers + 2) or so)

    Output
    ------
    logits : [B, 1, H', W'] float32
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3,
                 norm: str = "batch") -> None:
        super().__init__()
        if norm not in ("batch", "group", "none"):
            raise ValueError(f"discriminator norm {norm!r} not in ('batch', 'group', 'none')")
        if n_layers < 1 or ndf < 1:
            raise ValueError(f"n_layers {n_layers} and ndf {ndf} must be >= 1")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=norm == "none"),
                       _disc_norm(norm, ndf * mult), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.main = nn.Sequential(*layers)
        self.apply(_disc_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


def _disc_norm(norm: str, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "group":
        return group_norm(channels)
    return nn.Identity()


def _disc_init(m: nn.Module) -> None:
    if isinstance(m, nn.Conv2d):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm) and m.weight is not None:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss 0.5 (E[relu(1 - D(x))] + E[relu(1 + D(x_hat))]) (Lim & Ye 2017)."""
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


def hinge_g_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss -E[D(x_hat)]."""
    return -logits_fake.mean()


def bce_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Discriminator binary cross-entropy 0.5 (E[softplus(-D(x))] + E[softplus(D(x_hat))])."""
    return 0.5 * (F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean())


def bce_g_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator BCE E[softplus(-D(x_hat))] (Goodfellow et al. 2014, Sec. 3)."""
    return F.softplus(-logits_fake).mean()


def adaptive_adversarial_weight(rec_loss: torch.Tensor, g_loss: torch.Tensor,
                                last_layer: torch.Tensor, scale: float = 1.0,
                                max_weight: float | None = None,
                                eps: float = 1e-4) -> torch.Tensor:
    """Adaptive weight of the adversarial term (VQGAN, Esser et al. CVPR 2021, Eq. 7).

    ``lambda = scale * ||grad_L rec|| / (||grad_L g|| + eps)``, clamped to [0, 1e4] and
    then to ``max_weight``; L is the decoder's last layer weight. Returned detached.

    Input
    -----
    rec_loss, g_loss : [] float32 scalars that both depend on ``last_layer``
    last_layer : parameter tensor (e.g. ``decoder.conv_out.weight``)

    Output
    ------
    lambda : [] float32, detached
    """
    if scale < 0.0 or (max_weight is not None and max_weight < 0.0):
        raise ValueError(f"scale {scale} and max_weight {max_weight} must be >= 0")
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    weight = (rec_grad.norm() / (g_grad.norm() + eps)).clamp(0.0, 1e4) * scale
    if max_weight is not None:
        weight = weight.clamp(max=max_weight)
    return weight.detach()
