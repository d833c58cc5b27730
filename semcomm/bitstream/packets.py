"""Payload <-> bytes: entropy coding of token grids and float blocks, framed in packets.

::

    TokenGrid / FloatBlock ...                         (transmitter)
         │  global raster positions 0 .. T-1 (blocks in order, each row by row)
         ▼
    split into packets: contiguous position ranges, as many as fit packet_bytes
         │  per packet, one range-coder stream (constriction RangeEncoder):
         │    for each block piece: mask bits (adaptive context model, if masked)
         │                          then the symbols of its kept positions
         │                          (indices: static Prior; floats: D levels each)
         ▼
    [ver | start | count | CRC-32 | body | zero padding] x P   ──► bytes ──► link
                                                                       │
    DecodedPayload ◄── drop lost / bad-CRC packets, decode the rest ◄──┘ (receiver)
         grids[name].indices/mask/missing, floats[name].values/levels/mask/missing

Packet layout (all integers big-endian)::

    byte 0          version byte 0xB0 | FORMAT_VERSION << 1 | packet_mode  (0xB2 / 0xB3)
    [1, 1+w)        start: first global position           (packet mode only;
    [1+w, 1+2w)     count: number of positions               w = spec.field_bytes)
    next 4 bytes    CRC-32 (zlib) seeded with spec.fingerprint, over the packet index
                    (4 bytes, implicit) and every other byte of the packet, padding too
    rest            range-coder words (big-endian, trailing zero bytes dropped), then
                    zero padding up to exactly packet_bytes (packet mode)

Packet p occupies bytes [p * packet_bytes, (p + 1) * packet_bytes), so with
``packet_bytes = link.block_payload_bytes`` each packet is one code block and a block
whose CRC fails loses exactly that packet's positions. Packets hold contiguous position
ranges, as many positions as fit (a packet is cut wherever it is full, so a token row may
straddle two packets: finer than whole rows, and no space lost to row alignment); one
position's symbols must fit one packet (else ``ValueError`` at encode time).

Single-packet mode (``packet_bytes=None``) writes one packet with no start/count fields
and no padding: the smallest payload, and the cliff (any error loses everything).

Detection: a packet is discarded when the link flags any of its bytes, when it is
truncated, or when its CRC-32 fails. The CRC detects every error burst up to 32 bits and
misses a random corruption with probability 2**-32 (about 2.3e-10) per corrupt packet;
seeding it with the spec fingerprint makes bytes built for another spec (foreign bytes)
fail the same way. Decoded symbols are in range by construction (the models' supports),
and every loop is bounded by sizes from the spec, so bad bytes never raise or hang.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import constriction
import numpy as np

from semcomm.bitstream.blocks import (
    CRC_BYTES,
    FORMAT_VERSION,
    Block,
    DecodedFloats,
    DecodedGrid,
    DecodedPayload,
    FloatSpec,
    PacketReport,
    PayloadSpec,
    TokenGrid,
)
from semcomm.bitstream.mask import decode_mask, encode_mask, mask_costs_bits

_MAGIC = 0xB0
_RangeEncoder = constriction.stream.queue.RangeEncoder
_RangeDecoder = constriction.stream.queue.RangeDecoder


def _version_byte(packet_mode: bool) -> int:
    return _MAGIC | (FORMAT_VERSION << 1) | int(packet_mode)


# ------------------------------------------------------------------------ body coding
@dataclass(frozen=True)
class _Source:
    """Encoder view of one block: flat mask [n] bool or None, symbols [n, S] int32."""

    width: int
    mask: np.ndarray | None
    symbols: np.ndarray
    model: Any


def _prepare(block: Block) -> _Source:
    h, w = block.spec.shape
    if isinstance(block, TokenGrid):
        symbols = block.indices.reshape(h * w, 1)
        model = block.prior.model
    else:
        symbols = block.levels().reshape(h * w, -1)
        model = block.spec.model_prior.model
    mask = None if block.mask is None else block.mask.ravel()
    if mask is not None:
        symbols = np.where(mask[:, None], symbols, 0)  # unkept entries are never coded
    return _Source(w, mask, symbols.astype(np.int32), model)


def _pieces(spec: PayloadSpec, start: int, stop: int) -> Iterator[tuple[int, int, int]]:
    """(block index, local start, local stop) of every block overlapping [start, stop)."""
    offs = spec.offsets
    for b in range(len(spec.blocks)):
        lo, hi = max(start, offs[b]), min(stop, offs[b + 1])
        if lo < hi:
            yield b, lo - offs[b], hi - offs[b]


def _encode_body(sources: Sequence[_Source], spec: PayloadSpec, start: int, stop: int) -> bytes:
    """Range-code positions [start, stop) -> body bytes (trailing zero bytes dropped)."""
    enc = _RangeEncoder()
    for b, a, z in _pieces(spec, start, stop):
        src = sources[b]
        syms = src.symbols[a:z]
        if src.mask is not None:
            seg = src.mask[a:z]
            encode_mask(enc, seg, src.width, a)
            syms = syms[seg]
        if syms.size:
            enc.encode(syms.ravel(), src.model)
    # Reading past the end yields zero words in constriction's decoder, so trailing zero
    # bytes carry no information and are not sent (every byte counts in bpp).
    return enc.get_compressed().astype(">u4").tobytes().rstrip(b"\0")


_Piece = tuple[int, int, int, np.ndarray, np.ndarray]  # block, a, z, kept [n], symbols [n, S]


def _decode_body(body: bytes, spec: PayloadSpec, start: int, stop: int) -> list[_Piece]:
    """Inverse of ``_encode_body``; may raise on garbage (the caller records the error)."""
    padded = body + b"\0" * (-len(body) % 4)
    dec = _RangeDecoder(np.frombuffer(padded, dtype=">u4").astype(np.uint32))
    out: list[_Piece] = []
    for b, a, z in _pieces(spec, start, stop):
        bs = spec.blocks[b]
        n, s = z - a, bs.symbols_per_position
        kept = decode_mask(dec, n, bs.shape[1], a) if bs.masked else np.ones(n, dtype=bool)
        syms = np.zeros((n, s), dtype=np.int64)
        k = int(kept.sum())
        if k:
            vals = np.asarray(dec.decode(bs.model_prior.model, k * s), dtype=np.int64)
            if vals.size != k * s or vals.min() < 0 or vals.max() >= bs.model_prior.num_symbols:
                raise ValueError("decoded symbols out of range")  # defensive: cannot happen
            syms[kept] = vals.reshape(k, s)
        out.append((b, a, z, kept, syms))
    return out


# --------------------------------------------------------------------------- framing
def _crc(spec: PayloadSpec, index: int, *parts: bytes) -> bytes:
    crc = zlib.crc32(index.to_bytes(4, "big"), spec.fingerprint)
    for part in parts:
        crc = zlib.crc32(part, crc)
    return crc.to_bytes(CRC_BYTES, "big")


def _frame_single(spec: PayloadSpec, body: bytes) -> bytes:
    head = bytes([_version_byte(False)])
    return head + _crc(spec, 0, head, body) + body


def _frame_packet(spec: PayloadSpec, index: int, start: int, count: int, body: bytes) -> bytes:
    w = spec.field_bytes
    assert spec.packet_bytes is not None
    head = bytes([_version_byte(True)]) + start.to_bytes(w, "big") + count.to_bytes(w, "big")
    rest = body + b"\0" * (spec.packet_bytes - len(head) - CRC_BYTES - len(body))
    return head + _crc(spec, index, head, rest) + rest


def _fit_packet(sources: Sequence[_Source], spec: PayloadSpec, cum: np.ndarray,
                start: int, stop: int | None = None) -> tuple[int, bytes]:
    """Largest count n of positions from ``start`` (up to ``stop``, default the end)
    whose body fits one packet.

    Guesses n from the estimated per-position costs ``cum`` (cumulative bits), then
    corrects with the real coded size, aiming at the capacity with the coder's 32-bit
    word granularity in mind; bisects after a few steps. About 4-6 encodes per packet.
    """
    assert spec.packet_bytes is not None
    cap = spec.packet_bytes - spec.header_bytes
    total = spec.total_positions if stop is None else stop
    lo, lo_body, hi = 0, b"", total - start + 1  # lo fits, hi does not (or is past the end)

    def guess(target_bits: float) -> int:
        n = int(np.searchsorted(cum, cum[start] + target_bits, side="right")) - 1 - start
        return min(max(n, lo + 1), hi - 1)

    n = guess(8 * cap - 48)  # the range coder's flush costs up to ~2 words
    for step in range(80):
        body = _encode_body(sources, spec, start, start + n)
        fits = len(body) <= cap
        if fits:
            lo, lo_body = n, body
        else:
            hi = n
        if hi - lo <= 1:
            break
        slack_bits = 8 * (cap - len(body)) + (24 if fits else -24)
        n = guess(cum[start + n] - cum[start] + slack_bits) if step < 6 else (lo + hi) // 2
    if lo == 0:
        raise ValueError(_too_big_message(spec, start, len(body), cap))
    return lo, lo_body


def _too_big_message(spec: PayloadSpec, pos: int, size: int, cap: int) -> str:
    b = int(np.searchsorted(spec.offsets, pos, side="right")) - 1
    local = pos - spec.offsets[b]
    row, col = divmod(local, spec.blocks[b].shape[1])
    return (f"position {pos} (block {spec.blocks[b].name!r}, row {row}, col {col}) codes to "
            f"{size} bytes, more than the {cap} bytes a {spec.packet_bytes}-byte packet holds "
            f"after its {spec.header_bytes}-byte header; raise packet_bytes or send fewer "
            "bits per position")


def _cumulative_costs(sources: Sequence[_Source], blocks: Sequence[Block]) -> np.ndarray:
    """Estimated bits per global position, cumulated: [T + 1] float64."""
    parts = []
    for src, block in zip(sources, blocks, strict=True):
        prior = block.prior if isinstance(block, TokenGrid) else block.spec.model_prior
        cost = prior.costs_bits(src.symbols).sum(axis=1)
        if src.mask is not None:
            cost = np.where(src.mask, cost, 0.0) + mask_costs_bits(src.mask, src.width, 0)
        parts.append(cost)
    return np.concatenate([[0.0], np.cumsum(np.concatenate(parts))])


def encode_payload(blocks: Sequence[Block], packet_bytes: int | None = None) -> bytes:
    """Entropy-code token grids and float blocks into one payload.

    Input
    -----
    blocks : sequence of TokenGrid / FloatBlock
        In transmission order, names unique. The receiver needs
        ``PayloadSpec.of(blocks, packet_bytes)`` (shapes, priors, quantizers; no data).
    packet_bytes : int or None
        None: single packet (smallest). An int: independent packets of exactly this many
        bytes (use ``link.block_payload_bytes``); at least ``spec.header_bytes + 4``.

    Output
    ------
    data : bytes
        The complete payload, headers included: bpp = 8 * len(data) / pixels. In packet
        mode len(data) is a multiple of packet_bytes.
    """
    if packet_bytes is None:
        spec = PayloadSpec.of(blocks, packet_bytes)
        sources = [_prepare(b) for b in blocks]
        return _frame_single(spec, _encode_body(sources, spec, 0, spec.total_positions))
    return b"".join(packet for _, _, packet in encode_packets(blocks, packet_bytes))


def encode_packets(blocks: Sequence[Block], packet_bytes: int,
                   breaks: Sequence[int] = ()) -> list[tuple[int, int, bytes]]:
    """``encode_payload``'s packet mode, packet by packet.

    Input
    -----
    blocks, packet_bytes : as :func:`encode_payload`
    breaks : global positions in (0, T) where a packet must end (a new one starts
        there), e.g. where a region a codec protects begins or ends, so that no packet
        mixes protected and unprotected positions. Empty (default): packets are cut
        only where they are full.

    Output
    ------
    packets : list of (start, count, data)
        Each packet's first global position (blocks in transmission order, raster order
        inside each), the positions it carries, and its ``packet_bytes`` bytes. Joined,
        the data is exactly ``encode_payload(blocks, packet_bytes)`` when ``breaks`` is
        empty; a codec uses the positions to tell which packets carry a block (e.g. to
        mark them priority).
    """
    spec = PayloadSpec.of(blocks, packet_bytes)
    sources = [_prepare(b) for b in blocks]
    cum = _cumulative_costs(sources, blocks)
    total = spec.total_positions
    cuts = sorted({int(b) for b in breaks})
    if cuts and not 0 < cuts[0] <= cuts[-1] < total:
        raise ValueError(f"packet breaks {cuts[:4]}... must lie in (0, {total}) (the "
                         "payload's positions)")
    ends = [*cuts, total]
    packets: list[tuple[int, int, bytes]] = []
    start, seg = 0, 0
    while start < total:
        while ends[seg] <= start:
            seg += 1
        count, body = _fit_packet(sources, spec, cum, start, ends[seg])
        packets.append((start, count, _frame_packet(spec, len(packets), start, count, body)))
        start += count
    return packets


# --------------------------------------------------------------------------- decoding
class _Receiver:
    """Accumulates decoded pieces; positions never written stay missing."""

    def __init__(self, spec: PayloadSpec) -> None:
        self.spec = spec
        self.covered = np.zeros(spec.total_positions, dtype=bool)
        self.kept = [np.zeros(b.shape[0] * b.shape[1], dtype=bool) for b in spec.blocks]
        self.syms = [np.zeros((b.shape[0] * b.shape[1], b.symbols_per_position), dtype=np.int64)
                     for b in spec.blocks]

    def commit(self, start: int, stop: int, pieces: list[_Piece]) -> None:
        self.covered[start:stop] = True
        for b, a, z, kept, syms in pieces:
            self.kept[b][a:z] = kept
            self.syms[b][a:z] = syms

    def gaps(self) -> list[tuple[int, int]]:
        """Maximal runs [a, b) of missing global positions."""
        edges = np.flatnonzero(np.diff(np.concatenate([[1], self.covered.view(np.int8), [1]])))
        return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]

    def result(self, packets: list[PacketReport], errors: list[str]) -> DecodedPayload:
        grids: dict[str, DecodedGrid] = {}
        floats: dict[str, DecodedFloats] = {}
        for b, bs in enumerate(self.spec.blocks):
            h, w = bs.shape
            missing = ~self.covered[self.spec.offsets[b]:self.spec.offsets[b + 1]].reshape(h, w)
            mask = (self.kept[b].reshape(h, w) & ~missing) if bs.masked else np.ones((h, w), bool)
            syms = np.where((mask & ~missing)[..., None], self.syms[b].reshape(h, w, -1), 0)
            if isinstance(bs, FloatSpec):
                values = np.where((mask & ~missing)[..., None], bs.quantizer.dequantize(syms),
                                  np.float32(0.0))
                floats[bs.name] = DecodedFloats(values.astype(np.float32), syms, mask, missing)
            else:
                grids[bs.name] = DecodedGrid(syms[..., 0], mask, missing)
        gaps = self.gaps()
        if gaps:
            shown = ", ".join(f"[{a}, {z})" for a, z in gaps[:4])
            more = f" and {len(gaps) - 4} more ranges" if len(gaps) > 4 else ""
            errors = [*errors, f"{int((~self.covered).sum())} of {self.spec.total_positions} "
                               f"positions missing: {shown}{more}"]
        return DecodedPayload(grids, floats, tuple(packets), tuple(errors))


def _hit(lost: Sequence[tuple[int, int]], lo: int, hi: int) -> bool:
    return any(s < hi and e > lo for s, e in lost)


def _check_lost(lost: Any) -> list[tuple[int, int]]:
    out = []
    for r in lost:
        s, e = (int(v) for v in r)
        if s < 0 or e < s:
            raise ValueError(f"lost byte range ({s}, {e}) must satisfy 0 <= start <= stop")
        if e > s:
            out.append((s, e))
    return out


def _open_single(data: bytes, spec: PayloadSpec) -> tuple[bytes, str]:
    """Check a single-mode payload -> (body, error); error is empty when intact."""
    if len(data) < spec.header_bytes:
        return b"", f"truncated: {len(data)} bytes, less than the {spec.header_bytes}-byte header"
    if data[0] != _version_byte(False):
        return b"", (f"not a single-packet semcomm v{FORMAT_VERSION} payload "
                     f"(first byte {data[0]:#04x})")
    body = data[spec.header_bytes:]
    if _crc(spec, 0, data[:1], body) != data[1:spec.header_bytes]:
        return b"", "checksum mismatch (corrupt, truncated or foreign bytes)"
    return body, ""


def _open_packet(chunk: bytes, index: int, spec: PayloadSpec) -> tuple[int, int, bytes, str]:
    """Check packet ``index`` -> (start, count, body, error); error is empty when intact."""
    w, hb = spec.field_bytes, spec.header_bytes
    if len(chunk) < (spec.packet_bytes or 0):
        return 0, 0, b"", f"truncated ({len(chunk)} of {spec.packet_bytes} bytes)"
    if chunk[0] != _version_byte(True):
        return 0, 0, b"", f"not a semcomm v{FORMAT_VERSION} packet (first byte {chunk[0]:#04x})"
    head, crc, rest = chunk[:1 + 2 * w], chunk[1 + 2 * w:hb], chunk[hb:]
    if _crc(spec, index, head, rest) != crc:
        return 0, 0, b"", "checksum mismatch (corrupt or foreign bytes)"
    start = int.from_bytes(head[1:1 + w], "big")
    count = int.from_bytes(head[1 + w:], "big")
    if count < 1 or start + count > spec.total_positions:
        return 0, 0, b"", (f"header range [{start}, {start + count}) invalid for "
                           f"{spec.total_positions} positions")
    return start, count, rest, ""


def _try_decode(rx: _Receiver, body: bytes, start: int, stop: int) -> str:
    """Decode a checked body into ``rx``; returns an error string instead of raising."""
    if rx.covered[start:stop].any():
        return f"positions [{start}, {stop}) overlap an earlier packet"
    try:
        pieces = _decode_body(body, rx.spec, start, stop)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # constriction raises AssertionError/panics on garbage
        return f"undecodable body ({type(exc).__name__}: {exc})"
    rx.commit(start, stop, pieces)
    return ""


def decode_payload(data: bytes, spec: PayloadSpec,
                   lost: Sequence[tuple[int, int]] = ()) -> DecodedPayload:
    """Decode a payload; never raises on bad bytes.

    Input
    -----
    data : bytes
        Received payload (same length as sent when it came through a link).
    spec : PayloadSpec
        Out-of-band knowledge; ``spec.packet_bytes`` selects the mode.
    lost : sequence of (start, stop)
        Byte ranges [start, stop) the link flagged (CRC failed; content is garbage).
        Packets touching them are discarded without looking at their bytes.

    Output
    ------
    DecodedPayload
        Positions of every discarded, truncated or absent packet are ``missing``;
        everything else is exactly what was encoded. ``errors`` says why.
    """
    if not isinstance(spec, PayloadSpec):
        raise ValueError(f"spec must be a PayloadSpec, got {type(spec)}")
    data = bytes(data)
    ranges = _check_lost(lost)
    rx = _Receiver(spec)
    reports: list[PacketReport] = []
    if spec.packet_bytes is None:
        if data:
            body, err = _open_single(data, spec)
            if _hit(ranges, 0, len(data)):
                err = "bytes reported lost by the link"
            if not err:
                err = _try_decode(rx, body, 0, spec.total_positions)
            reports.append(PacketReport(0, (0, len(data)),
                                        None if err else (0, spec.total_positions), err))
    else:
        pb = spec.packet_bytes
        for p in range(-(-len(data) // pb)):
            lo, hi = p * pb, min((p + 1) * pb, len(data))
            start, count, body, err = _open_packet(data[lo:hi], p, spec)
            if _hit(ranges, lo, (p + 1) * pb):
                err = "bytes reported lost by the link"
            if not err:
                err = _try_decode(rx, body, start, start + count)
            reports.append(PacketReport(p, (lo, hi), None if err else (start, start + count), err))
    errors = [f"packet {r.index} (bytes [{r.byte_range[0]}, {r.byte_range[1]})): {r.error}"
              for r in reports if r.error]
    if not data:
        errors.append("empty payload")
    return rx.result(reports, errors)
