"""DeepJSCC networks: image -> power-normalised complex symbols -> image.

::

    x [B,3,H,W] in [0,1]
      │ per stage: conv 5x5 stride 2 ─► PReLU            (enc_ch, finest first)
      │ res_blocks x (conv 3x3 ─► PReLU ─► conv 3x3, + skip)
      │ conv 3x3 ─► 2C maps ─► C complex maps [B,C,h,w]   (h, w = H, W / factor)
      ▼
    z = first c maps, flattened channel-major [B, c h w], scaled to mean |z|^2 = 1
      │                  channel (channels/analog.py, or ``simulate_channel`` when training)
      ▼
    z_hat (MMSE-equalised), g = |h|^2 / (|h|^2 + no) per symbol (0 where not sent)
      │ [Re z_hat, Im z_hat, g] zero-filled to C maps each ─► [B,3C,h,w]
      │ conv 3x3 ─► PReLU ─► AF(snr)
      │ res_blocks x (residual block ─► AF(snr))
      │ per stage, coarsest first: transposed conv 4x4 stride 2 ─► PReLU ─► AF(snr)
      │   (the last stage: to 3 maps ─► sigmoid)
      ▼
    x_hat [B,3,H,W] in [0,1]

SNR adaptation: ADJSCC's attention-feature (AF) modules (Xu et al., IEEE TCSVT 2021,
Sec. III-B): per module, [channel means of the features, normalised SNR] -> FC -> ReLU
-> FC -> sigmoid scales each feature map. They sit in the decoder only: the encoder is
SNR-agnostic, so one payload is sent at every SNR (the runner encodes each image once,
a broadcast transmitter knows no SNR). The model is trained over Es/N0 uniform in dB
(``snr_range_db``); the decoder's SNR input is clamped to that range.

Bandwidth: channel truncation. The encoder always computes C maps; sending the first
c gives c / factor^2 channel uses per pixel; training draws c per step, so the leading
maps carry the coarse content (one model, several ratios).
"""

from __future__ import annotations

import torch
from torch import nn

from semcomm.codecs.deepjscc.config import ModelConfig


class AFModule(nn.Module):
    """ADJSCC attention-feature module: features [B,F,h,w], snr [B] in [0,1] -> scaled."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(width + 1, hidden), nn.ReLU(),
                                nn.Linear(hidden, width), nn.Sigmoid())

    def forward(self, x: torch.Tensor, snr: torch.Tensor) -> torch.Tensor:
        context = torch.cat([x.mean(dim=(2, 3)), snr[:, None].to(x.dtype)], dim=1)
        return x * self.fc(context)[:, :, None, None]


class ResBlock(nn.Module):
    """conv 3x3 -> PReLU -> conv 3x3, plus the input."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.PReLU(width),
                                  nn.Conv2d(width, width, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Encoder(nn.Module):
    """x [B,3,H,W] in [0,1] -> y [B,C,h,w] complex64 (not yet power-normalised)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 3
        for out in cfg.enc_ch:
            layers += [nn.Conv2d(width, out, 5, stride=2, padding=2), nn.PReLU(out)]
            width = out
        layers += [ResBlock(width) for _ in range(cfg.res_blocks)]
        layers.append(nn.Conv2d(width, 2 * cfg.max_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)
        self.channels = cfg.max_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(2.0 * x - 1.0).float()
        return torch.complex(y[:, :self.channels], y[:, self.channels:])


class Decoder(nn.Module):
    """[B,3C,h,w] (Re z_hat, Im z_hat, g), snr [B] in [0,1] -> x_hat [B,3,H,W] in [0,1]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        widths = list(cfg.enc_ch[::-1])
        self.head = nn.Sequential(nn.Conv2d(3 * cfg.max_channels, widths[0], 3, padding=1),
                                  nn.PReLU(widths[0]))
        self.head_af = AFModule(widths[0], cfg.af_hidden)
        self.blocks = nn.ModuleList(ResBlock(widths[0]) for _ in range(cfg.res_blocks))
        self.block_afs = nn.ModuleList(AFModule(widths[0], cfg.af_hidden)
                                       for _ in range(cfg.res_blocks))
        outs = [*widths[1:], 3]
        self.ups = nn.ModuleList(nn.ConvTranspose2d(a, b, 4, stride=2, padding=1)
                                 for a, b in zip(widths, outs, strict=True))
        self.acts = nn.ModuleList(nn.PReLU(b) for b in outs[:-1])
        self.up_afs = nn.ModuleList(AFModule(b, cfg.af_hidden) for b in outs[:-1])

    def forward(self, r: torch.Tensor, snr: torch.Tensor) -> torch.Tensor:
        h = self.head_af(self.head(r), snr)
        for block, af in zip(self.blocks, self.block_afs, strict=True):
            h = af(block(h), snr)
        for j, up in enumerate(self.ups):
            h = up(h)
            if j < len(self.acts):
                h = self.up_afs[j](self.acts[j](h), snr)
        return torch.sigmoid(h)


class DeepJSCC(nn.Module):
    """Encoder + decoder with the symbol layout between them (see the module diagram)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def encode(self, x: torch.Tensor, c: int) -> torch.Tensor:
        """x [B,3,H,W] in [0,1] -> z [B, c h w] complex64 with mean |z|^2 = 1 per image."""
        if not 1 <= c <= self.cfg.max_channels:
            raise ValueError(f"channels c {c} outside [1, {self.cfg.max_channels}]")
        y = self.encoder(x)[:, :c].reshape(x.shape[0], -1)
        power = (y.real ** 2 + y.imag ** 2).mean(dim=1, keepdim=True)
        return y / torch.sqrt(power + 1e-12)

    def decode(self, z_hat: torch.Tensor, gain: torch.Tensor, esno_db: torch.Tensor,
               shape: tuple[int, int]) -> torch.Tensor:
        """Equalised symbols -> x_hat.

        Input
        -----
        z_hat : [B, k] complex64    MMSE-equalised symbols, k = c h w
        gain : [B, k] float32       |h|^2 / (|h|^2 + no) per symbol (1 / (1 + noise_var))
        esno_db : [B] float32       average Es/N0, dB (clamped to snr_range_db)
        shape : (H, W)
        Output
        ------
        x_hat : [B, 3, H, W] float32 in [0, 1]
        """
        f, cmax = self.cfg.factor, self.cfg.max_channels
        h, w = shape[0] // f, shape[1] // f
        b, k = z_hat.shape
        c = k // (h * w)
        if c * h * w != k or not 1 <= c <= cmax:
            raise ValueError(f"{k} symbols do not fill 1..{cmax} maps of {h}x{w} "
                             f"(image {shape[0]}x{shape[1]})")
        r = torch.zeros(b, 3 * cmax, h, w, dtype=torch.float32, device=z_hat.device)
        r[:, :c] = z_hat.real.reshape(b, c, h, w)
        r[:, cmax:cmax + c] = z_hat.imag.reshape(b, c, h, w)
        r[:, 2 * cmax:2 * cmax + c] = gain.reshape(b, c, h, w)
        return self.decoder(r, self.snr_input(esno_db))

    def snr_input(self, esno_db: torch.Tensor) -> torch.Tensor:
        """[B] dB -> [B] in [0, 1]: clamped to snr_range_db, then scaled."""
        lo, hi = self.cfg.snr_range_db
        return (esno_db.float().clamp(lo, hi) - lo) / (hi - lo)


def simulate_channel(z: torch.Tensor, esno_db: torch.Tensor, kinds: list[str],
                     block_symbols: int, generator: torch.Generator
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """The training channel: the same models as ``channels.analog`` (torch, batched).

    Input
    -----
    z : [B, k] complex64, mean |z|^2 = 1       esno_db : [B] float32 Es/N0 per image
    kinds : B names in {"awgn", "rayleigh-fast", "rayleigh-block"}
    block_symbols : rayleigh-block coherence length in symbols (gains per stretch of
        the symbol stream, as per code block on the link)
    Output
    ------
    z_hat : [B, k] complex64   MMSE estimate conj(h) y / (|h|^2 + no)
    gain : [B, k] float32      |h|^2 / (|h|^2 + no)
    """
    b, k = z.shape
    dev = z.device
    no = (10.0 ** (-esno_db.float() / 10.0))[:, None].to(dev)

    def cn(*shape: int) -> torch.Tensor:
        pair = torch.randn(*shape, 2, generator=generator, device=dev) * (0.5 ** 0.5)
        return torch.complex(pair[..., 0], pair[..., 1])

    h = torch.ones(b, k, dtype=torch.complex64, device=dev)
    fast = cn(b, k)
    blocks = cn(b, -(-k // block_symbols)).repeat_interleave(block_symbols, dim=1)[:, :k]
    for i, kind in enumerate(kinds):
        if kind == "rayleigh-fast":
            h[i] = fast[i]
        elif kind == "rayleigh-block":
            h[i] = blocks[i]
    y = h * z + cn(b, k) * torch.sqrt(no)
    mag = h.real ** 2 + h.imag ** 2
    z_hat = torch.conj(h) * y / (mag + no)
    return z_hat, mag / (mag + no)
