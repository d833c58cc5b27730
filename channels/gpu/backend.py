"""``GpuBackend``: the ``Backend`` of ``LinkConfig(decoder="gpu", device="cuda:0")``.

::

    info bits [B, k] ─► GpuEncoder ─► GpuModem.map ─► flat_channel (Philox, per seed/block)
        ─► GpuModem.demap ─► recover ─► Triton layered offset min-sum ─► u_hat, iterations

``Link`` hands whole batches to :meth:`GpuBackend.transmit_blocks` (one host->device copy
of the info bits, one device->host copy of the decisions); the per-stage methods of the
``Backend`` protocol (NumPy in, NumPy out) exist for tests and mixed use. With
``device="cpu"`` the same code runs under Triton's interpreter (tests only: slow).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from channels.config import LinkConfig
from channels.gpu._triton import INTERPRET, require_triton
from channels.gpu.chain import GpuEncoder, GpuModem, flat_channel, recover
from channels.gpu.decoder import DecoderTables, decode_llrs
from channels.ldpc import build_code, rate_match_positions

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
        m = cfg.bits_per_symbol
        self.coded_bits = m * (-(-cfg.n // m))
        self.modem = GpuModem(m, dev)
        self.code = build_code(cfg.k, cfg.n, m) if cfg.coding == "ldpc" else None
        if self.code is not None:
            self.encoder: GpuEncoder | None = GpuEncoder(self.code, dev)
            self.tables: DecoderTables | None = DecoderTables.build(self.code, dev)
            self.positions = torch.from_numpy(rate_match_positions(self.code)).long().to(dev)
        else:
            self.encoder = self.tables = None

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
        return decode_llrs(self.tables, l_ch, self.cfg.bp_iterations,
                           offset=_OFFSET[self.cfg.cn_update],
                           codewords_per_program=64 if INTERPRET else 1)

    def run_blocks(self, u: torch.Tensor, no: torch.Tensor, seeds: torch.Tensor,
                   blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Info bits [B, k] uint8 on the device -> (u_hat [B, k], iterations [B]).

        Row r is block ``blocks[r]`` of the payload with seed ``seeds[r]`` sent at complex
        noise variance ``no[r]`` (all [B] tensors on the device).
        """
        x = self.modem.map(self.encode_t(u))
        x_eq, noise_var = flat_channel(x, no, seeds, blocks, self.cfg.channel,
                                       self.cfg.block_symbols)
        method = self.cfg.demapping if self.code is not None else "maxlog"
        return self.decode_t(self.modem.demap(x_eq, noise_var, method))

    def transmit_blocks(self, info: np.ndarray, rows: Sequence[tuple[float, int, int, int]]
                        ) -> tuple[np.ndarray, np.ndarray]:
        """``Link``'s batch: info bytes [B, k/8] uint8 (bits MSB first) whose consecutive
        rows are blocks ``j0 .. j1-1`` of one payload per ``(no, seed, j0, j1)`` in
        ``rows``. Returns u_hat [B, k] uint8 bits and iterations [B] int32 (NumPy)."""
        packed = self._t(info)
        shifts = torch.arange(7, -1, -1, device=self.device, dtype=torch.uint8)
        bits = ((packed[:, :, None] >> shifts) & 1).reshape(packed.shape[0], -1)
        no = np.concatenate([np.full(j1 - j0, n, np.float32) for n, _, j0, j1 in rows])
        seeds = np.concatenate([np.full(j1 - j0, s, np.int64) for _, s, j0, j1 in rows])
        blocks = np.concatenate([np.arange(j0, j1, dtype=np.int64) for _, _, j0, j1 in rows])
        u_hat, iters = self.run_blocks(bits, self._t(no), self._t(seeds), self._t(blocks))
        return u_hat.cpu().numpy(), iters.cpu().numpy()

    # -- Backend protocol (NumPy in, NumPy out) ----------------------------------------
    def encode(self, info_bits: np.ndarray) -> np.ndarray:
        return self.encode_t(self._t(info_bits)).cpu().numpy()

    def modulate(self, coded: np.ndarray) -> np.ndarray:
        return self.modem.map(self._t(coded)).cpu().numpy()

    def demodulate(self, x_eq: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
        method = self.cfg.demapping if self.code is not None else "maxlog"
        return self.modem.demap(self._t(x_eq), self._t(noise_var), method).cpu().numpy()

    def decode(self, llr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u_hat, iters = self.decode_t(self._t(llr.astype(np.float32)))
        return u_hat.cpu().numpy(), iters.cpu().numpy()
