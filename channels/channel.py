"""Flat channels with perfect CSI: AWGN, block Rayleigh, fast Rayleigh (NumPy).

::

    x [B, S] ──► y = h x + n ──► x_eq = y / h,  noise_var = no / |h|^2  (per symbol)

* ``n ~ CN(0, no)`` with ``no = 10^(-esno_db/10)`` (Es = 1, see ``channels.snr``).
* ``h ~ CN(0, 1)`` (E|h|^2 = 1, so the average Es/N0 is ``esno_db``); ``h = 1`` for AWGN.
* ``rayleigh-fast``: one gain per symbol. ``rayleigh-block``: one gain per code block,
  or with ``block_symbols = T`` one gain per T consecutive symbols of the payload's
  symbol stream (code blocks are sent back to back, so coherence intervals may straddle
  two blocks).

Randomness (same seed, same numbers, however the blocks are batched)
--------------------------------------------------------------------
Block ``j`` of a payload with seed ``s`` draws from
``default_rng(SeedSequence(s, spawn_key=(0, j)))``: first its gains (rayleigh-fast:
S complex; per-codeword rayleigh-block: one), then its S noise samples. The gains of
``rayleigh-block`` with ``block_symbols`` come from
``default_rng(SeedSequence(s, spawn_key=(1, 0)))`` in interval order. A complex draw is
``(a + j b) / sqrt(2)`` from one ``standard_normal((count, 2), float32)`` call.
"""

from __future__ import annotations

import numpy as np

from channels.config import CHANNELS


def _complex_normal(rng: np.random.Generator, count: int) -> np.ndarray:
    """[count] complex64 samples of CN(0, 1)."""
    pairs = rng.standard_normal((count, 2), dtype=np.float32)
    return (pairs.view(np.complex64)[:, 0] * np.float32(np.sqrt(0.5))).astype(np.complex64)


class FlatChannel:
    """Apply one of the flat channels to consecutive code blocks of one payload.

    Parameters
    ----------
    kind : {"awgn", "rayleigh-block", "rayleigh-fast"}
    symbols_per_block : int
        S, complex symbols per code block.
    block_symbols : int | None
        Coherence length of ``rayleigh-block`` in symbols (None = per code block).
    """

    def __init__(self, kind: str, symbols_per_block: int, block_symbols: int | None = None) -> None:
        if kind not in CHANNELS:
            raise ValueError(f"channel {kind!r} not one of {list(CHANNELS)}")
        self.kind = kind
        self.symbols_per_block = symbols_per_block
        self.block_symbols = block_symbols

    def apply(self, x: np.ndarray, no: float, seed: int, first_block: int
              ) -> tuple[np.ndarray, np.ndarray]:
        """Pass blocks ``first_block .. first_block + B - 1`` of one payload.

        Input
        -----
        x : [B, S] complex64    transmitted symbols
        no : float             complex noise variance N0
        seed : int             the payload's seed (>= 0)
        Output
        ------
        x_eq : [B, S] complex64      y / h
        noise_var : [B, S] float32   no / |h|^2
        """
        num, sym = x.shape
        h = np.ones((num, sym), dtype=np.complex64)
        noise = np.empty((num, sym), dtype=np.complex64)
        for b in range(num):
            key = (0, first_block + b)
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))
            if self.kind == "rayleigh-fast":
                h[b] = _complex_normal(rng, sym)
            elif self.kind == "rayleigh-block" and self.block_symbols is None:
                h[b] = _complex_normal(rng, 1)[0]
            noise[b] = _complex_normal(rng, sym)
        if self.kind == "rayleigh-block" and self.block_symbols is not None:
            h = self._interval_gains(seed, first_block, num)
        noise *= np.float32(np.sqrt(no))
        if self.kind == "awgn":
            return x + noise, np.full((num, sym), no, dtype=np.float32)
        y = h * x + noise
        gain = (h.real**2 + h.imag**2).astype(np.float32)
        return (y / h).astype(np.complex64), (np.float32(no) / gain).astype(np.float32)

    def _interval_gains(self, seed: int, first_block: int, num: int) -> np.ndarray:
        """[num, S] gains of blocks first_block.. when one gain spans T symbols."""
        assert self.block_symbols is not None
        sym = self.symbols_per_block
        start = first_block * sym
        stop = (first_block + num) * sym
        first_iv, last_iv = start // self.block_symbols, (stop - 1) // self.block_symbols
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, 0)))
        gains = _complex_normal(rng, last_iv + 1)  # a prefix of one fixed stream
        pos = np.arange(start, stop) // self.block_symbols
        assert pos[0] >= first_iv
        return gains[pos].reshape(num, sym)
