"""NumPy's ``default_rng(SeedSequence(seed, spawn_key=key)).standard_normal(n, float32)``,
reproduced bit-exactly in numba kernels that release the GIL.

The link draws every code block's noise from its own ``SeedSequence(seed, spawn_key=(0, j))``
(see ``channels.channel``). Building a ``SeedSequence`` and a ``Generator`` costs tens of
microseconds of Python per block with the GIL held, which caps how far the link scales
over threads (Amdahl). These kernels do the same arithmetic without Python:

::

    seed, spawn_key ──SeedSequence (hashmix pool of 4 words)──► generate_state(4, uint64)
        ──PCG64 seeding (pcg64_set_seed)──► PCG64 XSL-RR 128/64 ──next_uint32──►
        ziggurat (random_standard_normal_f, float32 tables) ──► [n] float32

Sources: ``numpy/random/bit_generator.pyx`` (SeedSequence), ``numpy/random/_pcg64.pyx``
and ``src/pcg64/pcg64.h`` (seeding, step, output), ``src/distributions/distributions.c``
(``random_standard_normal_f``); the ziggurat tables are numba's copy of NumPy's
(``numba.np.random._constants``). ``tests/channels/test_rng.py`` compares millions of
draws (tails and wedges included) with NumPy's own for several seeds and keys.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic
from numba.np.random._constants import (
    fi_float,
    ki_float,
    wi_float,
    ziggurat_nor_inv_r_f,
    ziggurat_nor_r_f,
)

_U64 = np.uint64
_M32 = np.uint64(0xFFFFFFFF)
# SeedSequence constants (numpy/random/bit_generator.pyx).
_INIT_A, _MULT_A = np.uint64(0x43B0D7E5), np.uint64(0x931E8875)
_INIT_B, _MULT_B = np.uint64(0x8B51F9DD), np.uint64(0x58F38DED)
_MIX_L, _MIX_R = np.uint64(0xCA01F9DD), np.uint64(0x4973F715)
_POOL_SIZE = 4
# PCG64's 128-bit multiplier (PCG_DEFAULT_MULTIPLIER_128, src/pcg64/pcg64.h).
_MUL_HI, _MUL_LO = np.uint64(2549297995355413924), np.uint64(4865540595714422341)


def _uint32_words(value: int) -> list[int]:
    """``_int_to_uint32_array`` of bit_generator.pyx: little-endian 32-bit words, [0] for 0."""
    if value < 0:
        raise ValueError(f"seed material {value} must be >= 0")
    words = [] if value else [0]
    while value:
        words.append(value & 0xFFFFFFFF)
        value >>= 32
    return words


def entropy_words(seed: int, spawn_key: tuple[int, ...] = ()) -> np.ndarray:
    """The assembled entropy of ``SeedSequence(seed, spawn_key=spawn_key)``: [w] uint64.

    Each element holds one 32-bit word. With a spawn key the seed's words are padded with
    zeros to the pool size (4) before the key's words, as ``_get_assembled_entropy`` does.
    """
    run = _uint32_words(int(seed))
    spawn = [w for k in spawn_key for w in _uint32_words(int(k))]
    if spawn and len(run) < _POOL_SIZE:
        run += [0] * (_POOL_SIZE - len(run))
    return np.array(run + spawn, dtype=np.uint64)


@intrinsic
def _umul128(typingctx, a, b):
    """Full 64 x 64 -> 128-bit product of two uint64, as (high, low) words."""
    sig = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        i128 = ir.IntType(128)
        p = builder.mul(builder.zext(args[0], i128), builder.zext(args[1], i128))
        hi = builder.trunc(builder.lshr(p, ir.Constant(i128, 64)), ir.IntType(64))
        lo = builder.trunc(p, ir.IntType(64))
        return context.make_tuple(builder, signature.return_type, (hi, lo))

    return sig, codegen


@numba.njit(cache=True, nogil=True, inline="always")
def _step(hi, lo, inc_hi, inc_lo):
    """One PCG64 LCG step: state * MULT + inc (mod 2^128), as (high, low)."""
    ph, pl = _umul128(lo, _MUL_LO)  # type: ignore[call-arg,var-annotated]  # numba intrinsic
    ph = ph + hi * _MUL_LO + lo * _MUL_HI
    nlo = pl + inc_lo
    return ph + inc_hi + (_U64(1) if nlo < pl else _U64(0)), nlo


@numba.njit(cache=True, nogil=True, inline="always")
def _next64(hi, lo, inc_hi, inc_lo):
    """pcg64_next64: step, then the XSL-RR output; returns (output, new hi, new lo)."""
    hi, lo = _step(hi, lo, inc_hi, inc_lo)
    x = hi ^ lo
    rot = hi >> _U64(58)
    return (x >> rot) | (x << ((_U64(64) - rot) & _U64(63))), hi, lo


@numba.njit(cache=True, nogil=True, inline="always")
def _hashmix(value, hash_const):
    value = (value ^ hash_const) & _M32
    hash_const = (hash_const * _MULT_A) & _M32
    value = (value * hash_const) & _M32
    return value ^ (value >> _U64(16)), hash_const


@numba.njit(cache=True, nogil=True, inline="always")
def _mix(x, y):
    r = (_MIX_L * x - _MIX_R * y) & _M32
    return r ^ (r >> _U64(16))


@numba.njit(cache=True, nogil=True)
def seed_state(entropy, state):
    """``PCG64(SeedSequence(...))``: state <- [hi, lo, inc_hi, inc_lo, has_uint32, uinteger].

    Input: entropy [w] uint64 (from :func:`entropy_words`, possibly with the last spawn
    word changed in place). Output: state [6] uint64, written in place.
    """
    pool = np.zeros(_POOL_SIZE, dtype=np.uint64)
    hc = _INIT_A
    for i in range(_POOL_SIZE):  # SeedSequence.mix_entropy
        pool[i], hc = _hashmix(entropy[i] if i < entropy.shape[0] else _U64(0), hc)
    for i_src in range(_POOL_SIZE):
        for i_dst in range(_POOL_SIZE):
            if i_src != i_dst:
                v, hc = _hashmix(pool[i_src], hc)
                pool[i_dst] = _mix(pool[i_dst], v)
    for i_src in range(_POOL_SIZE, entropy.shape[0]):
        for i_dst in range(_POOL_SIZE):
            v, hc = _hashmix(entropy[i_src], hc)
            pool[i_dst] = _mix(pool[i_dst], v)
    words = np.empty(8, dtype=np.uint64)  # generate_state(4, uint64) as 8 uint32 words
    hb = _INIT_B
    for i in range(8):
        v = (pool[i % _POOL_SIZE] ^ hb) & _M32
        hb = (hb * _MULT_B) & _M32
        v = (v * hb) & _M32
        words[i] = v ^ (v >> _U64(16))
    s_hi, s_lo = words[0] | (words[1] << _U64(32)), words[2] | (words[3] << _U64(32))
    q_hi, q_lo = words[4] | (words[5] << _U64(32)), words[6] | (words[7] << _U64(32))
    inc_hi, inc_lo = (q_hi << _U64(1)) | (q_lo >> _U64(63)), (q_lo << _U64(1)) | _U64(1)
    hi, lo = _step(_U64(0), _U64(0), inc_hi, inc_lo)  # pcg_setseq_128_srandom_r
    lo2 = lo + s_lo
    hi = hi + s_hi + (_U64(1) if lo2 < lo else _U64(0))
    hi, lo = _step(hi, lo2, inc_hi, inc_lo)
    state[0], state[1], state[2], state[3], state[4], state[5] = hi, lo, inc_hi, inc_lo, 0, 0


@numba.njit(cache=True, nogil=True)
def _next_uint32(state):
    """pcg64_next32: the low half of a fresh 64-bit output, then its high half."""
    if state[4]:
        state[4] = 0
        return np.uint32(state[5])
    v, state[0], state[1] = _next64(state[0], state[1], state[2], state[3])
    state[4] = 1
    state[5] = v >> _U64(32)
    return np.uint32(v & _M32)


@numba.njit(cache=True, nogil=True)
def _next_float(state):
    return np.float32(_next_uint32(state) >> np.uint32(8)) * np.float32(1.0 / 16777216.0)


@numba.njit(cache=True, nogil=True)
def _normal_slow(state, idx, rabs, x):
    """The ziggurat's rare branches (tail for strip 0, wedge otherwise): (accepted, value).

    Float32 arithmetic as NumPy's C: the wedge test compares in double against
    ``exp(-0.5 * x * x)`` evaluated in double.
    """
    if idx == 0:
        while True:
            xx = np.float32(-ziggurat_nor_inv_r_f * np.log1p(-_next_float(state)))
            yy = np.float32(-np.log1p(-_next_float(state)))
            if np.float32(yy + yy) > np.float32(xx * xx):
                if (rabs >> np.uint32(8)) & np.uint32(1):
                    return True, -np.float32(ziggurat_nor_r_f + xx)
                return True, np.float32(ziggurat_nor_r_f + xx)
    u = _next_float(state)
    f = np.float32(np.float32((fi_float[idx - 1] - fi_float[idx]) * u) + fi_float[idx])
    return np.float64(f) < np.exp(-0.5 * np.float64(x) * np.float64(x)), x


@numba.njit(cache=True, nogil=True)
def standard_normal_fill(state, out):
    """out[:] <- successive ``random_standard_normal_f`` draws; state advances in place.

    Input/Output: state [6] uint64 (from :func:`seed_state`), out [n] float32.
    The common branch (99.3%) keeps the PCG state in registers.
    """
    hi, lo, inc_hi, inc_lo, has, buf = state[0], state[1], state[2], state[3], state[4], state[5]
    i = 0
    while i < out.shape[0]:
        if has:
            r = np.uint32(buf)
            has = _U64(0)
        else:
            v, hi, lo = _next64(hi, lo, inc_hi, inc_lo)
            r = np.uint32(v & _M32)
            buf = v >> _U64(32)
            has = _U64(1)
        idx = r & np.uint32(0xFF)
        rabs = (r >> np.uint32(9)) & np.uint32(0x7FFFFF)
        x = np.float32(np.float32(rabs) * wi_float[idx])
        if (r >> np.uint32(8)) & np.uint32(1):
            x = -x
        if rabs < ki_float[idx]:
            out[i] = x
            i += 1
            continue
        state[0], state[1], state[4], state[5] = hi, lo, has, buf
        ok, x = _normal_slow(state, idx, rabs, x)
        hi, lo, has, buf = state[0], state[1], state[4], state[5]
        if ok:
            out[i] = x
            i += 1
    state[0], state[1], state[4], state[5] = hi, lo, has, buf


def standard_normal(seed: int, spawn_key: tuple[int, ...], count: int) -> np.ndarray:
    """``default_rng(SeedSequence(seed, spawn_key=spawn_key)).standard_normal(count,
    dtype=np.float32)``, bit for bit: [count] float32."""
    state = np.empty(6, dtype=np.uint64)
    seed_state(entropy_words(seed, spawn_key), state)
    out = np.empty(count, dtype=np.float32)
    standard_normal_fill(state, out)
    return out
