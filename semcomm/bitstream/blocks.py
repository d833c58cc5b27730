"""Typed values of the bitstream layer: what goes in, what the receiver knows, what comes out.

Transmitter side: :class:`TokenGrid` (codebook indices at kept positions) and
:class:`FloatBlock` (scalar-quantized vectors at kept positions). Receiver side:
:class:`PayloadSpec` (everything known out of band: names, shapes, priors, quantizers,
packet size) and the decoded values :class:`DecodedGrid`, :class:`DecodedFloats`,
:class:`DecodedPayload`.

Positions are numbered globally: the blocks of a payload in their given order, each in
raster order (row by row); block ``b`` occupies ``[spec.offsets[b], spec.offsets[b+1])``.
Packets cover contiguous ranges of these global positions.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from semcomm.bitstream.prior import Prior, ScalarQuantizer, as_numpy

#: Format version written in every packet header (bumped on any layout change).
FORMAT_VERSION = 1
#: Bytes of the per-packet checksum (CRC-32, ``zlib.crc32``).
CRC_BYTES = 4
_MAX_POSITIONS = 2**32 - 1


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"block name must be a non-empty str, got {name!r}")


def _check_mask(mask: Any, shape: tuple[int, int], name: str) -> np.ndarray | None:
    """mask [H, W] bool (or None) -> read-only bool array, shape checked against the block."""
    if mask is None:
        return None
    m = as_numpy(mask)
    if m.dtype != np.bool_:
        raise ValueError(f"mask of block {name!r} must be bool, got dtype {m.dtype}")
    if m.shape != shape:
        raise ValueError(f"mask shape {m.shape} of block {name!r} differs from its grid "
                         f"shape {shape}")
    m = m.copy()
    m.setflags(write=False)
    return m


def _check_shape(shape: Any, name: str) -> tuple[int, int]:
    if len(shape) != 2 or min(int(s) for s in shape) < 1:
        raise ValueError(f"grid shape of block {name!r} must be (H, W) with H, W >= 1, got {shape}")
    return int(shape[0]), int(shape[1])


# --------------------------------------------------------------------------- inputs
@dataclass(frozen=True, kw_only=True, eq=False)
class TokenGrid:
    """Codebook indices of one latent grid.

    Attributes
    ----------
    name : str
        Key of the grid in the decoded payload.
    indices : [H, W] int (NumPy or torch)
        Codebook indices; must lie in [0, K) at kept positions (other positions are ignored,
        e.g. -1 is fine there).
    prior : Prior
        Static index model over K = ``prior.num_symbols`` symbols (from the checkpoint).
    mask : [H, W] bool or None
        Kept positions (True = index transmitted). None: every position is kept and no
        mask is transmitted.
    """

    name: str
    indices: np.ndarray
    prior: Prior
    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not isinstance(self.prior, Prior):
            raise ValueError(f"prior of grid {self.name!r} must be a Prior, got {type(self.prior)}")
        idx = as_numpy(self.indices)
        if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"indices of grid {self.name!r} must be an integer [H, W] array, "
                             f"got shape {idx.shape} dtype {idx.dtype}")
        shape = _check_shape(idx.shape, self.name)
        mask = _check_mask(self.mask, shape, self.name)
        idx = idx.astype(np.int64)
        kept = idx if mask is None else idx[mask]
        k = self.prior.num_symbols
        if kept.size and (kept.min() < 0 or kept.max() >= k):
            raise ValueError(f"indices of grid {self.name!r} must lie in [0, {k}) at kept "
                             f"positions, found min {kept.min()} max {kept.max()}")
        idx.setflags(write=False)
        object.__setattr__(self, "indices", idx)
        object.__setattr__(self, "mask", mask)

    @property
    def spec(self) -> GridSpec:
        """What the receiver must know about this grid."""
        return GridSpec(name=self.name, shape=_check_shape(self.indices.shape, self.name),
                        prior=self.prior, masked=self.mask is not None)


@dataclass(frozen=True, kw_only=True, eq=False)
class FloatBlock:
    """Float vectors at kept positions of a grid (AM-VQ's unquantized latents, or an
    enhancement layer), sent scalar-quantized and entropy-coded.

    Attributes
    ----------
    name : str
    values : [H, W, D] float (NumPy or torch)
        One D-vector per position; only kept positions are sent, and they must be
        finite. A [C, H, W] tensor ``t`` is passed as ``t.permute(1, 2, 0)``.
    quantizer : ScalarQuantizer
        Uniform quantizer (bits per value, range) applied to every component.
    mask : [H, W] bool or None
        Positions whose vectors are sent (None: all, no mask transmitted).
    prior : Prior or None
        Model of the quantizer levels, K = 2**bits (e.g. ``Prior.fit(q.quantize(train))``);
        None = uniform, i.e. exactly ``bits`` bits per value.
    """

    name: str
    values: np.ndarray
    quantizer: ScalarQuantizer
    mask: np.ndarray | None = None
    prior: Prior | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        v = as_numpy(self.values)
        if v.ndim != 3 or v.shape[2] < 1 or not np.issubdtype(v.dtype, np.floating):
            raise ValueError(f"values of float block {self.name!r} must be a float [H, W, D] array "
                             f"with D >= 1, got shape {v.shape} dtype {v.dtype}")
        shape = _check_shape(v.shape[:2], self.name)
        mask = _check_mask(self.mask, shape, self.name)
        sent = v if mask is None else v[mask]
        if not np.all(np.isfinite(sent)):
            raise ValueError(f"values of float block {self.name!r} contain NaN or inf at kept "
                             "positions")
        v = v.copy()
        v.setflags(write=False)
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "mask", mask)
        self.spec  # validates the quantizer/prior pair  # noqa: B018

    @property
    def spec(self) -> FloatSpec:
        """What the receiver must know about this block."""
        h, w, d = self.values.shape
        return FloatSpec(name=self.name, shape=(h, w), dim=d, quantizer=self.quantizer,
                         prior=self.prior, masked=self.mask is not None)

    def levels(self) -> np.ndarray:
        """Quantizer levels [H, W, D] int64 at kept positions, 0 elsewhere (what is sent)."""
        if self.mask is None:
            return self.quantizer.quantize(self.values)
        sent = np.where(self.mask[..., None], self.values, self.quantizer.lo)
        return np.where(self.mask[..., None], self.quantizer.quantize(sent), 0)


# ----------------------------------------------------------------------------- spec
@dataclass(frozen=True, kw_only=True)
class GridSpec:
    """Receiver's knowledge of a token grid: name, (H, W), index prior, mask sent or not."""

    name: str
    shape: tuple[int, int]
    prior: Prior
    masked: bool

    def __post_init__(self) -> None:
        _check_name(self.name)
        object.__setattr__(self, "shape", _check_shape(self.shape, self.name))

    @property
    def symbols_per_position(self) -> int:
        return 1

    @property
    def model_prior(self) -> Prior:
        """Prior of the symbols sent per kept position."""
        return self.prior

    def key(self) -> bytes:
        return b"G" + struct.pack(">IIIB", *self.shape, self.prior.fingerprint,
                                  self.masked) + self.name.encode()


@dataclass(frozen=True, kw_only=True)
class FloatSpec:
    """Receiver's knowledge of a float block: name, (H, W), D, quantizer, level prior, mask."""

    name: str
    shape: tuple[int, int]
    dim: int
    quantizer: ScalarQuantizer
    prior: Prior | None
    masked: bool

    def __post_init__(self) -> None:
        _check_name(self.name)
        object.__setattr__(self, "shape", _check_shape(self.shape, self.name))
        if self.dim < 1:
            raise ValueError(f"vector dimension D={self.dim} of block {self.name!r} must be >= 1")
        if not isinstance(self.quantizer, ScalarQuantizer):
            raise ValueError(f"quantizer of block {self.name!r} must be a ScalarQuantizer")
        if self.prior is not None and self.prior.num_symbols != self.quantizer.levels:
            raise ValueError(f"level prior of block {self.name!r} has K={self.prior.num_symbols} "
                             f"symbols, the {self.quantizer.bits}-bit quantizer needs "
                             f"{self.quantizer.levels}")

    @property
    def symbols_per_position(self) -> int:
        return self.dim

    @cached_property
    def model_prior(self) -> Prior:
        """Prior of the levels (uniform when none was given)."""
        return self.prior if self.prior is not None else Prior.uniform(self.quantizer.levels)

    def key(self) -> bytes:
        return (b"F" + struct.pack(">IIIIB", *self.shape, self.dim, self.model_prior.fingerprint,
                                   self.masked) + self.quantizer.key() + self.name.encode())


BlockSpec = GridSpec | FloatSpec
Block = TokenGrid | FloatBlock


@dataclass(frozen=True)
class PayloadSpec:
    """What the receiver knows out of band about a payload.

    Attributes
    ----------
    blocks : tuple of GridSpec / FloatSpec
        In transmission order; names unique.
    packet_bytes : int or None
        Packet size in bytes (use the link's ``block_payload_bytes`` so packet p is code
        block p); None = single-packet mode (maximum compression, any loss loses all).
    """

    blocks: tuple[BlockSpec, ...]
    packet_bytes: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(self.blocks))
        if not self.blocks:
            raise ValueError("a payload needs at least one block (TokenGrid or FloatBlock)")
        names = [b.name for b in self.blocks]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"block names must be unique, repeated: {dup}")
        if self.total_positions > _MAX_POSITIONS:
            raise ValueError(f"payload has {self.total_positions} positions, at most "
                             f"{_MAX_POSITIONS} are supported")
        if isinstance(self.packet_bytes, np.integer):
            object.__setattr__(self, "packet_bytes", int(self.packet_bytes))
        if self.packet_bytes is not None:
            pb, least = self.packet_bytes, self.header_bytes + 4
            if isinstance(pb, bool) or not isinstance(pb, int) or pb < least:
                raise ValueError(f"packet_bytes={pb!r} must be an int >= {least} "
                                 f"(a {self.header_bytes}-byte packet header plus one coder word)")

    @classmethod
    def of(cls, blocks: Sequence[Block], packet_bytes: int | None = None) -> PayloadSpec:
        """The spec a receiver needs for these transmitter-side blocks."""
        if isinstance(blocks, TokenGrid | FloatBlock):
            raise ValueError("blocks must be a sequence of TokenGrid / FloatBlock; wrap a single "
                             "block in a list")
        for b in blocks:
            if not isinstance(b, TokenGrid | FloatBlock):
                raise ValueError(f"payload blocks must be TokenGrid or FloatBlock, got {type(b)}")
        return cls(tuple(b.spec for b in blocks), packet_bytes)

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        """Global position where each block starts, plus the total at the end."""
        out = [0]
        for b in self.blocks:
            out.append(out[-1] + b.shape[0] * b.shape[1])
        return tuple(out)

    @property
    def total_positions(self) -> int:
        """T = sum of H * W over blocks."""
        return self.offsets[-1]

    @property
    def field_bytes(self) -> int:
        """Width of the start/count fields of a packet header (enough for T)."""
        return max(1, (self.total_positions.bit_length() + 7) // 8)

    @property
    def header_bytes(self) -> int:
        """Per-packet header: 1 version byte + CRC-32 (+ start and count in packet mode)."""
        fields = 0 if self.packet_bytes is None else 2 * self.field_bytes
        return 1 + fields + CRC_BYTES

    @cached_property
    def fingerprint(self) -> int:
        """CRC-32 of everything the receiver knows; seeds every packet checksum, so bytes
        made for another spec (foreign bytes) fail the check."""
        key = struct.pack(">BI", FORMAT_VERSION, self.packet_bytes or 0)
        return zlib.crc32(key + b"|".join(b.key() for b in self.blocks))


# ---------------------------------------------------------------------------- outputs
@dataclass(frozen=True)
class DecodedGrid:
    """A received token grid.

    Attributes
    ----------
    indices : [H, W] int64
        Decoded indices at ``valid`` positions, 0 elsewhere; always in [0, K).
    mask : [H, W] bool
        Kept positions as far as known: all True for a grid sent without mask; the
        decoded mask otherwise, False at missing positions (their status is unknown).
    missing : [H, W] bool
        Positions whose packet was lost or corrupt. Without a transmitted mask these are
        exactly the lost kept positions; with one they are every position of the lost
        packets (kept or not: the mask went down with them).
    """

    indices: np.ndarray
    mask: np.ndarray
    missing: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        """[H, W] bool: positions with a decoded index (kept and received)."""
        return self.mask & ~self.missing


@dataclass(frozen=True)
class DecodedFloats:
    """A received float block: ``values`` [H, W, D] float32 (dequantized at ``valid``
    positions, 0 elsewhere), ``levels`` [H, W, D] int64 (quantizer levels, 0 elsewhere),
    ``mask`` and ``missing`` [H, W] bool as in :class:`DecodedGrid` (a missing flag per
    vector)."""

    values: np.ndarray
    levels: np.ndarray
    mask: np.ndarray
    missing: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        """[H, W] bool: positions with a decoded vector."""
        return self.mask & ~self.missing


@dataclass(frozen=True)
class PacketReport:
    """Fate of one packet: its byte range in the payload, the global positions it
    carried (None when it was lost, since its header is then not trusted) and why it
    failed (empty when intact)."""

    index: int
    byte_range: tuple[int, int]
    positions: tuple[int, int] | None
    error: str = ""


@dataclass(frozen=True)
class DecodedPayload:
    """Everything ``decode_payload`` recovered; it never raises on bad bytes.

    Attributes
    ----------
    grids, floats : name -> DecodedGrid / DecodedFloats
    packets : per-packet reports, in payload order
    errors : human-readable reasons for every loss (empty when all arrived intact)
    """

    grids: Mapping[str, DecodedGrid]
    floats: Mapping[str, DecodedFloats]
    packets: tuple[PacketReport, ...]
    errors: tuple[str, ...] = field(default_factory=tuple)

    @property
    def packets_total(self) -> int:
        """Packets present in the received bytes (truncated tail packets count)."""
        return len(self.packets)

    @property
    def packets_lost(self) -> int:
        """Packets discarded (link-flagged, checksum failure, truncated, bad header)."""
        return sum(1 for p in self.packets if p.error)

    @property
    def ok(self) -> bool:
        """True when every position was received."""
        return not self.errors
