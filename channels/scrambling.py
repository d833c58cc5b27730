"""5G NR bit scrambling with the length-31 Gold sequence (TS 38.211 5.2.1, 7.3.1.1).

::

    coded bits b [B, n] ──► b~ = b xor c ──► QAM map ... demap ──► llr~ [B, n]
                                                     llr = llr~ * (1 - 2 c)  (sign flip)

NR scrambles every codeword before modulation so that the transmitted symbols are
pseudo-random whatever the payload: without it an all-zero payload (or the zero padding
of a payload's last code block) maps to the lowest-energy constellation points and the
link runs at a lower true Es/N0 than the one reported. The sequence depends only on
``c_init = n_RNTI * 2^15 + q * 2^14 + n_ID`` (PDSCH, codeword q = 0 here; PUSCH 6.3.1.1
is the same for q = 0), so the receiver knows it and descrambles soft values by flipping
the sign of the LLRs where ``c = 1``.

A payload is one codeword in NR's sense (its code blocks concatenated, TS 38.212 5.5),
so block ``j`` of a payload is scrambled with ``c(j n') .. c((j+1) n' - 1)`` over all
``n'`` bits it puts on the air (padding to whole symbols included), and every HARQ
retransmission of it with the same part: exactly Sionna's ``TB5GScrambler`` applied to
the concatenated codeword (tests check bit equality). Distinct blocks of one payload
thus see distinct sequences, so even a long all-zero payload has pseudo-random symbols.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

N_C = 1600  # TS 38.211 5.2.1: the sequence starts after 1600 shifts
N_RNTI_MAX, N_ID_MAX = 2**16 - 1, 2**10 - 1  # TS 38.211 7.3.1.1 (RNTI 16 bits, n_ID 0..1023)


def c_init(n_rnti: int, n_id: int, codeword: int = 0) -> int:
    """Scrambling initialiser ``n_RNTI 2^15 + q 2^14 + n_ID`` (TS 38.211 7.3.1.1)."""
    for name, value, hi in (("n_rnti", n_rnti, N_RNTI_MAX), ("n_id", n_id, N_ID_MAX),
                            ("codeword", codeword, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or not 0 <= value <= hi:
            raise ValueError(f"{name} {value!r} must be an int in [0, {hi}]")
    return int(n_rnti) * 2**15 + int(codeword) * 2**14 + int(n_id)


@numba.njit(cache=True, nogil=True)
def _gold(length, c_init_value, out):
    """out[i] = c(i) = (x1(i + Nc) + x2(i + Nc)) mod 2, both m-sequences run as 31-bit
    shift registers (x1(n+31) = x1(n+3) + x1(n); x2(n+31) = x2(n+3)+x2(n+2)+x2(n+1)+x2(n))."""
    x1 = np.uint32(1)
    x2 = np.uint32(c_init_value)
    mask = np.uint32(0x7FFFFFFF)
    for i in range(N_C + length):
        if i >= N_C:
            out[i - N_C] = np.uint8((x1 ^ x2) & np.uint32(1))
        f1 = ((x1 >> np.uint32(3)) ^ x1) & np.uint32(1)
        f2 = ((x2 >> np.uint32(3)) ^ (x2 >> np.uint32(2)) ^ (x2 >> np.uint32(1)) ^ x2) \
            & np.uint32(1)
        x1 = ((x1 >> np.uint32(1)) | (f1 << np.uint32(30))) & mask
        x2 = ((x2 >> np.uint32(1)) | (f2 << np.uint32(30))) & mask


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _xor_rows(bits, seq, blocks, out):
    """out[b, i] = bits[b, i] ^ seq[blocks[b] * L + i]."""
    length = bits.shape[1]
    for b in range(bits.shape[0]):
        s = seq[blocks[b] * length : (blocks[b] + 1) * length]
        for i in range(length):
            out[b, i] = bits[b, i] ^ s[i]


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _flip_rows(llr, seq, blocks):
    """llr[b, i] *= 1 - 2 seq[blocks[b] * L + i] (a sign flip where c = 1), in place."""
    length = llr.shape[1]
    for b in range(llr.shape[0]):
        s = seq[blocks[b] * length : (blocks[b] + 1) * length]
        for i in range(length):
            llr[b, i] = llr[b, i] * np.float32(1 - 2 * np.int32(s[i]))


@functools.lru_cache(maxsize=32)
def gold_sequence(length: int, c_init_value: int) -> np.ndarray:
    """The pseudo-random sequence c(0..length-1) of TS 38.211 5.2.1 (cached, read-only).

    Input
    -----
    length : int >= 1, c_init_value : int in [0, 2^31 - 1]

    Output
    ------
    c : [length] uint8 (0/1)
    """
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length {length!r} must be a positive int")
    if isinstance(c_init_value, bool) or not isinstance(c_init_value, int) \
            or not 0 <= c_init_value < 2**31:
        raise ValueError(f"c_init {c_init_value!r} must be an int in [0, 2^31 - 1]")
    out = np.empty(length, dtype=np.uint8)
    _gold(length, c_init_value, out)
    out.setflags(write=False)
    return out


class Scrambler:
    """Scramble coded bits and descramble their LLRs for one ``c_init``.

    Parameters
    ----------
    c_init_value : int in [0, 2^31 - 1]
    block_bits : int
        Bits per code block on the air; block ``j`` uses ``c[j*block_bits:(j+1)*block_bits]``.

    Input / Output
    --------------
    scramble : bits [B, block_bits] uint8, blocks [B] int -> [B, block_bits] uint8 (b xor c)
    descramble_llr : llr [B, block_bits] float32, blocks [B] int -> the same array, the sign
        of each LLR flipped where c = 1 (in place)
    """

    def __init__(self, c_init_value: int, block_bits: int) -> None:
        self.c_init = c_init_value
        self.block_bits = block_bits
        self._sequence = gold_sequence(block_bits, c_init_value)

    def _long_enough(self, blocks: np.ndarray) -> np.ndarray:
        """The cached sequence, extended (doubling) to cover every block in ``blocks``."""
        need = (int(blocks.max()) + 1) * self.block_bits if blocks.size else 0
        seq = self._sequence  # one read: another thread may swap in a longer one
        if seq.size < need:
            size = max(need, 2 * seq.size)
            seq = gold_sequence(-(-size // self.block_bits) * self.block_bits, self.c_init)
            self._sequence = seq
        return seq

    def covering(self, blocks: np.ndarray) -> np.ndarray:
        """The flat sequence c(0..) [>= (max(blocks)+1) * block_bits] uint8 (read-only):
        block ``j``'s bits are ``[j*block_bits:(j+1)*block_bits]`` (the GPU chain uploads
        it once and indexes it in its kernels)."""
        return self._long_enough(np.asarray(blocks, dtype=np.int64))

    def sequence(self, blocks: np.ndarray) -> np.ndarray:
        """[B] block indices -> [B, block_bits] uint8 scrambling bits of those blocks."""
        blocks = np.asarray(blocks, dtype=np.int64)
        return self._long_enough(blocks).reshape(-1, self.block_bits)[blocks]

    def scramble(self, bits: np.ndarray, blocks: np.ndarray) -> np.ndarray:
        self._check(bits, blocks)
        blocks = np.asarray(blocks, dtype=np.int64)
        out = np.empty_like(bits, dtype=np.uint8)
        _xor_rows(np.ascontiguousarray(bits, dtype=np.uint8), self._long_enough(blocks),
                  blocks, out)
        return out

    def descramble_llr(self, llr: np.ndarray, blocks: np.ndarray) -> np.ndarray:
        self._check(llr, blocks)
        if llr.dtype != np.float32 or not llr.flags.c_contiguous:
            raise ValueError(f"descramble_llr needs a C-contiguous float32 array, got "
                             f"{llr.dtype}")
        blocks = np.asarray(blocks, dtype=np.int64)
        _flip_rows(llr, self._long_enough(blocks), blocks)
        return llr

    def _check(self, values: np.ndarray, blocks: np.ndarray) -> None:
        if values.ndim != 2 or values.shape[1] != self.block_bits \
                or len(blocks) != values.shape[0]:
            raise ValueError(f"scrambler input of shape {values.shape} with {len(blocks)} "
                             f"block indices; expected [B, {self.block_bits}] and B indices")
