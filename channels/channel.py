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

The draws are made by ``channels.rng``, NumPy's SeedSequence/PCG64/ziggurat reproduced bit
for bit in numba kernels that release the GIL (a Generator per block held the GIL for
tens of microseconds, which limited scaling over threads); the noise is added in the
same kernel for AWGN.
"""

from __future__ import annotations

import numba
import numpy as np

from channels.config import CHANNELS
from channels.rng import entropy_words, seed_state, standard_normal, standard_normal_fill

#: float32(sqrt(1/2)): a CN(0, 1) draw is (a + j b) * this.
_SQRT_HALF = np.float32(np.sqrt(0.5))


def _complex_normal(pairs: np.ndarray) -> np.ndarray:
    """[..., 2] float32 normals -> [...] complex64 samples of CN(0, 1) (NumPy arithmetic)."""
    return (pairs.view(np.complex64)[..., 0] * _SQRT_HALF).astype(np.complex64)


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
        x = np.ascontiguousarray(x, dtype=np.complex64)
        prefix = entropy_words(seed, (0, 0))[:-1]  # block j appends the words of j
        sqrt_no = np.float32(np.sqrt(no))
        out = np.empty((num, sym), dtype=np.complex64)
        per_block = (2 * sym if self.kind == "rayleigh-fast" else
                     2 if self.kind == "rayleigh-block" and self.block_symbols is None else 0)
        pairs = np.empty((num, per_block), dtype=np.float32)
        # Kernel (no GIL): each block's gains into pairs, then its noise; out = x + noise
        # for AWGN, else the scaled noise alone.
        _block_draws(prefix, first_block, pairs, x.view(np.float32), self.kind == "awgn",
                     _SQRT_HALF, sqrt_no, out.view(np.float32))
        if self.kind == "awgn":
            return out, np.full((num, sym), no, dtype=np.float32)
        if self.kind == "rayleigh-fast":
            h = _complex_normal(pairs.reshape(num, sym, 2))
        elif self.block_symbols is None:
            h = np.repeat(_complex_normal(pairs.reshape(num, 1, 2)), sym, axis=1)
        else:
            h = self._interval_gains(seed, first_block, num)
        y = h * x + out
        gain = (h.real**2 + h.imag**2).astype(np.float32)
        return (y / h).astype(np.complex64), (np.float32(no) / gain).astype(np.float32)

    def _interval_gains(self, seed: int, first_block: int, num: int) -> np.ndarray:
        """[num, S] gains of blocks first_block.. when one gain spans T symbols."""
        assert self.block_symbols is not None
        sym = self.symbols_per_block
        start = first_block * sym
        stop = (first_block + num) * sym
        first_iv, last_iv = start // self.block_symbols, (stop - 1) // self.block_symbols
        pairs = standard_normal(seed, (1, 0), 2 * (last_iv + 1)).reshape(-1, 2)
        gains = _complex_normal(pairs)  # a prefix of one fixed stream
        pos = np.arange(start, stop) // self.block_symbols
        assert pos[0] >= first_iv
        return gains[pos].reshape(num, sym)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _block_draws(prefix, first_block, pairs, xf, add_x, c, sqrt_no, outf):
    """Draw every block's randomness from ``SeedSequence(seed, spawn_key=(0, j))``.

    Input
    -----
    prefix : [w] uint64   entropy words of the seed and spawn-key word 0 (channels.rng)
    pairs : [B, G] float32   receives block b's G gain normals (G = 0: none)
    xf : [B, 2S] float32     x as (re, im) pairs
    add_x : bool, c = float32(sqrt(1/2)), sqrt_no = float32(sqrt(N0))
    Output
    ------
    outf : [B, 2S] float32   x + n (add_x) or n, n = CN(0, 1) draw * sqrt_no

    Same float32 operations as NumPy's complex64 * real scalar (a s - b 0, a 0 + b s),
    twice, then a complex add: bit-identical to the former NumPy code.
    """
    w = prefix.shape[0]
    entropy = np.empty(w + 2, dtype=np.uint64)
    entropy[:w] = prefix
    state = np.empty(6, dtype=np.uint64)
    noise = np.empty(xf.shape[1], dtype=np.float32)
    zero = np.float32(0.0)
    for b in range(xf.shape[0]):
        j = first_block + b
        n = w + 1
        entropy[w] = j & 0xFFFFFFFF  # _int_to_uint32_array: little-endian words, [0] for 0
        if j >> 32:
            entropy[w + 1] = j >> 32
            n += 1
        seed_state(entropy[:n], state)
        standard_normal_fill(state, pairs[b])
        standard_normal_fill(state, noise)
        for s in range(0, noise.shape[0], 2):
            a = noise[s]
            bb = noise[s + 1]
            re = a * c - bb * zero
            im = a * zero + bb * c
            nre = re * sqrt_no - im * zero
            nim = re * zero + im * sqrt_no
            if add_x:
                nre = xf[b, s] + nre
                nim = xf[b, s + 1] + nim
            outf[b, s] = nre
            outf[b, s + 1] = nim
