"""The link's stages as torch/Triton operations on one device (CUDA; CPU for tests).

::

    u [N, k] uint8 ─encode─► c [N, n] ─qam_map─► x [N, S] complex64
        ─flat_channel (counter-based noise)─► x_eq, noise_var [N, S]
        ─demap─► llr [N, n] ─recover─► l_ch [N, n_dec] ─decode_llrs─► u_hat [N, k], iterations

Conventions are those of the CPU chain (``channels.ldpc``, ``channels.modulation``,
``channels.channel``): coded bits in the 5G interleaved order, LLRs as logits
``log p(1)/p(0)``, Es = 1, ``x_eq = y / h`` and ``noise_var = no / |h|^2`` (perfect CSI).

* **Encoding** is one matrix product over GF(2): ``c = u G mod 2`` with the generator
  ``G`` [k, n] *derived* from the numba encoder (it encodes the unit vectors), so the
  two encoders cannot disagree. Transmitted systematic bits are a gather of ``u``; only
  the parity columns are multiplied (int8 tensor cores on CUDA, exact int32 sums).
* **Noise and fading** come from Philox-4x32-10 keyed by the payload seed,
  with counter (symbol, block index, stream): the same (seed, block, symbol) gives the
  same sample whatever the batching (a different stream from the CPU chain's NumPy
  generator, with the same distribution). Box-Muller on 32-bit uniforms in (0, 1).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from channels.gpu._triton import INTERPRET, check_device, require_triton, tl, triton
from channels.ldpc import (
    LLR_MAX,
    FastLdpcEncoder,
    LdpcCode,
    build_code,
    rate_match_positions,
)
from channels.modulation import pam_levels, qam_points
from channels.segmentation import crc24b

#: Channel kinds of the channel kernel (``channels.config.CHANNELS`` plus the interval case).
CHANNEL_KIND = {"awgn": 0, "rayleigh-block": 1, "rayleigh-fast": 2}
_KIND_INTERVAL = 3  # rayleigh-block with block_symbols: one gain per T symbols of the stream


@functools.lru_cache(maxsize=4)
def _generator(k: int, n: int, bits_per_symbol: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(sys_t, sys_src, par_t, G_par): transmitted systematic positions and their info bit,
    transmitted parity positions and their generator columns [k, n_par] uint8."""
    code = build_code(k, n, bits_per_symbol)
    pos = rate_match_positions(code)
    systematic = pos < code.k  # filler bits are never transmitted
    g = FastLdpcEncoder(code)(np.eye(code.k, dtype=np.uint8))  # row i: codeword of e_i
    par_t = np.flatnonzero(~systematic)
    return (np.flatnonzero(systematic), pos[systematic].astype(np.int64), par_t,
            np.ascontiguousarray(g[:, par_t]))


class GpuEncoder:
    """5G LDPC encoder as ``c = u G mod 2`` on ``device`` (bit-exact with the numba one).

    Input: u [N, k] uint8 (0/1). Output: c [N, n] uint8, interleaved transmit order.
    """

    def __init__(self, code: LdpcCode, device: torch.device | str) -> None:
        self.code = code
        self.device = torch.device(device)
        sys_t, sys_src, par_t, g_par = _generator(code.k, code.n, code.bits_per_symbol)
        self.sys_t = torch.from_numpy(sys_t).to(self.device)
        self.sys_src = torch.from_numpy(sys_src).to(self.device)
        self.par_t = torch.from_numpy(par_t).to(self.device)
        self.num_par = g_par.shape[1]
        pad = -self.num_par % 8  # torch._int_mm wants column counts divisible by 8
        g = np.pad(g_par, ((0, 0), (0, pad)))
        self.g_int8 = torch.from_numpy(g.astype(np.int8)).to(self.device)
        self.g_float = self.g_int8.to(torch.float32) if self.device.type == "cpu" else None
        src = np.full(code.n, 0, dtype=np.int32)  # transmitted bit -> info bit / -(parity+1)
        src[sys_t] = sys_src
        src[par_t] = -1 - np.arange(len(par_t))
        self.src = torch.from_numpy(src).to(self.device)

    def parity(self, u: torch.Tensor) -> torch.Tensor:
        """[N, k] uint8 -> [N, >= n_par] int32 GF(2)-sums (bit = sum & 1) of the parity bits
        transmitted, in transmit order (``par_t``)."""
        if u.ndim != 2 or u.shape[1] != self.code.k:
            raise ValueError(f"encoder input shape {tuple(u.shape)} is not [N, {self.code.k}]")
        if self.g_float is not None:
            return (u.to(torch.float32) @ self.g_float).to(torch.int32)  # sums < 2^24: exact
        return _gf2_sums(u, self.g_int8)

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        if u.ndim != 2 or u.shape[1] != self.code.k:
            raise ValueError(f"encoder input shape {tuple(u.shape)} is not [N, {self.code.k}]")
        par = self.parity(u)
        c = torch.empty((u.shape[0], self.code.n), dtype=torch.uint8, device=u.device)
        c[:, self.sys_t] = u[:, self.sys_src]
        c[:, self.par_t] = (par[:, : self.num_par] & 1).to(torch.uint8)
        return c


def _gf2_sums(u: torch.Tensor, g_int8: torch.Tensor) -> torch.Tensor:
    """Integer sums u @ G of 0/1 matrices (bit = sum & 1): [N, k] uint8 x [k, c] int8 ->
    [N, c] int32. int8 tensor cores on CUDA (exact int32 sums); fp32 elsewhere (exact below
    2^24)."""
    if u.device.type == "cpu" or u.shape[0] <= 16:  # torch._int_mm needs > 16 rows
        return (u.to(torch.float32) @ g_int8.to(torch.float32)).to(torch.int32)
    try:
        return torch._int_mm(u.contiguous().view(torch.int8), g_int8)
    except RuntimeError:  # a build/GPU without int8 GEMM (or k % 8 != 0): fp32 is exact
        return (u.to(torch.float32) @ g_int8.to(torch.float32)).to(torch.int32)


@functools.lru_cache(maxsize=4)
def _crc_matrix(k: int) -> np.ndarray:
    """[k, 24] uint8: row i = CRC24B remainder bits (first parity bit first) of the k-bit
    block with only bit i set. CRC24B (zero init, no final XOR) is linear over GF(2), so a
    block's remainder is the XOR of its set bits' rows; derived from ``crc24b`` itself."""
    eye = np.packbits(np.eye(k, dtype=np.uint8), axis=1)
    rem = crc24b(eye)
    return ((rem[:, None] >> np.arange(23, -1, -1, dtype=np.uint32)) & 1).astype(np.uint8)


class GpuCrc:
    """CRC24B check and byte packing of decoded blocks on ``device`` (``BlockLayout``
    conventions: bits MSB first, the block's last 24 bits its CRC).

    Input: u [N, k] uint8 bits. ``ok(u)`` -> [N] bool (remainder zero, as
    ``BlockLayout.crc_ok``); ``pack(u)`` -> [N, k/8] uint8 (as ``np.packbits(u, axis=1)``).
    """

    def __init__(self, k: int, device: torch.device | str) -> None:
        if k % 8 or k < 32:
            raise ValueError(f"block size k={k} must be a multiple of 8 and >= 32")
        self.k = k
        self.matrix = torch.from_numpy(_crc_matrix(k).astype(np.int8)).to(device)
        self.shifts = torch.arange(7, -1, -1, dtype=torch.int32, device=device)

    def ok(self, u: torch.Tensor) -> torch.Tensor:
        return ((_gf2_sums(u, self.matrix) & 1) == 0).all(dim=1)

    def pack(self, u: torch.Tensor) -> torch.Tensor:
        bits = u.reshape(u.shape[0], -1, 8).to(torch.int32)
        return (bits << self.shifts).sum(dim=2).to(torch.uint8)


class GpuModem:
    """Gray QAM mapping and soft demapping in torch (``channels.modulation`` conventions).

    Parameters
    ----------
    bits_per_symbol : {2, 4, 6, 8}
    device : torch device
    """

    def __init__(self, bits_per_symbol: int, device: torch.device | str) -> None:
        self.bits_per_symbol = m = bits_per_symbol
        points = qam_points(m)  # validates m
        self.points = torch.from_numpy(np.stack([points.real, points.imag], -1)).to(device)
        h = m // 2
        levels = pam_levels(h)
        norm = np.sqrt(2.0 * np.mean(levels**2))
        self.levels = torch.from_numpy((levels / norm).astype(np.float32)).to(device)
        labels = np.arange(2**h)
        bits = (labels[:, None] >> np.arange(h - 1, -1, -1)) & 1  # [2^h, h] MSB first
        self.label_bits = torch.from_numpy(bits.astype(bool)).to(device)
        self.weights = torch.from_numpy(1 << np.arange(m - 1, -1, -1)).to(device)

    def map(self, bits: torch.Tensor) -> torch.Tensor:
        """[N, S*m] uint8 -> [N, S] complex64 (label = bits MSB first)."""
        m = self.bits_per_symbol
        if bits.ndim != 2 or bits.shape[1] % m:
            raise ValueError(f"bits shape {tuple(bits.shape)} is not [N, multiple of {m}]")
        label = (bits.view(bits.shape[0], -1, m).to(torch.int64) * self.weights).sum(-1)
        return torch.view_as_complex(self.points[label].contiguous())

    def demap(self, y: torch.Tensor, noise_var: torch.Tensor, method: str) -> torch.Tensor:
        """Soft demapping per real dimension, as ``QamModem.demap``.

        Input: y [N, S] complex64, noise_var [N, S] float32 (> 0), method "app" | "maxlog".
        Output: llr [N, S*m] float32, logits log p(1)/p(0) in mapped bit order.
        """
        if method not in ("app", "maxlog"):
            raise ValueError(f"demapping method {method!r} not one of ['app', 'maxlog']")
        yr = torch.view_as_real(y)  # [N, S, 2]
        inv_no = 1.0 / torch.clamp(noise_var, min=1e-30)
        d = yr[..., None] - self.levels  # [N, S, 2, L]
        metric = -(d * d) * inv_no[..., None, None]
        h = self.bits_per_symbol // 2
        neg = torch.finfo(torch.float32).min
        out = []
        for b in range(h):  # label bit b of each dimension -> transmitted bit 2b + dim
            one = self.label_bits[:, b]
            m1 = metric.masked_fill(~one, neg)
            m0 = metric.masked_fill(one, neg)
            if method == "app" and h > 1:
                out.append(torch.logsumexp(m1, -1) - torch.logsumexp(m0, -1))
            else:
                out.append(m1.amax(-1) - m0.amax(-1))
        return torch.stack(out, dim=2).reshape(y.shape[0], -1)  # [N, S, h, 2] -> [N, S*m]


def recover(code: LdpcCode, positions: torch.Tensor, llr: torch.Tensor,
            llr_max: float = LLR_MAX, out: torch.Tensor | None = None) -> torch.Tensor:
    """Rate recovery as ``FastLdpcDecoder.recover``: [N, n] logits -> [N, n_dec] l_ch.

    ``positions`` [n] int64 is ``rate_match_positions(code)`` on llr's device; ``out`` is
    added to (HARQ combining). Punctured/untransmitted bits 0, fillers +llr_max.
    """
    if llr.ndim != 2 or llr.shape[1] != code.n:
        raise ValueError(f"decoder input shape {tuple(llr.shape)} is not [N, {code.n}]")
    if out is None:
        out = torch.zeros((llr.shape[0], code.n_dec), dtype=torch.float32, device=llr.device)
    out.index_add_(1, positions, -llr.to(torch.float32))
    out.clamp_(-llr_max, llr_max)
    out[:, code.k:code.k_ldpc] = llr_max
    return out


if triton is not None:

    @triton.jit
    def _philox(seed, c0, c1, c2, c3):
        """Philox-4x32-10 (Salmon et al., SC'11), as ``tl.philox``; written out here so
        the kernel holds no Triton library function (the interpreter cannot run those
        when triton was imported before interpreter mode was switched on)."""
        k0 = (seed & 0xFFFFFFFF).to(tl.uint32)
        k1 = ((seed >> 32) & 0xFFFFFFFF).to(tl.uint32)
        for _ in tl.static_range(10):
            _c0, _c2 = c0, c2
            c0 = tl.umulhi(0xCD9E8D57, _c2) ^ c1 ^ k0
            c2 = tl.umulhi(0xD2511F53, _c0) ^ c3 ^ k1
            c1 = tl.mul(0xCD9E8D57, _c2, sanitize_overflow=False)
            c3 = tl.mul(0xD2511F53, _c0, sanitize_overflow=False)
            k0 = tl.add(k0, 0x9E3779B9, sanitize_overflow=False)
            k1 = tl.add(k1, 0xBB67AE85, sanitize_overflow=False)
        return c0, c1, c2, c3

    @triton.jit
    def _uniform(r):
        """uint32 -> float32 uniform in (0, 1] (never 0, so log() is finite)."""
        return (r.to(tl.float32) + 0.5) * 2.3283064365386963e-10

    @triton.jit
    def _complex_normal(r0, r1):
        """Box-Muller: two uint32 -> one CN(0, 1) sample (re, im)."""
        rad = tl.sqrt(-tl.log(_uniform(r0)))  # sqrt(-2 ln u) / sqrt(2)
        th = 6.283185307179586 * _uniform(r1)
        return rad * tl.cos(th), rad * tl.sin(th)

    @triton.jit
    def _channel_apply(xr, xi, s, seed, blk, no, num_sym, block_symbols, KIND: tl.constexpr):
        """Symbols (xr, xi) at indices s of block ``blk`` of payload ``seed`` through the
        channel: returns the equalised (yr, yi) and noise_var (see :func:`flat_channel`)."""
        zero = s.to(tl.uint32) * 0
        b_lo = (blk & 0xFFFFFFFF).to(tl.uint32) + zero
        b_hi = (blk >> 32).to(tl.uint32) + zero
        r0, r1, r2, r3 = _philox(seed, s.to(tl.uint32), b_lo, b_hi, zero)  # stream 0
        nr, ni = _complex_normal(r0, r1)
        sd = tl.sqrt(no)
        nr = nr * sd
        ni = ni * sd
        if KIND == 0:
            yr = xr + nr
            yi = xi + ni
            nv = no + s.to(tl.float32) * 0.0
        else:
            if KIND == 2:  # rayleigh-fast: the same counter's other two words
                hr, hi = _complex_normal(r2, r3)
            elif KIND == 1:  # one gain per code block: stream 1, symbol counter 0
                g0, g1, g2, g3 = _philox(seed, zero, b_lo, b_hi, zero + 1)
                hr, hi = _complex_normal(g0, g1)
            else:  # one gain per block_symbols symbols of the payload's stream: stream 2
                iv = (blk * num_sym + s) // block_symbols
                g0, g1, g2, g3 = _philox(seed, (iv & 0xFFFFFFFF).to(tl.uint32),
                                           (iv >> 32).to(tl.uint32), zero, zero + 2)
                hr, hi = _complex_normal(g0, g1)
            gain = hr * hr + hi * hi
            ar = hr * xr - hi * xi + nr  # y = h x + n
            ai = hr * xi + hi * xr + ni
            yr = (ar * hr + ai * hi) / gain  # y / h = y conj(h) / |h|^2
            yi = (ai * hr - ar * hi) / gain
            nv = no / gain
        return yr, yi, nv

    @triton.jit
    def _channel_kernel(x_ptr, xeq_ptr, nv_ptr, seed_ptr, block_ptr, no_ptr, num_sym,
                        block_symbols, KIND: tl.constexpr, BS: tl.constexpr):
        """One program: BS symbols of one block. x/xeq: [N, S, 2] float32."""
        row = tl.program_id(0)
        s = tl.program_id(1) * BS + tl.arange(0, BS)
        ok = s < num_sym
        off = row.to(tl.int64) * num_sym * 2 + s * 2
        xr = tl.load(x_ptr + off, mask=ok, other=0.0)
        xi = tl.load(x_ptr + off + 1, mask=ok, other=0.0)
        yr, yi, nv = _channel_apply(xr, xi, s, tl.load(seed_ptr + row), tl.load(block_ptr + row),
                                    tl.load(no_ptr + row), num_sym, block_symbols, KIND)
        tl.store(xeq_ptr + off, yr, mask=ok)
        tl.store(xeq_ptr + off + 1, yi, mask=ok)
        tl.store(nv_ptr + row.to(tl.int64) * num_sym + s, nv, mask=ok)

    @triton.jit
    def _coded_bit(u_ptr, par_ptr, src_ptr, row, t, ok, k, par_stride):
        """Transmitted bit t of the codeword of info bits u[row] (0 where not ok): a
        systematic bit (src >= 0: u[row, src]) or parity bit -src-1 (par sum & 1)."""
        src = tl.load(src_ptr + t, mask=ok, other=0)
        sys = ok & (src >= 0)
        prt = ok & (src < 0)
        ub = tl.load(u_ptr + row.to(tl.int64) * k + src, mask=sys, other=0).to(tl.int32)
        pb = tl.load(par_ptr + (row.to(tl.int64) * par_stride - src - 1), mask=prt, other=0)
        return tl.where(sys, ub, pb & 1)

    @triton.jit
    def _map_channel_kernel(u_ptr, par_ptr, src_ptr, levels_ptr, xeq_ptr, nv_ptr, seed_ptr,
                            block_ptr, no_ptr, scr_ptr, num_sym, n, k, par_stride,
                            block_symbols, M: tl.constexpr, KIND: tl.constexpr,
                            SCR: tl.constexpr, BS: tl.constexpr):
        """Encoder output assembly + scrambling + Gray QAM mapping + channel for BS symbols
        of one block: label bit b of dimension dim is transmitted bit s*M + 2b + dim (MSB
        first); with SCR it is XORed with c(blk * S*M + t) of the flat sequence scr_ptr."""
        row = tl.program_id(0)
        s = tl.program_id(1) * BS + tl.arange(0, BS)
        ok = s < num_sym
        blk = tl.load(block_ptr + row)
        lab_r = tl.zeros([BS], dtype=tl.int32)
        lab_i = tl.zeros([BS], dtype=tl.int32)
        for b in tl.static_range(M // 2):
            t = s * M + 2 * b
            br = _coded_bit(u_ptr, par_ptr, src_ptr, row, t, ok & (t < n), k, par_stride)
            bi = _coded_bit(u_ptr, par_ptr, src_ptr, row, t + 1, ok & (t + 1 < n), k,
                            par_stride)
            if SCR:  # padding bits (t >= n) are scrambled too, as on the CPU
                base = scr_ptr + blk * num_sym * M + t
                br = br ^ tl.load(base, mask=ok, other=0).to(tl.int32)
                bi = bi ^ tl.load(base + 1, mask=ok, other=0).to(tl.int32)
            lab_r = lab_r * 2 + br
            lab_i = lab_i * 2 + bi
        xr = tl.load(levels_ptr + lab_r)
        xi = tl.load(levels_ptr + lab_i)
        yr, yi, nv = _channel_apply(xr, xi, s, tl.load(seed_ptr + row), blk,
                                    tl.load(no_ptr + row), num_sym, block_symbols, KIND)
        off = row.to(tl.int64) * num_sym * 2 + s * 2
        tl.store(xeq_ptr + off, yr, mask=ok)
        tl.store(xeq_ptr + off + 1, yi, mask=ok)
        tl.store(nv_ptr + row.to(tl.int64) * num_sym + s, nv, mask=ok)

    @triton.jit
    def _bit_llr(y, inv_no, levels_ptr, B: tl.constexpr, H: tl.constexpr, L: tl.constexpr,
                 APP: tl.constexpr):
        """Logit log p(1)/p(0) of label bit B of one PAM dimension (metric -(y-l)^2/nv)."""
        mx1 = y * 0.0 - 3.0e38
        mx0 = y * 0.0 - 3.0e38
        for p in tl.static_range(L):
            d = y - tl.load(levels_ptr + p)
            met = -(d * d) * inv_no
            if (p >> (H - 1 - B)) & 1:
                mx1 = tl.maximum(mx1, met)
            else:
                mx0 = tl.maximum(mx0, met)
        if APP:  # (QPSK: the host passes APP=False, app == max-log)
            s1 = y * 0.0
            s0 = y * 0.0
            for p in tl.static_range(L):
                d = y - tl.load(levels_ptr + p)
                met = -(d * d) * inv_no
                if (p >> (H - 1 - B)) & 1:
                    s1 += tl.exp(met - mx1)
                else:
                    s0 += tl.exp(met - mx0)
            llr = (mx1 + tl.log(s1)) - (mx0 + tl.log(s0))
        else:
            llr = mx1 - mx0
        return llr

    @triton.jit
    def _demap_recover_kernel(xeq_ptr, nv_ptr, levels_ptr, pos_ptr, out_ptr, block_ptr,
                              scr_ptr, num_sym, n, n_dec, llr_max, M: tl.constexpr,
                              L: tl.constexpr, APP: tl.constexpr, SCR: tl.constexpr,
                              BS: tl.constexpr):
        """Soft demapping + descrambling + rate recovery of BS symbols of one block:
        l_ch[row, pos[t]] = clip(-llr_t (1 - 2 c_t)) (positions distinct; out pre-filled
        with 0 / fillers +llr_max; c_t = scr[blk * S*M + t] with SCR, else 0)."""
        row = tl.program_id(0)
        s = tl.program_id(1) * BS + tl.arange(0, BS)
        ok = s < num_sym
        off = row.to(tl.int64) * num_sym * 2 + s * 2
        inv_no = 1.0 / tl.maximum(tl.load(nv_ptr + row.to(tl.int64) * num_sym + s, mask=ok,
                                          other=1.0), 1e-30)
        for dim in tl.static_range(2):
            y = tl.load(xeq_ptr + off + dim, mask=ok, other=0.0)
            for b in tl.static_range(M // 2):
                llr = _bit_llr(y, inv_no, levels_ptr, b, M // 2, L, APP)
                t = s * M + 2 * b + dim
                tok = ok & (t < n)
                p = tl.load(pos_ptr + t, mask=tok, other=0)
                if SCR:  # descramble: flip the sign where c = 1
                    c = tl.load(scr_ptr + tl.load(block_ptr + row) * num_sym * M + t,
                                mask=tok, other=0)
                    llr = tl.where(c != 0, -llr, llr)
                val = tl.minimum(tl.maximum(-llr, -llr_max), llr_max)
                tl.store(out_ptr + row.to(tl.int64) * n_dec + p, val, mask=tok)


def flat_channel(x: torch.Tensor, no: torch.Tensor, seeds: torch.Tensor, blocks: torch.Tensor,
                 kind: str, block_symbols: int | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat channel with perfect CSI, noise and gains from counter-based Philox.

    Input
    -----
    x : [N, S] complex64        transmitted symbols (block j of payload seeds[r] in row r)
    no : [N] float32            complex noise variance N0 per row
    seeds, blocks : [N] int64   payload seed (>= 0) and block index of each row
    kind : "awgn" | "rayleigh-block" | "rayleigh-fast"
    block_symbols : rayleigh-block coherence in symbols (None: one gain per block)

    Output
    ------
    x_eq : [N, S] complex64 (y / h), noise_var : [N, S] float32 (no / |h|^2)
    """
    require_triton()
    if kind not in CHANNEL_KIND:
        raise ValueError(f"channel {kind!r} not one of {list(CHANNEL_KIND)}")
    check_device(x, "x")
    num, sym = x.shape
    code = _KIND_INTERVAL if kind == "rayleigh-block" and block_symbols else CHANNEL_KIND[kind]
    xr = torch.view_as_real(x.contiguous())
    x_eq = torch.empty_like(xr)
    noise_var = torch.empty((num, sym), dtype=torch.float32, device=x.device)
    if num:
        bs = min(1 << 14 if INTERPRET else 1024, 1 << (sym - 1).bit_length())  # few programs

        _channel_kernel[(num, triton.cdiv(sym, bs))](
            xr, x_eq, noise_var, seeds.to(torch.int64).contiguous(),
            blocks.to(torch.int64).contiguous(), no.to(torch.float32).contiguous(), sym,
            int(block_symbols or 1), KIND=code, BS=bs)
    return torch.view_as_complex(x_eq), noise_var


def _symbols_per_program(sym: int) -> int:
    return min(1 << 14 if INTERPRET else 256, 1 << (sym - 1).bit_length())


def map_channel(encoder: GpuEncoder, u: torch.Tensor, levels: torch.Tensor, no: torch.Tensor,
                seeds: torch.Tensor, blocks: torch.Tensor, kind: str,
                block_symbols: int | None = None,
                out: tuple[torch.Tensor, torch.Tensor] | None = None,
                scramble: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused ``encoder(u)`` -> scrambling -> ``GpuModem.map`` -> :func:`flat_channel` (same
    numbers): one GF(2) GEMM for the parity sums, then one kernel assembles each
    transmitted bit (info bit or parity sum & 1), scrambles, maps and sends it (the
    codeword is never stored).

    Input: u [N, k] uint8, levels [2^(m/2)] float32 (``GpuModem.levels``), no/seeds/blocks
    [N] as :func:`flat_channel`; ``out`` optional (x_eq [N, S, 2] float32, nv [N, S]);
    ``scramble`` optional flat Gold sequence [>= (max(blocks)+1) * S*m] uint8 (block j's
    bits are ``scramble[j*S*m:(j+1)*S*m]``, ``channels.scrambling.Scrambler.covering``).
    Output: x_eq [N, S] complex64, noise_var [N, S] float32.
    """
    require_triton()
    if kind not in CHANNEL_KIND:
        raise ValueError(f"channel {kind!r} not one of {list(CHANNEL_KIND)}")
    check_device(u, "u")
    code = encoder.code
    m = code.bits_per_symbol
    num, sym = u.shape[0], -(-code.n // m)
    u = u.contiguous()
    par = encoder.parity(u)
    if out is None:
        out = (torch.empty((num, sym, 2), dtype=torch.float32, device=u.device),
               torch.empty((num, sym), dtype=torch.float32, device=u.device))
    x_eq, noise_var = out
    if num:
        bs = _symbols_per_program(sym)
        kcode = _KIND_INTERVAL if kind == "rayleigh-block" and block_symbols else CHANNEL_KIND[kind]
        blocks = blocks.to(torch.int64).contiguous()
        scr = _check_scramble(scramble, blocks, sym * m, u)
        _map_channel_kernel[(num, triton.cdiv(sym, bs))](
            u, par, encoder.src, levels, x_eq, noise_var, seeds.to(torch.int64).contiguous(),
            blocks, no.to(torch.float32).contiguous(), scr, sym,
            code.n, code.k, par.stride(0), int(block_symbols or 1), M=m, KIND=kcode,
            SCR=scramble is not None, BS=bs)
    return torch.view_as_complex(x_eq), noise_var


def channel_template(code: LdpcCode, device: torch.device | str,
                     llr_max: float = LLR_MAX) -> torch.Tensor:
    """[n_dec] float32: what ``recover`` gives where nothing is received (0; fillers
    +llr_max): the pre-fill of :func:`demap_recover`'s output."""
    t = torch.zeros(code.n_dec, dtype=torch.float32)
    t[code.k:code.k_ldpc] = llr_max
    return t.to(device)


def demap_recover(code: LdpcCode, positions: torch.Tensor, levels: torch.Tensor,
                  x_eq: torch.Tensor, noise_var: torch.Tensor, method: str,
                  template: torch.Tensor, llr_max: float = LLR_MAX,
                  out: torch.Tensor | None = None, blocks: torch.Tensor | None = None,
                  scramble: torch.Tensor | None = None) -> torch.Tensor:
    """Fused ``GpuModem.demap`` -> descrambling -> :func:`recover` (no HARQ combining): one
    kernel writes each bit's clipped ``-llr`` (sign flipped where the scrambling bit of
    block ``blocks[row]`` is 1, as ``Scrambler.descramble_llr``) to its mother-code
    position in ``out`` [N, n_dec]. ``scramble``/``blocks``: as :func:`map_channel` (both
    or neither).

    ``positions`` [n] int32 must be distinct (rate matching without repetition; use
    ``recover`` otherwise), ``template`` = :func:`channel_template`. Input x_eq [N, S]
    complex64, noise_var [N, S] float32; output l_ch [N, n_dec] float32.
    """
    require_triton()
    if method not in ("app", "maxlog"):
        raise ValueError(f"demapping method {method!r} not one of ['app', 'maxlog']")
    check_device(x_eq, "x_eq")
    m = code.bits_per_symbol
    num, sym = x_eq.shape
    if sym * m < code.n or positions.shape != (code.n,):
        raise ValueError(f"x_eq {tuple(x_eq.shape)} / positions {tuple(positions.shape)} do "
                         f"not fit n={code.n} at {m} bits per symbol")
    if out is None:
        out = torch.empty((num, code.n_dec), dtype=torch.float32, device=x_eq.device)
    out.copy_(template.expand(num, -1))
    if num:
        bs = _symbols_per_program(sym)
        if (blocks is None) != (scramble is None):
            raise ValueError("demap_recover needs both blocks and scramble, or neither")
        blk = blocks.to(torch.int64).contiguous() if blocks is not None else \
            torch.zeros(num, dtype=torch.int64, device=x_eq.device)
        scr = _check_scramble(scramble, blk, sym * m, x_eq)
        _demap_recover_kernel[(num, triton.cdiv(sym, bs))](
            torch.view_as_real(x_eq.contiguous()), noise_var.contiguous(), levels, positions,
            out, blk, scr, sym, code.n, code.n_dec, float(llr_max), M=m, L=2 ** (m // 2),
            APP=method == "app" and m > 2, SCR=scramble is not None, BS=bs)
    return out


def _check_scramble(scramble: torch.Tensor | None, blocks: torch.Tensor, block_bits: int,
                    like: torch.Tensor) -> torch.Tensor:
    """The scrambling pointer for a kernel: ``scramble`` checked (uint8 on ``like``'s
    device, long enough for every block), or a 1-element dummy when None."""
    if scramble is None:
        return torch.zeros(1, dtype=torch.uint8, device=like.device)
    need = (int(blocks.max()) + 1) * block_bits if blocks.numel() else 0
    if scramble.dtype != torch.uint8 or scramble.ndim != 1 or scramble.numel() < need \
            or scramble.device != like.device:
        raise ValueError(f"scramble must be a flat uint8 tensor on {like.device} of >= {need} "
                         f"bits, got {scramble.dtype} {tuple(scramble.shape)} on "
                         f"{scramble.device}")
    return scramble.contiguous()


def scramble_bits(coded: torch.Tensor, scramble: torch.Tensor, blocks: torch.Tensor
                  ) -> torch.Tensor:
    """Stage-by-stage scrambling: coded [N, L] uint8 xor the flat sequence's rows of
    ``blocks`` (as ``Scrambler.scramble``) -> [N, L] uint8."""
    length = coded.shape[1]
    _check_scramble(scramble, blocks, length, coded)
    idx = blocks.to(torch.int64)[:, None] * length + torch.arange(length, device=coded.device)
    return coded ^ scramble[idx]


def descramble_llr(llr: torch.Tensor, scramble: torch.Tensor, blocks: torch.Tensor
                   ) -> torch.Tensor:
    """Stage-by-stage descrambling: llr [N, L] float32 with its sign flipped where the
    block's scrambling bit is 1 (as ``Scrambler.descramble_llr``) -> [N, L] float32."""
    length = llr.shape[1]
    _check_scramble(scramble, blocks, length, llr)
    idx = blocks.to(torch.int64)[:, None] * length + torch.arange(length, device=llr.device)
    return torch.where(scramble[idx] != 0, -llr, llr)
