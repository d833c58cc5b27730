"""Adaptive binary context model for kept-position masks.

A mask is coded in raster order (row by row; not in score order, which is a defect of
the public SQ-GAN code, REFERENCE.md Sec. 1). Each bit m_i is coded with probability

    p(m_i = 1) = (n1[c] + 1/2) / (n[c] + 1),   c = left + 2 * up,

a Krichevsky-Trofimov estimate from the counts of the bits seen so far in the same
context c (the left and upper neighbours, as in JBIG's template coding with a 2-pixel
template). Counts start at zero in every packet, and neighbours outside the packet's
position range (or outside the grid) count as 0, so each packet decodes on its own.
Cost: about H(m) bits per position for an i.i.d. mask plus ~0.5 log2(n) bits per
context for learning; far less when kept positions cluster.

The encoder computes all probabilities at once (NumPy); the decoder must decode bit by
bit since each context depends on the previous bits (about 1-2 us per position). Both
evaluate ``(n1 + 0.5) / (n + 1.0)`` in IEEE float64, so they agree exactly.
"""

from __future__ import annotations

from typing import Any

import constriction
import numpy as np

NUM_CONTEXTS = 4
#: Bernoulli model family: p(1) given per bit. ``perfect=False`` is constriction's fast,
#: deterministic quantisation of p (same on both ends).
BERNOULLI = constriction.stream.model.Bernoulli(perfect=False)


def mask_probs(bits: np.ndarray, width: int, offset: int) -> np.ndarray:
    """Adaptive p(1) of every bit of a mask segment.

    Input
    -----
    bits : [n] bool
        Mask values of the grid's raster positions ``offset .. offset + n - 1``.
    width : int
        Grid width W (to find left and upper neighbours).
    offset : int
        Raster index of ``bits[0]`` in its grid (column = index % W).

    Output
    ------
    p1 : [n] float64 in (0, 1)
    """
    n = bits.size
    b = bits.astype(np.int64)
    i = np.arange(n)
    has_left = ((offset + i) % width != 0) & (i >= 1)
    ctx = np.zeros(n, dtype=np.int64)
    ctx[has_left] = b[i[has_left] - 1]
    if n > width:
        ctx[width:] += 2 * b[:-width]
    p1 = np.empty(n, dtype=np.float64)
    for c in range(NUM_CONTEXTS):
        idx = np.flatnonzero(ctx == c)
        bc = b[idx]
        ones_before = np.cumsum(bc) - bc
        p1[idx] = (ones_before + 0.5) / (np.arange(idx.size) + 1.0)
    return p1


def mask_costs_bits(bits: np.ndarray, width: int, offset: int) -> np.ndarray:
    """Ideal code length -log2 p(m_i) [n] float64 of each bit under the adaptive model."""
    p1 = mask_probs(bits, width, offset)
    return -np.log2(np.where(bits, p1, 1.0 - p1))


def encode_mask(encoder: Any, bits: np.ndarray, width: int, offset: int) -> None:
    """Append a mask segment ``bits`` [n] bool to a constriction ``RangeEncoder``."""
    if bits.size:
        encoder.encode(bits.astype(np.int32), BERNOULLI, mask_probs(bits, width, offset))


def decode_mask(decoder: Any, n: int, width: int, offset: int) -> np.ndarray:
    """Read a mask segment of ``n`` bits from a ``RangeDecoder`` -> [n] bool.

    The loop is bounded by ``n`` (known from the packet header, validated against the
    spec); on garbage input the decoder still returns bits in {0, 1}.
    """
    out = [0] * n
    ones = [0] * NUM_CONTEXTS
    seen = [0] * NUM_CONTEXTS
    p_buf = np.empty(1, dtype=np.float64)
    for i in range(n):
        left = out[i - 1] if i >= 1 and (offset + i) % width else 0
        up = out[i - width] if i >= width else 0
        c = left + 2 * up
        p_buf[0] = (ones[c] + 0.5) / (seen[c] + 1.0)
        bit = 1 if decoder.decode(BERNOULLI, p_buf)[0] else 0
        out[i] = bit
        ones[c] += bit
        seen[c] += 1
    return np.array(out, dtype=bool)
