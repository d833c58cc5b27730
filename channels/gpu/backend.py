"""``GpuBackend``: the ``Backend`` of ``LinkConfig(decoder="gpu", device="cuda:0")``.

::

    info bits [B, k] ─► parity GEMM ─► map_channel (codeword assembly + scrambling + QAM
        map + Philox channel, one kernel) ─► demap_recover (descrambling sign flip + rate
        recovery, one kernel, into the decoder buffer) ─► erasure check
        ─► Triton layered offset min-sum (in place) ─► u_hat, iterations

(stage by stage through ``GpuEncoder``/``scramble_bits``/``GpuModem``/``flat_channel``/
``descramble_llr``/``recover`` when rate matching repeats bits, or without LDPC.) ``Link``
hands whole single-transmission batches to :meth:`GpuBackend.transmit_blocks` (one
host->device copy of the packed info bits, the payloads' Gold sequence uploaded once and
indexed by block in the kernels; erasure and CRC check and packing on the device, one
device->host copy of the decoded bytes). With HARQ (``harq`` set) ``Link`` runs its
stage-by-stage loop over the ``Backend`` protocol instead: ``encode(bits, rv)`` (a GF(2)
GEMM with the rv's generator on the device), ``modulate``, the NumPy channel,
``demodulate``, NumPy descrambling, ``combine`` (``index_add_`` into the mother-code
accumulator on the device) and ``decode`` (Triton decoder) -- correct, but with
host<->device copies per stage, so not the fast path. With ``device="cpu"`` the same code
runs under Triton's interpreter (tests only: slow).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from channels.config import LinkConfig
from channels.gpu._triton import INTERPRET, require_triton
from channels.gpu.chain import (
    GpuCrc,
    GpuEncoder,
    GpuModem,
    _gf2_sums,
    channel_template,
    demap_recover,
    descramble_llr,
    flat_channel,
    map_channel,
    recover,
    scramble_bits,
)
from channels.gpu.decoder import DecoderTables, decode_llrs
from channels.ldpc import LLR_MAX, FastLdpcEncoder, build_code, rate_match_positions
from channels.scrambling import Scrambler

#: Sionna's offset for "offset-minsum" (as channels.backends.MINSUM_OFFSET).
_OFFSET = {"offset-minsum": 0.5, "minsum": 0.0}


class GpuBackend:
    """The whole per-block chain on one torch device (see module docstring)."""

    def __init__(self, cfg: LinkConfig) -> None:
        require_triton()
        assert cfg.k is not None and cfg.n is not None
        dev = torch.device(cfg.device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {cfg.device!r} requested but torch sees no CUDA device")
        if (dev.type == "cpu") != INTERPRET:
            raise ValueError(f"decoder='gpu' on device {cfg.device!r} needs "
                             f"{'Triton interpreter mode' if dev.type == 'cpu' else 'CUDA'}")
        self.cfg = cfg
        self.device = dev
        self._buffers: dict[str, torch.Tensor] = {}
        self._scramble: tuple[np.ndarray, torch.Tensor] | None = None  # host seq, device copy
        self._rv_generators: dict[int, torch.Tensor] = {}
        m = cfg.bits_per_symbol
        self.coded_bits = m * (-(-cfg.n // m))
        self.modem = GpuModem(m, dev)
        # Link's blocks (BlockLayout): k % 8 == 0, CRC24B in the last 24 bits
        self.crc = GpuCrc(cfg.k, dev) if cfg.k % 8 == 0 and cfg.k >= 32 else None
        # the same code (mother-code length n_dec covers every HARQ rv) as FastBackend's
        self.code = build_code(cfg.k, cfg.n, m, tuple(sorted(set(cfg.rvs)))) \
            if cfg.coding == "ldpc" else None
        if self.code is not None:
            self.encoder: GpuEncoder | None = GpuEncoder(self.code, dev)
            self.tables: DecoderTables | None = DecoderTables.build(self.code, dev)
            pos = rate_match_positions(self.code)
            self.positions = torch.from_numpy(pos).long().to(dev)
            self.rv_positions = {rv: torch.from_numpy(rate_match_positions(self.code, rv))
                                 .long().to(dev) for rv in self.code.rvs}
            # each transmitted bit on its own mother bit: demap + recover fuse to a scatter
            self.fused = len(np.unique(pos)) == len(pos)
            self.template = channel_template(self.code, dev)
        else:
            self.encoder = self.tables = None
            self.fused = False

    def _buffer(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        """A float32 work buffer kept across calls of the same batch size (the fused chain's
        x_eq, noise_var and decoder buffer; their contents never leave run_blocks). Not
        thread-safe: one run_blocks at a time per backend (Link runs ``gpu`` on one thread)."""
        buf = self._buffers.get(name)
        if buf is None or tuple(buf.shape) != shape:
            self._buffers[name] = buf = torch.empty(shape, dtype=torch.float32,
                                                    device=self.device)
        return buf

    def _t(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    # -- torch-level chain ------------------------------------------------------------
    def encode_t(self, u: torch.Tensor) -> torch.Tensor:
        """[B, k] uint8 -> [B, coded_bits] uint8 (uncoded: zero-padded to whole symbols)."""
        if self.encoder is not None:
            return self.encoder(u)
        out = torch.zeros((u.shape[0], self.coded_bits), dtype=torch.uint8, device=u.device)
        out[:, : u.shape[1]] = u
        return out

    def decode_t(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, n] logits -> (u_hat [B, k] uint8, iterations [B] int32)."""
        if self.code is None or self.tables is None:
            k = self.cfg.k
            assert k is not None
            zeros = torch.zeros(llr.shape[0], dtype=torch.int32, device=llr.device)
            return (llr[:, :k] > 0).to(torch.uint8), zeros
        l_ch = recover(self.code, self.positions, llr)
        return self._decode_internal(l_ch)

    def _decode_internal(self, l_ch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """l_ch [B, n_dec] (consumed: decoded in place) -> (u_hat, iterations)."""
        assert self.tables is not None
        return decode_llrs(self.tables, l_ch, self.cfg.bp_iterations,
                           offset=_OFFSET[self.cfg.cn_update],
                           codewords_per_program=64 if INTERPRET else 1,
                           num_warps=8, inplace=True)

    def run_blocks(self, u: torch.Tensor, no: torch.Tensor, seeds: torch.Tensor,
                   blocks: torch.Tensor, timings: dict[str, float] | None = None,
                   scramble: torch.Tensor | None = None, heard: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """Info bits [B, k] uint8 on the device -> (u_hat [B, k], iterations [B]).

        Row r is block ``blocks[r]`` of the payload with seed ``seeds[r]`` sent at complex
        noise variance ``no[r]`` (all [B] tensors on the device). With LDPC and rate
        matching without repetition three launches do it all: parity GEMM, fused
        encode-assembly + scrambling + map + channel, fused demap + descrambling +
        recovery, then the decoder (same numbers as the stage-by-stage functions).
        ``scramble``: the flat Gold sequence on the device (``Scrambler.covering``; None:
        no scrambling). ``heard``: if given, a [B] bool tensor set to "some LLR of the
        block is non-zero" (False: an erasure, which Link counts lost whatever the CRC).
        ``timings``: if given, the device is synchronised after each stage and its seconds
        are added under "encode+map+channel", "demap+recover", "decode" (for the benchmark;
        slows the chain a little).
        """
        clock = _StageClock(timings, u.device)
        method = self.cfg.demapping if self.code is not None else "maxlog"
        if self.code is None or self.encoder is None or not self.fused:
            coded = self.encode_t(u)
            if scramble is not None:
                coded = scramble_bits(coded, scramble, blocks)
            x = self.modem.map(coded)
            x_eq, noise_var = flat_channel(x, no, seeds, blocks, self.cfg.channel,
                                           self.cfg.block_symbols)
            clock("encode+map+channel")
            llr = self.modem.demap(x_eq, noise_var, method)
            if scramble is not None:
                llr = descramble_llr(llr, scramble, blocks)
            if heard is not None:
                heard.copy_((llr != 0).any(dim=1))
            if self.code is None:
                return self.decode_t(llr)
            l_ch = recover(self.code, self.positions, llr)
            clock("demap+recover")
        else:
            num, sym = u.shape[0], self.coded_bits // self.cfg.bits_per_symbol
            bufs = (self._buffer("x_eq", (num, sym, 2)), self._buffer("noise_var", (num, sym)))
            x_eq, noise_var = map_channel(self.encoder, u, self.modem.levels, no, seeds, blocks,
                                          self.cfg.channel, self.cfg.block_symbols, out=bufs,
                                          scramble=scramble)
            clock("encode+map+channel")
            l_ch = demap_recover(self.code, self.positions, self.modem.levels, x_eq,
                                 noise_var, method, self.template,
                                 out=self._buffer("l_ch", (num, self.code.n_dec)),
                                 blocks=blocks if scramble is not None else None,
                                 scramble=scramble)
            if heard is not None:  # nothing received: l_ch is still the template
                heard.copy_((l_ch != self.template).any(dim=1))
            clock("demap+recover")
        out = self._decode_internal(l_ch)
        clock("decode")
        return out

    def scramble_sequence(self, scrambler: Scrambler, blocks: np.ndarray) -> torch.Tensor:
        """``scrambler``'s flat sequence covering ``blocks`` on the device (re-uploaded only
        when the scrambler extends it)."""
        if scrambler.block_bits != self.coded_bits:
            raise ValueError(f"scrambler of {scrambler.block_bits} bits per block; this "
                             f"link sends {self.coded_bits}")
        seq = scrambler.covering(blocks)
        if self._scramble is None or self._scramble[0] is not seq:
            self._scramble = (seq, torch.from_numpy(np.array(seq)).to(self.device))
        return self._scramble[1]

    def transmit_blocks(self, info: np.ndarray, rows: Sequence[tuple[float, int, int, int]],
                        scrambler: Scrambler | None = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``Link``'s batch (one transmission each): info bytes [B, k/8] uint8 (bits MSB
        first, CRC24B in the last 3 bytes) whose consecutive rows are blocks ``j0 .. j1-1``
        of one payload per ``(no, seed, j0, j1)`` in ``rows``, scrambled with
        ``scrambler``'s sequence (None: not scrambled). Unpacking, the chain, the erasure
        and CRC checks and packing run on the device. Returns (decoded bytes [B, k/8]
        uint8, ok [B] bool = CRC passed and not erased, iterations [B] int32) as NumPy."""
        if self.crc is None:
            raise ValueError(f"transmit_blocks needs Link's blocks: k={self.cfg.k} must be a "
                             "multiple of 8 and >= 32")
        packed = self._t(info)
        shifts = torch.arange(7, -1, -1, device=self.device, dtype=torch.uint8)
        bits = ((packed[:, :, None] >> shifts) & 1).reshape(packed.shape[0], -1)
        no = np.concatenate([np.full(j1 - j0, n, np.float32) for n, _, j0, j1 in rows])
        seeds = np.concatenate([np.full(j1 - j0, s, np.int64) for _, s, j0, j1 in rows])
        blocks = np.concatenate([np.arange(j0, j1, dtype=np.int64) for _, _, j0, j1 in rows])
        scr = self.scramble_sequence(scrambler, blocks) if scrambler is not None else None
        heard = torch.empty(len(blocks), dtype=torch.bool, device=self.device)
        u_hat, iters = self.run_blocks(bits, self._t(no), self._t(seeds), self._t(blocks),
                                       scramble=scr, heard=heard)
        ok = self.crc.ok(u_hat) & heard  # an all-erased block is lost (CRC of zeros is 0)
        return self.crc.pack(u_hat).cpu().numpy(), ok.cpu().numpy(), iters.cpu().numpy()

    # -- Backend protocol (NumPy in, NumPy out) ----------------------------------------
    def encode(self, info_bits: np.ndarray, rv: int = 0) -> np.ndarray:
        """[B, k] uint8 -> [B, coded_bits] uint8 transmitted bits of redundancy version rv
        (rv != 0: ``u G_rv mod 2`` with G_rv derived from the numba encoder, as rv 0's)."""
        u = self._t(info_bits)
        if rv == 0 or self.code is None:
            return self.encode_t(u).cpu().numpy()
        if rv not in self.rv_positions:
            raise ValueError(f"rv {rv!r} not among the code's redundancy versions "
                             f"{self.code.rvs}")
        g = self._rv_generators.get(rv)
        if g is None:
            eye = np.eye(self.code.k, dtype=np.uint8)
            g_np = FastLdpcEncoder(self.code)(eye, rv)  # row i: rv codeword of e_i
            pad = -g_np.shape[1] % 8  # torch._int_mm wants column counts divisible by 8
            g = torch.from_numpy(np.pad(g_np, ((0, 0), (0, pad))).astype(np.int8))
            self._rv_generators[rv] = g = g.to(self.device)
        return (_gf2_sums(u, g)[:, : self.code.n] & 1).to(torch.uint8).cpu().numpy()

    def modulate(self, coded: np.ndarray) -> np.ndarray:
        return self.modem.map(self._t(coded)).cpu().numpy()

    def demodulate(self, x_eq: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
        method = self.cfg.demapping if self.code is not None else "maxlog"
        return self.modem.demap(self._t(x_eq), self._t(noise_var), method).cpu().numpy()

    def combine(self, llr: np.ndarray, rv: int, soft: np.ndarray | None) -> np.ndarray:
        """Add one transmission's LLRs [B, n] to the raw mother-code sums [B, n_dec]
        (``index_add_`` on the device: repeated positions add up; uncoded: the LLRs)."""
        if self.code is None:
            return llr if soft is None else soft + llr
        if rv not in self.rv_positions:
            raise ValueError(f"rv {rv!r} not among the code's redundancy versions "
                             f"{self.code.rvs}")
        x = self._t(llr.astype(np.float32))
        if x.ndim != 2 or x.shape[1] != self.code.n:
            raise ValueError(f"decoder input shape {tuple(x.shape)} is not [N, {self.code.n}]")
        acc = torch.zeros((x.shape[0], self.code.n_dec), dtype=torch.float32,
                          device=self.device) if soft is None else \
            torch.tensor(np.ascontiguousarray(soft, dtype=np.float32), device=self.device)
        acc.index_add_(1, self.rv_positions[rv], -x)
        return acc.cpu().numpy()

    def decode(self, soft: np.ndarray, last: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Decode combined soft values (``combine``'s sums: clipped to +-LLR_MAX, fillers
        set, as ``FastLdpcDecoder.finish``); ``last`` is accepted for the protocol (the
        device copy is always a fresh buffer)."""
        if self.code is None:
            k = self.cfg.k
            assert k is not None
            return (soft[:, :k] > 0).astype(np.uint8), np.zeros(soft.shape[0], dtype=np.int32)
        l_ch = torch.clamp(self._t(soft.astype(np.float32)), -LLR_MAX, LLR_MAX)  # a copy
        l_ch[:, self.code.k:self.code.k_ldpc] = LLR_MAX
        u_hat, iters = self._decode_internal(l_ch)
        return u_hat.cpu().numpy(), iters.cpu().numpy()


class _StageClock:
    """Adds the seconds since the previous call to ``timings[stage]`` (device synchronised);
    does nothing when ``timings`` is None."""

    def __init__(self, timings: dict[str, float] | None, device: torch.device) -> None:
        self.timings, self.device = timings, device
        self.last = self._now() if timings is not None else 0.0

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def __call__(self, stage: str) -> None:
        if self.timings is not None:
            now = self._now()
            self.timings[stage] = self.timings.get(stage, 0.0) + now - self.last
            self.last = now
