"""``Link``: byte payloads in, byte payloads out, over a simulated 5G NR link.

::

    payload [L] uint8 ─segment─► blocks [nb, k/8] (B payload bytes + CRC24B)
        ─► LDPC encode (rv) ─► scramble ─► QAM map ─► channel (h, n; seed) ─► equalise
        ─► soft demap ─► descramble (LLR signs) ─► combine (HARQ) ─► LDPC decode
        ─► CRC check ─┬─ pass, or last transmission ─► LinkResult (bytes, lost ranges, counts)
                      └─ fail (HARQ) ─► send the block again with the next rv

A block whose received LLRs are all exactly zero (an erasure: nothing was heard, e.g.
Es/N0 -300 dB) is counted lost even if its decoded word passes the CRC: the all-zero
word of an all-zero LLR vector has a valid CRC24B.

Every block of every payload in one ``transmit`` call is processed in batches of up to
``chunk_blocks`` code blocks, spread over ``num_threads`` worker threads (the compiled
kernels release the GIL; plain threads, so nothing spins between calls and the link
coexists with PyTorch work in the same process). Randomness is per (payload seed, block
index, transmission), so results do not depend on batching or threads; transmission 0
uses the payload's seed, retransmission t >= 1 ``harq_seed(seed, t)`` (fresh noise and
fading: a retransmission comes later than the channel's coherence time). Bits are
MSB-first within each byte (``np.unpackbits``).
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
from channels.scrambling import Scrambler, c_init
from channels.segmentation import BlockLayout
from channels.snr import check_snr_db, noise_variance

#: Default code blocks per batch on the CPU. A batch's stage arrays take ~125 KiB per
#: k = 4096 block: 16 blocks (~2 MiB per worker) stay in L2/L3 and below glibc's
#: trim threshold, so batches reuse heap pages instead of faulting in fresh ones (64
#: blocks cost ~60 us/block more in page faults and cache misses), while the Python
#: work per batch (~3% at 16 blocks) still fits the GIL budget. See docs/channels.md.
CPU_CHUNK_BLOCKS = 16


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
        Complex symbols sent for this payload, every transmission counted
        (sum of ``transmissions`` * symbols per block).
    block_ok : [num_blocks] bool
        CRC verdict per code block (payload byte i is in block i // block_payload_bytes;
        with a priority part, its blocks come first and the rest count from its end).
    decoder_iterations : int
        LDPC iterations summed over the payload's blocks and transmissions (0 uncoded).
    transmissions : [num_blocks] int32
        Transmissions of each block (1 without HARQ; with HARQ until its CRC passed or
        ``max_transmissions``).
    channel_uses_first : int
        Complex symbols of the first transmission of every block (the payload's size on
        the air; equals ``channel_uses`` without retransmissions).
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
    transmissions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    channel_uses_first: int = 0

    @property
    def rounds(self) -> int:
        """Transmissions the payload needed: the most of any of its blocks."""
        return int(self.transmissions.max()) if self.transmissions.size else 0

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
    transmissions: np.ndarray  # [nb] int32 transmissions per block


class Link:
    """A configured link; ``transmit`` moves byte payloads across it.

    Parameters
    ----------
    config : LinkConfig
    chunk_blocks : int | None
        Most code blocks per internal batch (memory vs. per-call overhead); None: 16 on
        the CPU (``CPU_CHUNK_BLOCKS``), 1024 for the Sionna chain on a GPU, 8192 for
        ``decoder="gpu"``.
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
            chunk_blocks = CPU_CHUNK_BLOCKS if config.device == "cpu" else \
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
        self.scrambler = (Scrambler(c_init(config.n_rnti, config.n_id), self.backend.coded_bits)
                          if config.scrambling else None)
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
        """Complex symbols of one transmission of a ``num_bytes`` payload (HARQ
        retransmissions add to ``LinkResult.channel_uses``)."""
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
                          np.zeros(nb, dtype=np.int32), np.zeros(nb, dtype=np.int32)))
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

    def set_num_threads(self, num_threads: int) -> None:
        """Decode on ``num_threads`` threads from now on, this link and its priority link
        (``decoder="fast"`` only; results do not depend on it). A process worker takes 1:
        N workers on N cores. A started pool of another size is shut down."""
        if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
            raise ValueError(f"num_threads {num_threads!r} must be a positive int")
        if self.config.decoder == "fast" and num_threads != self.num_threads:
            with self._pool_lock:
                if self._pool is not None:
                    self._pool.shutdown(wait=False)
                self._pool, self.num_threads = None, num_threads
        if self.priority_link is not None:
            self.priority_link.set_num_threads(num_threads)

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
        """Send one batch of blocks; with HARQ, resend those whose CRC fails."""
        be = self.backend
        info = np.concatenate([rx[p].sent[j0:j1] for p, j0, j1 in pieces])
        if hasattr(be, "transmit_blocks") and self.config.rvs == (0,):
            # GPU chain, one transmission: scrambling, noise, erasure and CRC checks and
            # packing on the device (HARQ takes the stage-by-stage loop below)
            decoded, ok, iters = be.transmit_blocks(info, [
                (noise_variance(snr_list[p]), seed_list[p], j0, j1) for p, j0, j1 in pieces],
                self.scrambler)
            sent = np.ones(len(ok), dtype=np.int32)
            self._store(pieces, rx, decoded, ok, iters, sent)
            return
        bits = np.unpackbits(info, axis=1)
        owner = np.concatenate([np.full(j1 - j0, p) for p, j0, j1 in pieces])
        block = np.concatenate([np.arange(j0, j1) for _, j0, j1 in pieces])
        num = info.shape[0]
        decoded = np.zeros_like(info)
        ok = np.zeros(num, dtype=bool)
        heard = np.zeros(num, dtype=bool)
        iters = np.zeros(num, dtype=np.int32)
        sent = np.zeros(num, dtype=np.int32)
        rows = np.arange(num)
        soft: np.ndarray | None = None
        rvs = self.config.rvs
        for t, rv in enumerate(rvs):
            llr = self._send(bits[rows], rv, t, owner[rows], block[rows], snr_list, seed_list)
            heard[rows] |= np.any(llr != 0, axis=1)
            soft = be.combine(llr, rv, soft)
            u_hat, it = be.decode(soft, last=t == len(rvs) - 1)
            dec = np.packbits(u_hat, axis=1)
            decoded[rows] = dec
            ok[rows] = self.layout.crc_ok(dec) & heard[rows]  # an erasure is lost
            iters[rows] += it
            sent[rows] += 1
            again = ~ok[rows]
            if not again.any():
                break
            rows, soft = rows[again], soft[again]
        self._store(pieces, rx, decoded, ok, iters, sent)

    @staticmethod
    def _store(pieces: list[tuple[int, int, int]], rx: list[_Rx], decoded: np.ndarray,
               ok: np.ndarray, iters: np.ndarray, sent: np.ndarray) -> None:
        """Copy a batch's per-block results into the payloads' receive records."""
        row = 0
        for p, j0, j1 in pieces:
            rows_p = slice(row, row + j1 - j0)
            rx[p].received[j0:j1] = decoded[rows_p]
            rx[p].ok[j0:j1] = ok[rows_p]
            rx[p].iterations[j0:j1] = iters[rows_p]
            rx[p].transmissions[j0:j1] = sent[rows_p]
            row += j1 - j0

    def _send(self, bits: np.ndarray, rv: int, t: int, owner: np.ndarray, block: np.ndarray,
              snr_list: list[float], seed_list: list[int]) -> np.ndarray:
        """Transmission ``t`` (redundancy version ``rv``) of some blocks.

        Input
        -----
        bits : [B, k] uint8 info bits; owner, block : [B] payload and block index of each

        Output
        ------
        llr : [B, n] float32   descrambled logits of this transmission
        """
        be = self.backend
        coded = be.encode(bits, rv)
        if self.scrambler is not None:
            coded = self.scrambler.scramble(coded, block)
        x = be.modulate(coded)
        x_eq = np.empty_like(x)
        noise_var = np.empty(x.shape, dtype=np.float32)
        # runs of consecutive blocks of one payload share one channel call
        cut = np.flatnonzero((np.diff(owner) != 0) | (np.diff(block) != 1)) + 1
        for a, b in zip(np.r_[0, cut], np.r_[cut, len(owner)], strict=True):
            p = int(owner[a])
            seed = seed_list[p] if t == 0 else harq_seed(seed_list[p], t)
            x_eq[a:b], noise_var[a:b] = self.channel.apply(
                x[a:b], noise_variance(snr_list[p]), seed, int(block[a]))
        llr = be.demodulate(x_eq, noise_var)
        if self.scrambler is not None:
            self.scrambler.descramble_llr(llr, block)
        return llr

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
            channel_uses=int(r.transmissions.sum()) * self.symbols_per_block,
            block_ok=r.ok.copy(),
            decoder_iterations=int(r.iterations.sum()),
            transmissions=r.transmissions.copy(),
            channel_uses_first=nb * self.symbols_per_block,
        )


def priority_seed(seed: int) -> int:
    """Seed of a payload's priority blocks, derived from the payload's seed (so the two
    parts see independent noise and fading)."""
    state = np.random.SeedSequence([seed, 0x9E3779B9]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) | (int(state[1]) >> 1)


def harq_seed(seed: int, transmission: int) -> int:
    """Seed of a payload's retransmission ``transmission`` >= 1 (fresh noise and fading)."""
    state = np.random.SeedSequence([seed, 0x48415251, transmission]).generate_state(2, np.uint32)
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
        transmissions=np.concatenate([head.transmissions, tail.transmissions]),
        channel_uses_first=head.channel_uses_first + tail.channel_uses_first,
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
    if isinstance(esno_db, np.ndarray) and esno_db.ndim == 0:
        esno_db = esno_db.item()  # a 0-d array is one number
    if isinstance(esno_db, Sequence | np.ndarray) and not isinstance(esno_db, str):
        if len(esno_db) != count:
            raise ValueError(f"got {len(esno_db)} esno_db values for {count} payloads")
        return [check_snr_db(v, f"esno_db[{i}]") for i, v in enumerate(esno_db)]
    value = check_snr_db(esno_db, "esno_db")
    return [value] * count
