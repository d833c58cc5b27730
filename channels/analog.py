"""The analog path: complex symbols in, equalised complex symbols out, over the SAME
flat channels as the digital link (no bits, no code, no constellation).

::

    z [k] complex (mean |z|^2 = 1) ─► zero-pad to nb = ceil(k / S) blocks of S symbols
        ─► FlatChannel.apply(blocks, no, seed, 0)     (the digital link's draws, same seed)
        ─► x_eq = y / h,  noise_var = no / |h|^2     (ZF, per symbol)
        ─► MMSE: z_hat = x_eq / (1 + noise_var) = conj(h) y / (|h|^2 + no)   (default)
        ─► drop the padding ─► AnalogResult(symbols [k], noise_var [k], channel_uses = k)

Why it matches the digital path (``channels.link.Link``)
-------------------------------------------------------
* Channel draws: the payload's symbol stream is cut into blocks of ``S`` symbols, where
  ``S`` is the symbols per code block of the digital link it is compared with
  (``LinkConfig.symbols_per_block``), and each block goes through the same
  :class:`channels.channel.FlatChannel` with the same seed. So at one seed the analog
  and the digital payload see the same noise samples and the same fading gains symbol
  by symbol (common random numbers), ``rayleigh-block`` has one gain per S symbols (or
  per ``block_symbols``) exactly as for a code block, and ``rayleigh-fast`` one per
  symbol. The padding of the last block is never sent: its draws are discarded.
* Power: the transmitter must send average power 1 per complex symbol (Es = 1, as the
  QAM constellations of the digital link); :meth:`AnalogChannel.transmit` checks it, so
  ``esno_db`` means the same on both paths and ``no = 10^(-esno_db/10)``
  (``channels.snr.noise_variance``, the one dB -> linear conversion).
* Channel uses: one complex symbol is one channel use, on both paths. A digital payload
  uses ``num_blocks * S`` (its padding included); an analog one uses exactly ``k``.

Equaliser (perfect CSI at the receiver)
---------------------------------------
``"mmse"`` (default): the linear MMSE estimate for unit-power symbols,
``conj(h) y / (|h|^2 + no)``; it shrinks deep fades towards 0 instead of amplifying
their noise. ``"zf"``: ``y / h``, what the digital demapper receives. Either way
``noise_var = no / |h|^2`` (the CSI the decoder may use) comes with the symbols.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from channels.channel import FlatChannel
from channels.config import CHANNELS, LinkConfig
from channels.snr import check_snr_db, noise_variance

EQUALISERS = ("mmse", "zf")
#: Largest relative deviation of a payload's mean |z|^2 from 1 that ``transmit`` accepts.
POWER_TOLERANCE = 1e-3


@dataclass(frozen=True)
class AnalogResult:
    """One symbol payload after the channel.

    Attributes
    ----------
    symbols : [k] complex64     equalised symbols z_hat (MMSE or ZF, see ``equaliser``)
    noise_var : [k] float32     no / |h|^2 per symbol (ZF noise variance; CSI)
    channel_uses : int          k, complex symbols sent
    equaliser : "mmse" | "zf"
    """

    symbols: np.ndarray
    noise_var: np.ndarray
    channel_uses: int
    equaliser: str


class AnalogChannel:
    """Complex symbol payloads over one of the flat channels, with perfect CSI.

    Parameters
    ----------
    kind : {"awgn", "rayleigh-block", "rayleigh-fast"}
    symbols_per_block : int
        S: draws are made per block of S symbols, as for the digital link's code blocks
        (use :meth:`from_link` to take S from a link configuration).
    block_symbols : int | None
        ``rayleigh-block`` coherence length in symbols (None: one gain per S symbols).
    equaliser : {"mmse", "zf"}
    """

    def __init__(self, kind: str, symbols_per_block: int, block_symbols: int | None = None,
                 equaliser: str = "mmse") -> None:
        if kind not in CHANNELS:
            raise ValueError(f"channel {kind!r} not one of {list(CHANNELS)}")
        if isinstance(symbols_per_block, bool) or not isinstance(symbols_per_block, int) \
                or symbols_per_block < 1:
            raise ValueError(f"symbols_per_block {symbols_per_block!r} must be a positive int")
        if block_symbols is not None and (isinstance(block_symbols, bool) or
                                          not isinstance(block_symbols, int) or
                                          block_symbols < 1):
            raise ValueError(f"block_symbols {block_symbols!r} must be a positive int or None")
        if equaliser not in EQUALISERS:
            raise ValueError(f"equaliser {equaliser!r} not one of {list(EQUALISERS)}")
        self.kind, self.equaliser = kind, equaliser
        self.symbols_per_block = symbols_per_block
        self.channel = FlatChannel(kind, symbols_per_block, block_symbols)

    @classmethod
    def from_link(cls, config: LinkConfig, equaliser: str = "mmse") -> AnalogChannel:
        """The analog twin of a digital link: its channel, S and coherence length."""
        return cls(config.channel, config.symbols_per_block, config.block_symbols, equaliser)

    def transmit(self, payloads: Sequence[np.ndarray], esno_db: float,
                 seeds: Sequence[int]) -> list[AnalogResult]:
        """Send each symbol payload over its own channel realisation.

        Input
        -----
        payloads : sequence of [k_i] complex arrays, k_i >= 1, mean |z|^2 = 1 each
        esno_db : float        Es/N0 per complex symbol, dB (``channels.snr``)
        seeds : one int >= 0 per payload (the same seed as the digital payload's gives
            the same noise and fading draws)
        Output
        ------
        list[AnalogResult], one per payload, in order.
        """
        z_list = [_check_symbols(z, i) for i, z in enumerate(payloads)]
        if isinstance(seeds, (int, np.integer)) or len(seeds) != len(z_list):
            raise ValueError(f"seeds must be a sequence of {len(z_list)} ints (one per "
                             f"payload), got {seeds!r}")
        no = noise_variance(check_snr_db(esno_db, "esno_db"))
        out = []
        for i, (z, seed) in enumerate(zip(z_list, seeds, strict=True)):
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
                raise ValueError(f"seed {i} {seed!r} must be a non-negative int")
            x_eq, noise_var = self.apply(z, no, int(seed))
            out.append(AnalogResult(x_eq, noise_var, int(z.size), self.equaliser))
        return out

    def apply(self, z: np.ndarray, no: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """[k] complex64 symbols -> (z_hat [k] complex64, noise_var [k] float32)."""
        k, s = z.size, self.symbols_per_block
        blocks = -(-k // s)
        padded = np.zeros(blocks * s, dtype=np.complex64)
        padded[:k] = z
        x_eq, noise_var = self.channel.apply(padded.reshape(blocks, s), no, seed, 0)
        x_eq, noise_var = x_eq.reshape(-1)[:k], noise_var.reshape(-1)[:k]
        if self.equaliser == "mmse":
            # conj(h) y / (|h|^2 + no) = (y / h) * |h|^2 / (|h|^2 + no) = x_eq / (1 + no/|h|^2)
            x_eq = (x_eq / (1.0 + noise_var)).astype(np.complex64)
        return x_eq, noise_var.astype(np.float32)


def _check_symbols(z: object, i: int) -> np.ndarray:
    if not isinstance(z, np.ndarray) or z.ndim != 1 or not np.iscomplexobj(z):
        got = f"{type(z).__name__} {getattr(z, 'dtype', '')} {getattr(z, 'shape', '')}"
        raise ValueError(f"symbol payload {i} is a {got.strip()}; expected a 1-D complex array")
    if z.size == 0:
        raise ValueError(f"symbol payload {i} is empty; it needs at least 1 symbol")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"symbol payload {i} has non-finite symbols")
    power = float(np.mean(np.abs(z.astype(np.complex128)) ** 2))
    if abs(power - 1.0) > POWER_TOLERANCE:
        raise ValueError(f"symbol payload {i} has mean power {power:.6g}; the analog path "
                         f"needs 1 per complex symbol (Es = 1) within {POWER_TOLERANCE:g}")
    return z.astype(np.complex64)
