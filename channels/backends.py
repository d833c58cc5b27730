"""The two implementations of the per-block chain behind ``decoder="fast" | "sionna"``.

::

    info bits [B, k] ─encode(rv)─► coded [B, n] ─modulate─► x [B, S]
                                                          │  (channel: channels.channel)
    llr [B, n] ◄─demodulate─ x_eq, noise_var [B, S]
    soft ◄─combine(llr, rv, soft)─ (HARQ: one call per transmission, LLRs add up)
    u_hat [B, k], iterations [B] ◄─decode(soft)

Both speak the same layouts (Sionna's): coded bits in the 5G interleaved order, LLRs as
logits log p(1)/p(0). ``soft`` is a backend's combining state, an array whose first
axis is the block (the Link keeps the rows of blocks still in flight): the fast backend
sums LLRs on the mother code (``FastLdpcDecoder.recover``, unclipped); the Sionna
backend stacks each transmission's LLRs ``[B, t, n]`` for ``LDPC5GDecoder(harq_mode)``.
Scrambling is not a backend's business: the Link scrambles coded bits before
``modulate`` and descrambles LLRs after ``demodulate``, the same for every backend.

``FastBackend`` is NumPy/numba on the CPU; ``SionnaBackend`` uses Sionna's
``LDPC5GEncoder``, ``Mapper``, ``Demapper`` and ``LDPC5GDecoder`` (PyTorch, cpu or cuda).
With ``coding="uncoded"`` the k block bits are sent as they are (zero-padded to whole
symbols) and decided by the nearest constellation point (the sign of max-log LLRs,
whatever ``demapping`` says), so uncoded BER matches the textbook detector.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from channels.config import LinkConfig
from channels.ldpc import FastLdpcDecoder, FastLdpcEncoder, build_code
from channels.modulation import QamModem

#: Sionna's offset for "offset-minsum" (sionna.phy.fec.ldpc.decoding.cn_update_offset_minsum).
MINSUM_OFFSET = {"offset-minsum": 0.5, "minsum": 0.0}


class Backend(Protocol):
    """Per-block transmit/receive chain (see module docstring for shapes)."""

    coded_bits: int

    def encode(self, info_bits: np.ndarray, rv: int = 0) -> np.ndarray: ...

    def modulate(self, coded: np.ndarray) -> np.ndarray: ...

    def demodulate(self, x_eq: np.ndarray, noise_var: np.ndarray) -> np.ndarray: ...

    def combine(self, llr: np.ndarray, rv: int, soft: np.ndarray | None) -> np.ndarray: ...

    def decode(self, soft: np.ndarray, last: bool = True) -> tuple[np.ndarray, np.ndarray]: ...


def make_backend(cfg: LinkConfig) -> Backend:
    """The backend ``cfg.decoder`` names."""
    if cfg.decoder == "fast":
        return FastBackend(cfg)
    if cfg.decoder == "gpu":
        from channels.gpu.backend import GpuBackend  # imports triton

        return GpuBackend(cfg)
    return SionnaBackend(cfg)


def _coded_bits(cfg: LinkConfig) -> int:
    """Coded bits per block on the air, padded to whole symbols (uncoded only pads)."""
    assert cfg.n is not None
    m = cfg.bits_per_symbol
    return m * (-(-cfg.n // m))


class FastBackend:
    """NumPy/numba chain: compiled 5G LDPC encoder/decoder, Gray QAM modem."""

    def __init__(self, cfg: LinkConfig) -> None:
        assert cfg.k is not None and cfg.n is not None
        self.cfg = cfg
        self.modem = QamModem(cfg.bits_per_symbol)
        self.coded_bits = _coded_bits(cfg)
        if cfg.coding == "ldpc":
            code = build_code(cfg.k, cfg.n, cfg.bits_per_symbol, tuple(sorted(set(cfg.rvs))))
            self.encoder: FastLdpcEncoder | None = FastLdpcEncoder(code)
            self.decoder: FastLdpcDecoder | None = FastLdpcDecoder(
                code, cfg.bp_iterations, offset=MINSUM_OFFSET[cfg.cn_update])
        else:
            self.encoder = self.decoder = None

    def encode(self, info_bits: np.ndarray, rv: int = 0) -> np.ndarray:
        if self.encoder is not None:
            return self.encoder(info_bits, rv)
        out = np.zeros((info_bits.shape[0], self.coded_bits), dtype=np.uint8)
        out[:, : info_bits.shape[1]] = info_bits
        return out

    def modulate(self, coded: np.ndarray) -> np.ndarray:
        return self.modem.map(coded)

    def demodulate(self, x_eq: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
        method = self.cfg.demapping if self.decoder is not None else "maxlog"
        return self.modem.demap(x_eq, noise_var, method)

    def combine(self, llr: np.ndarray, rv: int, soft: np.ndarray | None) -> np.ndarray:
        """Add one transmission's LLRs: [B, n] -> raw mother-code sums [B, n_dec]
        (uncoded: the LLRs themselves)."""
        if self.decoder is None:
            return llr if soft is None else soft + llr
        return self.decoder.recover(llr, out=soft, rv=rv, clip=False)

    def decode(self, soft: np.ndarray, last: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Decode combined soft values; ``last``: ``soft`` is not combined again, so it
        may be clipped in place."""
        if self.decoder is not None:
            return self.decoder.decode_llrs(self.decoder.finish(soft, out=soft if last else None))
        k = self.cfg.k
        return (soft[:, :k] > 0).astype(np.uint8), np.zeros(soft.shape[0], dtype=np.int32)


class SionnaBackend:
    """Sionna's blocks (the reference implementation), on ``cfg.device``."""

    def __init__(self, cfg: LinkConfig) -> None:
        import torch
        from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
        from sionna.phy.mapping import Demapper, Mapper

        assert cfg.k is not None and cfg.n is not None
        if cfg.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {cfg.device!r} requested but torch sees no CUDA device")
        self.cfg = cfg
        self.torch = torch
        self.device = cfg.device
        self.coded_bits = _coded_bits(cfg)
        m = cfg.bits_per_symbol
        self.mapper = Mapper("qam", m, device=self.device)
        method = cfg.demapping if cfg.coding == "ldpc" else "maxlog"
        self.demapper = Demapper(method, "qam", m, device=self.device)
        self.encoder = self.decoder = None
        if cfg.coding == "ldpc":
            self.encoder = LDPC5GEncoder(cfg.k, cfg.n, num_bits_per_symbol=m, device=self.device)
            # harq_mode keeps every base-graph row (no pruning) and combines stacked RVs
            self.harq = cfg.max_transmissions > 1
            self.rvs = list(cfg.rvs)
            self.decoder = LDPC5GDecoder(
                self.encoder, cn_update=cfg.cn_update, cn_schedule=cfg.cn_schedule,
                num_iter=cfg.bp_iterations, hard_out=True, return_infobits=True,
                harq_mode=self.harq, device=self.device)

    def _tensor(self, a: np.ndarray):
        return self.torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def encode(self, info_bits: np.ndarray, rv: int = 0) -> np.ndarray:
        if self.encoder is None:
            out = np.zeros((info_bits.shape[0], self.coded_bits), dtype=np.uint8)
            out[:, : info_bits.shape[1]] = info_bits
            return out
        with self.torch.no_grad():
            u = self._tensor(info_bits).to(self.torch.float32)
            c = self.encoder(u) if rv == 0 else self.encoder(u, rv=[rv])[:, 0]
        return c.to(self.torch.uint8).cpu().numpy()

    def modulate(self, coded: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            x = self.mapper(self._tensor(coded).to(self.torch.int32))
        return x.cpu().numpy().astype(np.complex64)

    def demodulate(self, x_eq: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            llr = self.demapper(self._tensor(x_eq), self._tensor(noise_var))
        return llr.cpu().numpy().astype(np.float32)

    def combine(self, llr: np.ndarray, rv: int, soft: np.ndarray | None) -> np.ndarray:
        """Stack one transmission's LLRs: [B, n] -> [B, t, n] (uncoded: their sum)."""
        if self.decoder is None:
            return llr if soft is None else soft + llr
        return llr[:, None] if soft is None else np.concatenate([soft, llr[:, None]], axis=1)

    def decode(self, soft: np.ndarray, last: bool = True) -> tuple[np.ndarray, np.ndarray]:
        num = soft.shape[0]
        if self.decoder is None:
            k = self.cfg.k
            return (soft[:, :k] > 0).astype(np.uint8), np.zeros(num, dtype=np.int32)
        with self.torch.no_grad():
            if self.harq:  # Sionna adds the stacked RVs on its circular buffer
                u_hat = self.decoder(self._tensor(soft), rv=self.rvs[: soft.shape[1]])
            else:
                u_hat = self.decoder(self._tensor(soft[:, 0]))
        iters = np.full(num, self.cfg.bp_iterations, dtype=np.int32)
        return u_hat.to(self.torch.uint8).cpu().numpy(), iters
