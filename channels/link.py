"""``Link``: byte payloads in, byte payloads out, over a simulated 5G NR link.

::

    payload [L] uint8 ─segment─► blocks [nb, k/8] (B payload bytes + CRC24B)
        ─► LDPC encode ─► QAM map ─► channel (h, n; seed) ─► equalise (x_eq, no/|h|^2)
        ─► soft demap ─► LDPC decode ─► CRC check ─► LinkResult (bytes, lost ranges, counts)

Every block of every payload in one ``transmit`` call is processed in batches of up to
``chunk_blocks`` code blocks, spread over ``num_threads`` worker threads (the compiled
kernels release the GIL; plain threads, so nothing spins between calls and the link
coexists with PyTorch work in the same process). Randomness is per (payload seed, block
index), so results do not depend on batching or threads. Bits are MSB-first within each
byte (``np.unpackbits``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from channels.backends import make_backend
from channels.channel import FlatChannel
from channels.config import LinkConfig
from channels.segmentation import BlockLayout
from channels.snr import check_snr_db, noise_variance


@dataclass(frozen=True)
class LinkResult:
    """What one payload looked like after the link.

    Attributes
    ----------
    data : [L] uint8
        Received bytes, same length as sent. Bytes of failed blocks are the decoder's
        hard decisions (unreliable, not zeroed).
    lost_ranges : tuple of (start, stop)
        Merged half-open byte ranges of blocks whose CRC failed (treat as erasures).
    bit_errors, num_bits : int
        Payload bit errors and payload bits (8 L; CRC and padding excluded).
    block_errors, num_blocks : int
        Code blocks whose CRC failed, and code blocks sent.
    undetected_block_errors : int
        Blocks that passed the CRC but differ from what was sent (simulation truth).
    channel_uses : int
        Complex symbols sent for this payload (num_blocks * symbols per block).
    block_ok : [num_blocks] bool
        CRC verdict per code block (payload byte i is in block i // block_payload_bytes;
        with a priority part, its blocks come first and the rest count from its end).
    decoder_iterations : int
        LDPC iterations summed over the payload's blocks (0 when uncoded).
    """

    data: np.ndarray
    lost_ranges: tuple[tuple[int, int], ...]
    bit_errors: int
    num_bits: int
    block_errors: int
    num_blocks: int
    undetected_block_errors: int
    channel_uses: int
    block_ok: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    decoder_iterations: int = 0

    @property
    def ber(self) -> float:
        """Payload bit error rate."""
        return self.bit_errors / self.num_bits if self.num_bits else 0.0

    @property
    def intact(self) -> bool:
        """True when every block passed its CRC."""
        return self.block_errors == 0


@dataclass
class _Rx:
    """Receive buffers of one payload while its blocks are in flight."""

    sent: np.ndarray  # [nb, k/8] uint8 info blocks as sent
    received: np.ndarray  # [nb, k/8] uint8 decoded info blocks
    ok: np.ndarray  # [nb] bool CRC verdicts
    iterations: np.ndarray  # [nb] int32 decoder iterations per block


class Link:
    """A configured link; ``transmit`` moves byte payloads across it.

    Parameters
    ----------
    config : LinkConfig
    chunk_blocks : int | None
        Most code blocks per internal batch (memory vs. per-call overhead); None: 64 on
        the CPU, 1024 for the Sionna chain on a GPU, 8192 for ``decoder="gpu"``.
    num_threads : int | None
        Worker threads for ``decoder="fast"`` (None: the CPUs this process may use);
        the Sionna backend always runs on the calling thread. Results do not depend on
        either setting.
    """

    def __init__(self, config: LinkConfig, chunk_blocks: int | None = None,
                 num_threads: int | None = None) -> None:
        if not isinstance(config, LinkConfig):
            raise ValueError(f"config must be a LinkConfig, got {type(config).__name__}")
        if chunk_blocks is None:
            chunk_blocks = 64 if config.device == "cpu" else \
                8192 if config.decoder == "gpu" else 1024
        if isinstance(chunk_blocks, bool) or not isinstance(chunk_blocks, int) \
                or chunk_blocks < 1:
            raise ValueError(f"chunk_blocks {chunk_blocks!r} must be a positive int")
        if num_threads is None:
            num_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
                else (os.cpu_count() or 1)
        if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
            raise ValueError(f"num_threads {num_threads!r} must be a positive int or None")
        assert config.k is not None
        self.config = config
        self.chunk_blocks = chunk_blocks
        self.num_threads = num_threads if config.decoder == "fast" else 1
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self.layout = BlockLayout(config.k)
        self.channel = FlatChannel(config.channel, config.symbols_per_block,
                                   config.block_symbols)
        self.backend = make_backend(config)
        #: The link of the bytes codecs mark as priority (``config.priority``), or None.
        self.priority_link = (None if config.priority is None
                              else Link(config.priority, chunk_blocks, num_threads))

    @property
    def block_payload_bytes(self) -> int:
        """Payload bytes per code block; byte j of a payload lies in block j // this."""
        return self.layout.payload_bytes

    @property
    def symbols_per_block(self) -> int:
        """Complex symbols (channel uses) per code block."""
        return self.config.symbols_per_block

    def num_blocks(self, num_bytes: int) -> int:
        """Code blocks a payload of ``num_bytes`` bytes occupies."""
        return self.layout.num_blocks(_nonneg_int("num_bytes", num_bytes))

    def channel_uses(self, num_bytes: int) -> int:
        """Complex symbols ``transmit`` sends for a payload of ``num_bytes`` bytes."""
        return self.num_blocks(num_bytes) * self.symbols_per_block

    def max_payload_bytes(self, channel_uses: int) -> int:
        """Largest payload whose ``channel_uses`` fits the budget (0 if not one block)."""
        budget = _nonneg_int("channel_uses", channel_uses)
        return (budget // self.symbols_per_block) * self.block_payload_bytes

    def transmit(self, payloads: Sequence[np.ndarray], esno_db: float | Sequence[float],
                 seeds: Sequence[int],
                 priority_bytes: Sequence[int] | None = None) -> list[LinkResult]:
        """Send each payload over its own channel realisation.

        Parameters
        ----------
        payloads : sequence of [L_i] uint8 arrays (``bytes`` also accepted), L_i >= 1
        esno_db : float or one float per payload
            Es/N0 per complex symbol in dB (see ``channels.snr``), the same for the
            main and the priority code blocks.
        seeds : one int >= 0 per payload
            Seeds the payload's fading and noise: same seed, same result.
        priority_bytes : one int >= 0 per payload, or None
            With a ``priority`` config: the first ``priority_bytes[i]`` bytes of payload
            i go in code blocks of the priority config, the rest in blocks of the main
            one (each part segmented on its own; the priority part's noise and fading
            are drawn from a seed derived from the payload's). The LinkResult covers the
            whole payload: byte ranges and counts of both parts, ``block_ok`` priority
            blocks first. Without a priority config, or with 0, the main link only.

        Returns
        -------
        list[LinkResult], one per payload, in order.
        """
        data = [_check_payload(p, i) for i, p in enumerate(payloads)]
        seed_list = _check_seeds(seeds, len(data))
        snr_list = _check_snrs(esno_db, len(data))
        heads = _check_priority(priority_bytes, data)
        if self.priority_link is None or not any(heads):
            return self._transmit(data, snr_list, seed_list)
        # Split: heads on the priority link, tails on this one; empty parts are skipped.
        hi = [i for i, h in enumerate(heads) if h > 0]
        ti = [i for i, (h, p) in enumerate(zip(heads, data, strict=True)) if h < p.size]
        head_res = dict(zip(hi, self.priority_link._transmit(
            [data[i][:heads[i]] for i in hi], [snr_list[i] for i in hi],
            [priority_seed(seed_list[i]) for i in hi]), strict=True))
        tail_res = dict(zip(ti, self._transmit(
            [data[i][heads[i]:] for i in ti], [snr_list[i] for i in ti],
            [seed_list[i] for i in ti]), strict=True))
        return [_join(head_res.get(i), tail_res.get(i), heads[i]) for i in range(len(data))]

    def _transmit(self, data: list[np.ndarray], snr_list: list[float],
                  seed_list: list[int]) -> list[LinkResult]:
        """``transmit`` of checked payloads, every byte on this link's config."""
        rx = []
        for p in data:
            sent = self.layout.segment(p)
            nb = sent.shape[0]
            rx.append(_Rx(sent, np.empty_like(sent), np.zeros(nb, dtype=bool),
                          np.zeros(nb, dtype=np.int32)))
        chunks = self._chunks([r.sent.shape[0] for r in rx])
        if self.num_threads == 1 or len(chunks) == 1:
            for pieces in chunks:
                self._run_chunk(pieces, rx, snr_list, seed_list)
        else:  # chunks write disjoint blocks of the receive buffers
            futures = [self._executor().submit(self._run_chunk, pieces, rx, snr_list, seed_list)
                       for pieces in chunks]
            for f in futures:
                f.result()
        return [self._result(p, r) for p, r in zip(data, rx, strict=True)]

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.num_threads, thread_name_prefix="link")
            return self._pool

    def _chunks(self, blocks_per_payload: list[int]) -> list[list[tuple[int, int, int]]]:
        """Split all (payload, block) pairs into batches of <= chunk_blocks blocks, and
        into at least ``num_threads`` batches when there are enough blocks."""
        total = sum(blocks_per_payload)
        size = max(1, min(self.chunk_blocks, -(-total // self.num_threads)))
        chunks: list[list[tuple[int, int, int]]] = [[]]
        room = size
        for p, nb in enumerate(blocks_per_payload):
            j = 0
            while j < nb:
                take = min(room, nb - j)
                chunks[-1].append((p, j, j + take))
                j += take
                room -= take
                if room == 0:
                    chunks.append([])
                    room = size
        return [c for c in chunks if c]

    def _run_chunk(self, pieces: list[tuple[int, int, int]], rx: list[_Rx],
                   snr_list: list[float], seed_list: list[int]) -> None:
        """Encode, modulate, channel, demodulate, decode one batch of blocks."""
        be = self.backend
        info = np.concatenate([rx[p].sent[j0:j1] for p, j0, j1 in pieces])
        if hasattr(be, "transmit_blocks"):  # GPU chain: noise, CRC check, packing on the device
            decoded, ok, iters = be.transmit_blocks(info, [
                (noise_variance(snr_list[p]), seed_list[p], j0, j1) for p, j0, j1 in pieces])
        else:
            u_hat, iters = self._cpu_blocks(be, info, pieces, snr_list, seed_list)
            decoded = np.packbits(u_hat, axis=1)
            ok = self.layout.crc_ok(decoded)
        row = 0
        for p, j0, j1 in pieces:
            rows = slice(row, row + j1 - j0)
            rx[p].received[j0:j1] = decoded[rows]
            rx[p].ok[j0:j1] = ok[rows]
            rx[p].iterations[j0:j1] = iters[rows]
            row += j1 - j0

    def _cpu_blocks(self, be, info: np.ndarray, pieces: list[tuple[int, int, int]],
                    snr_list: list[float], seed_list: list[int]
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Encode, modulate, channel (NumPy), demodulate, decode one batch of blocks."""
        x = be.modulate(be.encode(np.unpackbits(info, axis=1)))
        x_eq = np.empty_like(x)
        noise_var = np.empty(x.shape, dtype=np.float32)
        row = 0
        for p, j0, j1 in pieces:
            rows = slice(row, row + j1 - j0)
            x_eq[rows], noise_var[rows] = self.channel.apply(
                x[rows], noise_variance(snr_list[p]), seed_list[p], j0)
            row += j1 - j0
        return be.decode(be.demodulate(x_eq, noise_var))

    def _result(self, payload: np.ndarray, r: _Rx) -> LinkResult:
        size, nb = payload.size, r.sent.shape[0]
        data = r.received[:, : self.block_payload_bytes].reshape(-1)[:size].copy()
        wrong = np.any(r.received != r.sent, axis=1)
        return LinkResult(
            data=data,
            lost_ranges=self.layout.lost_ranges(~r.ok, size),
            bit_errors=int(np.bitwise_count(data ^ payload).sum()),
            num_bits=8 * size,
            block_errors=int((~r.ok).sum()),
            num_blocks=nb,
            undetected_block_errors=int((r.ok & wrong).sum()),
            channel_uses=nb * self.symbols_per_block,
            block_ok=r.ok.copy(),
            decoder_iterations=int(r.iterations.sum()),
        )


def priority_seed(seed: int) -> int:
    """Seed of a payload's priority blocks, derived from the payload's seed (so the two
    parts see independent noise and fading)."""
    state = np.random.SeedSequence([seed, 0x9E3779B9]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) | (int(state[1]) >> 1)


def _join(head: LinkResult | None, tail: LinkResult | None, split: int) -> LinkResult:
    """One LinkResult for a payload sent as ``head`` (bytes [0, split)) + ``tail``."""
    if head is None or tail is None:
        part = head if tail is None else tail
        assert part is not None
        return part
    lost = [*head.lost_ranges, *((a + split, b + split) for a, b in tail.lost_ranges)]
    merged: list[tuple[int, int]] = []
    for a, b in lost:
        if merged and merged[-1][1] == a:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return LinkResult(
        data=np.concatenate([head.data, tail.data]),
        lost_ranges=tuple(merged),
        bit_errors=head.bit_errors + tail.bit_errors,
        num_bits=head.num_bits + tail.num_bits,
        block_errors=head.block_errors + tail.block_errors,
        num_blocks=head.num_blocks + tail.num_blocks,
        undetected_block_errors=head.undetected_block_errors + tail.undetected_block_errors,
        channel_uses=head.channel_uses + tail.channel_uses,
        block_ok=np.concatenate([head.block_ok, tail.block_ok]),
        decoder_iterations=head.decoder_iterations + tail.decoder_iterations,
    )


def _check_priority(priority_bytes: Sequence[int] | None, data: list[np.ndarray]) -> list[int]:
    """Per-payload priority prefix lengths, clipped to the payload length."""
    if priority_bytes is None:
        return [0] * len(data)
    if isinstance(priority_bytes, (int, np.integer)) or len(priority_bytes) != len(data):
        raise ValueError(f"priority_bytes must be a sequence of {len(data)} ints (one per "
                         f"payload), got {priority_bytes!r}")
    return [min(_nonneg_int(f"priority_bytes[{i}]", v), p.size)
            for i, (v, p) in enumerate(zip(priority_bytes, data, strict=True))]


def _nonneg_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} {value!r} must be a non-negative int")
    return int(value)


def _check_payload(p: object, i: int) -> np.ndarray:
    if isinstance(p, (bytes, bytearray)):
        p = np.frombuffer(bytes(p), dtype=np.uint8)
    if not isinstance(p, np.ndarray):
        raise ValueError(f"payload {i} is a {type(p).__name__}; expected a 1-D uint8 "
                         "numpy array (or bytes)")
    if p.dtype != np.uint8 or p.ndim != 1:
        raise ValueError(f"payload {i} has dtype {p.dtype} and shape {p.shape}; expected "
                         "a 1-D uint8 array")
    if p.size == 0:
        raise ValueError(f"payload {i} is empty; payloads need at least 1 byte")
    return p


def _check_seeds(seeds: Sequence[int], count: int) -> list[int]:
    if isinstance(seeds, (int, np.integer)) or not isinstance(seeds, Sequence | np.ndarray):
        raise ValueError(f"seeds must be a sequence of {count} ints (one per payload), "
                         f"got {seeds!r}")
    if len(seeds) != count:
        raise ValueError(f"got {len(seeds)} seeds for {count} payloads; need one per payload")
    return [_nonneg_int(f"seed {i}", s) for i, s in enumerate(seeds)]


def _check_snrs(esno_db: float | Sequence[float], count: int) -> list[float]:
    if isinstance(esno_db, Sequence | np.ndarray) and not isinstance(esno_db, str):
        if len(esno_db) != count:
            raise ValueError(f"got {len(esno_db)} esno_db values for {count} payloads")
        return [check_snr_db(v, f"esno_db[{i}]") for i, v in enumerate(esno_db)]
    value = check_snr_db(esno_db, "esno_db")
    return [value] * count
