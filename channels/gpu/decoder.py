"""Layered offset min-sum 5G LDPC decoding on the GPU: a Triton kernel and a torch one.

Both run exactly the algorithm of the numba decoder (:class:`channels.ldpc.FastLdpcDecoder`)
on the same internal LLRs ``l_ch`` (its ``recover`` output), so they reach the same
verdicts block for block:

* layers (base-graph rows) in order, edges of a layer in order; per check row the
  running minimum, second minimum, first argmin and sign product of
  ``|v2c| = min(|APP - c2v|, llr_max)``; offset ``max(min - beta, 0)`` once per row;
  new c2v = extrinsic sign * extrinsic magnitude, ``APP = v2c + c2v`` (float32 throughout,
  the same operations in the same order, so the same rounding);
* sign(0) = +1; per-codeword early termination on a zero syndrome of the hard decisions
  (APP < 0 -> 1) checked after every full iteration; ``iterations`` = iterations run.

Triton kernel (:func:`decode_llrs`)
-----------------------------------
One program decodes ``BW`` codewords (``BW = 1`` on a GPU) over ``ZP`` lanes (Z rounded
up to a power of two, masked): lane i works on check row i of the current layer, i.e.
on APP ``col*Z + (i + shift) % Z`` of each edge's column block. The APP vector lives in
global memory (``[N, n_dec]``, 35 KB per k=4096 codeword: L1/L2 resident while one
program works on it), c2v messages in ``[N, E, Z]`` float32 (never zero-filled: the first
iteration reads 0 instead). A layer does two passes over its edges (v2c statistics, then
c2v + APP write-back, recomputing ``APP - c2v`` bit-identically instead of storing it),
then ``tl.debug_barrier()`` so the next layer's lanes (other warps) see the new APP.
A program stops as soon as its codewords' syndromes are zero.

The torch variant (:func:`decode_llrs_torch`) runs the same schedule on all codewords
at once, one layer at a time (gather, top-2 minimum, scatter), freezing converged
codewords; it is the CPU test reference of the schedule and the benchmark's
"pure torch" alternative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from channels.gpu._triton import check_device, require_triton, tl, triton
from channels.ldpc import LLR_MAX, LdpcCode


@dataclass(frozen=True)
class DecoderTables:
    """A code's decoder index tables on one device (int32 tensors, see ``LdpcCode``)."""

    code: LdpcCode
    layer_ptr: torch.Tensor  # [num_layers + 1]
    edge_col: torch.Tensor  # [E]
    edge_shift: torch.Tensor  # [E]

    @classmethod
    def build(cls, code: LdpcCode, device: torch.device | str) -> DecoderTables:
        def t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int32)).to(device)

        return cls(code, t(code.layer_ptr), t(code.edge_col), t(code.edge_shift))

    @property
    def num_edges(self) -> int:
        return int(self.code.layer_ptr[-1])


if triton is not None:

    @triton.jit
    def _decode_kernel(app_ptr, c2v_ptr, uhat_ptr, iters_ptr, layer_ptr, edge_col, edge_shift,
                       num_cw, n_dec, num_edges, k, num_iter, offset, llr_max,
                       Z: tl.constexpr, ZP: tl.constexpr, BW: tl.constexpr,
                       NUM_LAYERS: tl.constexpr, KCOLS: tl.constexpr):
        """Decode codewords pid*BW .. pid*BW+BW-1 in place in app ([N, n_dec] float32)."""
        cw = tl.program_id(0) * BW + tl.arange(0, BW)
        cw_ok = cw < num_cw
        lane = tl.arange(0, ZP)
        lane_ok = lane < Z
        base_app = cw.to(tl.int64)[:, None] * n_dec
        base_c2v = cw.to(tl.int64)[:, None] * num_edges * Z + lane[None, :]
        active = cw_ok
        iters = tl.zeros([BW], dtype=tl.int32) + num_iter
        n_active = tl.sum(active.to(tl.int32), axis=0)
        it = 0
        while (it < num_iter) & (n_active > 0):
            mask = active[:, None] & lane_ok[None, :]
            rmask = mask & (it > 0)  # c2v memory is uninitialised: read 0 in iteration 1
            for layer in range(NUM_LAYERS):
                e0 = tl.load(layer_ptr + layer)
                e1 = tl.load(layer_ptr + layer + 1)
                m1 = tl.full([BW, ZP], 1e30, tl.float32)
                m2 = tl.full([BW, ZP], 1e30, tl.float32)
                idx = tl.full([BW, ZP], -1, tl.int32)
                sg = tl.full([BW, ZP], 1.0, tl.float32)
                for e in range(e0, e1):  # pass 1: v2c statistics
                    shift = tl.load(edge_shift + e)
                    pos = lane + shift
                    pos = tl.where(pos >= Z, pos - Z, pos)
                    a_ptr = app_ptr + base_app + tl.load(edge_col + e) * Z + pos[None, :]
                    r = tl.load(c2v_ptr + base_c2v + e * Z, mask=rmask, other=0.0)
                    v = tl.load(a_ptr, mask=mask, other=0.0) - r
                    a = tl.minimum(tl.abs(v), llr_max)
                    m2 = tl.minimum(m2, tl.maximum(m1, a))
                    idx = tl.where(a < m1, e, idx)
                    m1 = tl.minimum(m1, a)
                    sg = tl.where(v < 0, -sg, sg)
                m1 = tl.maximum(m1 - offset, 0.0)
                m2 = tl.maximum(m2 - offset, 0.0)
                for e in range(e0, e1):  # pass 2: new c2v, APP = v2c + c2v
                    shift = tl.load(edge_shift + e)
                    pos = lane + shift
                    pos = tl.where(pos >= Z, pos - Z, pos)
                    a_ptr = app_ptr + base_app + tl.load(edge_col + e) * Z + pos[None, :]
                    r = tl.load(c2v_ptr + base_c2v + e * Z, mask=rmask, other=0.0)
                    v = tl.load(a_ptr, mask=mask, other=0.0) - r
                    ms = tl.where(idx == e, m2, m1) * sg
                    new = tl.where(v < 0, -ms, ms)
                    tl.store(c2v_ptr + base_c2v + e * Z, new, mask=mask)
                    tl.store(a_ptr, v + new, mask=mask)
                tl.debug_barrier()  # the next layer's lanes read APP written by other warps
            it += 1
            bad = tl.zeros([BW, ZP], dtype=tl.int32)
            for layer in range(NUM_LAYERS):  # syndrome of the hard decisions
                par = tl.zeros([BW, ZP], dtype=tl.int32)
                for e in range(tl.load(layer_ptr + layer), tl.load(layer_ptr + layer + 1)):
                    shift = tl.load(edge_shift + e)
                    pos = lane + shift
                    pos = tl.where(pos >= Z, pos - Z, pos)
                    a_ptr = app_ptr + base_app + tl.load(edge_col + e) * Z + pos[None, :]
                    par = par ^ (tl.load(a_ptr, mask=mask, other=0.0) < 0).to(tl.int32)
                bad = bad | par
            done = active & (tl.max(bad, axis=1) == 0)
            iters = tl.where(done, it, iters)
            active = active & (tl.max(bad, axis=1) != 0)
            n_active = tl.sum(active.to(tl.int32), axis=0)
        for c in range(KCOLS):  # hard decisions of the information bits
            t = c * Z + lane
            m = cw_ok[:, None] & (lane_ok & (t < k))[None, :]
            app = tl.load(app_ptr + base_app + t[None, :], mask=m, other=0.0)
            tl.store(uhat_ptr + cw.to(tl.int64)[:, None] * k + t[None, :],
                     (app < 0).to(tl.uint8), mask=m)
        tl.store(iters_ptr + cw, iters, mask=cw_ok)


def _next_pow2(x: int) -> int:
    return 1 << (x - 1).bit_length()


def decode_llrs(tables: DecoderTables, l_ch: torch.Tensor, num_iter: int = 20,
                offset: float = 0.5, llr_max: float = LLR_MAX, codewords_per_program: int = 1,
                num_warps: int = 4, inplace: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode internal LLRs with the Triton kernel.

    Input
    -----
    l_ch : [N, n_dec] float32   log p(0)/p(1) per mother-code bit (``recover`` output),
        a CUDA tensor (a CPU tensor under Triton's interpreter)
    codewords_per_program, num_warps : launch shape (results do not depend on them)
    inplace : decode in l_ch itself (it ends as the final APP; saves a copy)

    Output
    ------
    u_hat : [N, k] uint8, iterations : [N] int32   (on l_ch's device)
    """
    require_triton()
    code = tables.code
    if l_ch.ndim != 2 or l_ch.shape[1] != code.n_dec or l_ch.dtype != torch.float32:
        raise ValueError(f"l_ch {tuple(l_ch.shape)} {l_ch.dtype} is not [N, {code.n_dec}] "
                         "float32")
    if not 1 <= num_iter <= 200:
        raise ValueError(f"num_iter {num_iter} must be in [1, 200]")
    check_device(l_ch, "l_ch")
    num = l_ch.shape[0]
    app = l_ch if inplace and l_ch.is_contiguous() else l_ch.contiguous().clone()
    c2v = torch.empty((num, tables.num_edges, code.z), dtype=torch.float32, device=l_ch.device)
    u_hat = torch.empty((num, code.k), dtype=torch.uint8, device=l_ch.device)
    iters = torch.empty(num, dtype=torch.int32, device=l_ch.device)
    if num == 0:
        return u_hat, iters
    bw = _next_pow2(codewords_per_program)
    _decode_kernel[(triton.cdiv(num, bw),)](
        app, c2v, u_hat, iters, tables.layer_ptr, tables.edge_col, tables.edge_shift,
        num, code.n_dec, tables.num_edges, code.k, int(num_iter), float(offset),
        float(llr_max), Z=code.z, ZP=_next_pow2(code.z), BW=bw, NUM_LAYERS=code.num_layers,
        KCOLS=-(-code.k // code.z), num_warps=num_warps)
    return u_hat, iters


def _layer_index(code: LdpcCode, device: torch.device) -> list[tuple[int, int, torch.Tensor]]:
    """Per layer (e0, e1, positions [deg, Z] of each edge's rows in the APP vector)."""
    z = code.z
    i = np.arange(z)
    out = []
    for layer in range(code.num_layers):
        e0, e1 = int(code.layer_ptr[layer]), int(code.layer_ptr[layer + 1])
        pos = [code.edge_col[e] * z + (i + code.edge_shift[e]) % z for e in range(e0, e1)]
        out.append((e0, e1, torch.from_numpy(np.stack(pos).astype(np.int64)).to(device)))
    return out


def decode_llrs_torch(code: LdpcCode, l_ch: torch.Tensor, num_iter: int = 20,
                      offset: float = 0.5, llr_max: float = LLR_MAX
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Same algorithm as :func:`decode_llrs` in plain torch ops (any device, no Triton).

    All codewords move together layer by layer; a converged codeword keeps its APP and
    messages (``torch.where``), so its result is what an early stop gives. Ties of the
    minimum need no tie rule: with two equal minima min2 == min1 whichever index wins.
    Shapes as :func:`decode_llrs`.
    """
    num, dev = l_ch.shape[0], l_ch.device
    layers = _layer_index(code, dev)
    app = l_ch.clone()
    c2v = torch.zeros((num, int(code.layer_ptr[-1]), code.z), dtype=torch.float32, device=dev)
    active = torch.ones(num, dtype=torch.bool, device=dev)
    iters = torch.full((num,), num_iter, dtype=torch.int32, device=dev)
    off = torch.tensor(offset, dtype=torch.float32, device=dev)
    for it in range(1, num_iter + 1):
        act = active[:, None, None]
        for e0, e1, pos in layers:
            v = app[:, pos] - c2v[:, e0:e1]  # [N, deg, Z]
            a = torch.clamp(v.abs(), max=llr_max)
            low, arg = torch.topk(a, 2, dim=1, largest=False)
            low = torch.clamp(low - off, min=0.0)
            neg = (v < 0).sum(dim=1, keepdim=True) % 2
            sg = 1.0 - 2.0 * neg.to(torch.float32)
            first = torch.arange(e1 - e0, device=dev)[None, :, None] == arg[:, :1]
            ms = torch.where(first, low[:, 1:2], low[:, :1]) * sg
            new = torch.where(v < 0, -ms, ms)
            c2v[:, e0:e1] = torch.where(act, new, c2v[:, e0:e1])
            app[:, pos] = torch.where(act, v + new, app[:, pos])
        ok = torch.ones(num, dtype=torch.bool, device=dev)
        for _, _, pos in layers:
            ok &= ((app[:, pos] < 0).sum(dim=1) % 2 == 0).all(dim=1)
        iters = torch.where(active & ok, it, iters)
        active &= ~ok
        if not bool(active.any()):
            break
    return (app[:, :code.k] < 0).to(torch.uint8), iters.to(torch.int32)
