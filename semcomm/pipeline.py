"""Transmitter -> link -> receiver, one line per stage.

::

    x, s ──► Transmitter.encode ──► Payload (bytes; cached per (image, codec, rate))
                                        │
                         channels.Link.transmit(bytes, esno_db, seed)
                                        │
                                        ▼
             LinkResult (bytes, CRC-lost byte ranges, bit/block counts)
                                        │
    x_hat ◄── Receiver.receive: failure policy ─► codec.decode ─► Received(status)

Failure policy for CRC-detected losses (the receiver knows which blocks failed):

* ``mean``    : do not decode; show the pixelwise mean image of the training split.
* ``grey``    : do not decode; show a mid-grey (128) image.
* ``conceal`` : hand the bytes (lost blocks included, as the decoder's hard decisions)
  to the codec; use what it returns if it decodes (status ``concealed``), else grey.

A codec that conceals losses itself (class attribute ``conceals_losses = True``: the
learned packet codecs, whose decoders fill lost tokens) is always given the bytes and
the lost ranges, whatever the policy: its partial decode is status ``concealed``, and
only a decode it gives up on (``ok=False``) gets the policy's fallback image.

Whatever the policy, a stream that the decoder rejects (e.g. corrupted by errors the
CRC missed) gives the policy's fallback image and status ``failed``.

Analog codecs (``payload_kind = "symbols"``, e.g. DeepJSCC) skip bytes and the link:
their complex symbols go over ``channels.analog.AnalogChannel`` (the same channel draws
as the link, see there) with :func:`send_symbols`, and ``Receiver.receive_symbols``
decodes them; there are no CRC losses, so the failure policy only applies when the
decoder gives up.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np

from semcomm.codecs.base import (
    AnalogCodec,
    Codec,
    Payload,
    RatePoint,
    ReceivedPayload,
    ReceivedSymbols,
    Reconstruction,
    SymbolPayload,
)

FAILURE_POLICIES = ("mean", "grey", "conceal")
#: Status of one received image.
STATUSES = ("ok", "concealed", "failed")


class LinkLike(Protocol):
    """What the pipeline needs of ``channels.Link``."""

    def transmit(self, payloads: Sequence[np.ndarray], esno_db: float,
                 seeds: Sequence[int], priority_bytes: Sequence[int] | None = None
                 ) -> list: ...


@dataclass(frozen=True)
class Encoded:
    """Transmitter output for one (image, codec, rate).

    Attributes
    ----------
    payload : Payload | SymbolPayload   the bytes (or analog symbols) sent, with the knob
    rate : RatePoint         the requested rate (resolved: bpp or knob)
    unreachable : bool       a bpp target below what the codec's cheapest setting gives
    """

    payload: Payload | SymbolPayload
    rate: RatePoint
    unreachable: bool


@dataclass(frozen=True)
class Received:
    """Receiver output for one transmission.

    Attributes
    ----------
    image : [H, W, 3] uint8       x_hat (the fallback image when ``status == "failed"``)
    labels : [H, W] uint8 | None  s_hat decoded by codecs that send a semantic map
    status : "ok" | "concealed" | "failed"
    error : str                   why decoding failed ("" otherwise)
    """

    image: np.ndarray
    labels: np.ndarray | None
    status: str
    error: str = ""


class Transmitter:
    """x, s -> Encoded (codec rate control; flags unreachable bpp targets)."""

    def __init__(self, codec: Codec | AnalogCodec) -> None:
        self.codec = codec

    def encode(self, image: np.ndarray, labels: np.ndarray | None, rate: RatePoint) -> Encoded:
        payload = self.codec.encode(image, labels, rate)
        if isinstance(payload, SymbolPayload):
            return Encoded(payload=payload, rate=rate, unreachable=False)
        if len(payload.data) == 0:
            raise ValueError(f"codec {self.codec.name!r} produced an empty payload at {rate.label}")
        unreachable = rate.unreachable(len(payload.data), payload.num_pixels)
        return Encoded(payload=payload, rate=rate, unreachable=unreachable)


def sends_symbols(codec: Codec | AnalogCodec) -> bool:
    """True for analog codecs, whose payload is complex channel symbols
    (``payload_kind = "symbols"``), sent over ``channels.analog`` instead of the link."""
    return getattr(codec, "payload_kind", "bytes") == "symbols"


def conceals_losses(codec: Codec | AnalogCodec) -> bool:
    """True when ``codec`` decodes around CRC-lost byte ranges itself (its decoder is
    given them whatever the failure policy)."""
    return bool(getattr(codec, "conceals_losses", False))


def decode_batch(codec: Codec | AnalogCodec, payloads: Sequence[ReceivedPayload]
                 ) -> list[Reconstruction]:
    """``codec.decode`` of each payload: in one call to the codec's ``decode_batch``
    where it has one (learned codecs: the network on a batch of latents; their results
    agree with per-image decoding to float rounding), else one by one."""
    if not payloads:
        return []
    batch = getattr(codec, "decode_batch", None)
    if batch is None or len(payloads) == 1:
        return [codec.decode(p) for p in payloads]
    recs: list[Reconstruction] = batch(payloads)
    if len(recs) != len(payloads):
        raise ValueError(f"{codec.name}.decode_batch returned {len(recs)} reconstructions "
                         f"for {len(payloads)} payloads")
    return recs


class DecodeCache:
    """Reconstructions keyed by what the decoder was given, for one experiment run.

    A codec's ``decode`` is a deterministic function of (bytes, shape, lost ranges): the
    learned codecs' exact-decode tests pin this. A sweep hands the decoder the same
    intact payload at every SNR point where its blocks all arrive, so decoding it once
    per (codec, payload) is enough. Entries are least-recently-used, bounded by the bytes
    of their arrays (``max_bytes``); cached arrays are read-only, as they are shared.
    """

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes {max_bytes} must be >= 0")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple, tuple[Reconstruction, int]] = OrderedDict()
        self._bytes = 0
        self.hits = self.misses = 0

    def decode(self, key: str, codec: Codec | AnalogCodec, payload: ReceivedPayload
               ) -> Reconstruction:
        """``codec.decode(payload)``, from the cache when ``key`` (the codec's name in the
        run) already decoded these exact bytes, shape and lost ranges."""
        ident = self._ident(key, payload)
        hit = self._entries.get(ident)
        if hit is not None:
            self._entries.move_to_end(ident)
            self.hits += 1
            return hit[0]
        self.misses += 1
        rec = codec.decode(payload)
        self.add(ident, rec)
        return rec

    def decode_batch(self, key: str, codec: Codec | AnalogCodec,
                     payloads: Sequence[ReceivedPayload]) -> list[Reconstruction]:
        """:meth:`decode` of each payload; the ones not cached (each distinct one once)
        go to :func:`decode_batch` together."""
        idents = [self._ident(key, p) for p in payloads]
        todo: dict[tuple, ReceivedPayload] = {}
        for ident, p in zip(idents, payloads, strict=True):
            if ident in self._entries:
                self._entries.move_to_end(ident)
                self.hits += 1
            elif ident in todo:  # a repeat within the batch: decoded once, as in decode
                self.hits += 1
            else:
                todo[ident] = p
        self.misses += len(todo)
        fresh = dict(zip(todo, decode_batch(codec, list(todo.values())), strict=True))
        for ident, rec in fresh.items():
            self.add(ident, rec)
        return [fresh[i] if i in fresh else self._entries[i][0] for i in idents]

    @staticmethod
    def _ident(key: str, payload: ReceivedPayload) -> tuple:
        return (key, hashlib.blake2b(payload.data, digest_size=16).digest(),
                tuple(payload.shape), tuple(tuple(r) for r in payload.lost))

    def add(self, ident: tuple, rec: Reconstruction) -> None:
        """Cache ``rec`` under ``ident`` (a key of :meth:`items`; how a worker's new
        entries join the parent's cache). Its arrays become read-only."""
        if ident in self._entries:
            return
        arrays = [a for a in (rec.image, rec.labels) if isinstance(a, np.ndarray)]
        for arr in arrays:
            arr.setflags(write=False)
        size = sum(a.nbytes for a in arrays)
        if size <= self.max_bytes:
            self._entries[ident] = (rec, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, old) = self._entries.popitem(last=False)
                self._bytes -= old

    def keys(self) -> set[tuple]:
        """The keys of the cached entries."""
        return set(self._entries)

    def items(self, skip: set[tuple] | None = None) -> list[tuple[tuple, Reconstruction]]:
        """(key, reconstruction) of every entry whose key is not in ``skip``, oldest first."""
        skip = skip or set()
        return [(k, rec) for k, (rec, _) in self._entries.items() if k not in skip]

    def __len__(self) -> int:
        return len(self._entries)


class Receiver:
    """Received bytes -> x_hat under a failure policy.

    Parameters
    ----------
    codec : Codec
    policy : "mean" | "grey" | "conceal"
    fallback : [H, W, 3] uint8
        Image shown on failure (the mean image for ``mean``, grey otherwise).
    cache : DecodeCache, optional
        Shared decode cache (the runner's), with ``cache_key`` naming the codec in it.
    """

    def __init__(self, codec: Codec | AnalogCodec, policy: str, fallback: np.ndarray,
                 cache: DecodeCache | None = None, cache_key: str | None = None) -> None:
        if policy not in FAILURE_POLICIES:
            raise ValueError(f"failure policy {policy!r} must be one of {FAILURE_POLICIES}")
        if fallback.dtype != np.uint8 or fallback.ndim != 3 or fallback.shape[2] != 3:
            raise ValueError(f"fallback image must be [H, W, 3] uint8, got {fallback.dtype} "
                             f"{fallback.shape}")
        self.codec, self.policy = codec, policy
        self.fallback = fallback
        self.cache = cache
        self.cache_key = cache_key if cache_key is not None else codec.name
        self.grey = np.full_like(fallback, 128)

    def _failed(self, error: str) -> Received:
        image = self.grey if self.policy == "conceal" else self.fallback
        return Received(image=image, labels=None, status="failed", error=error)

    def receive(self, data: bytes, shape: tuple[int, int],
                lost: tuple[tuple[int, int], ...] = ()) -> Received:
        """Bytes after the link (+ CRC-lost byte ranges) -> Received."""
        return self.receive_batch([(data, shape, lost)])[0]  # one payload: codec.decode

    def receive_batch(self, items: Sequence[tuple[bytes, tuple[int, int],
                                                  tuple[tuple[int, int], ...]]]
                      ) -> list[Received]:
        """:meth:`receive` of each (bytes, shape, lost ranges), the decodes together
        (:func:`decode_batch`: one network call per batch on a GPU)."""
        out: list[Received | None] = [None] * len(items)
        todo: list[tuple[int, ReceivedPayload]] = []
        for j, (data, shape, lost) in enumerate(items):
            if shape != self.fallback.shape[:2]:
                raise ValueError(f"payload shape {shape} != fallback image shape "
                                 f"{self.fallback.shape[:2]}")
            if lost and self.policy != "conceal" and not conceals_losses(self.codec):
                out[j] = self._failed(f"CRC-detected loss of {len(lost)} byte range(s)")
            else:
                todo.append((j, ReceivedPayload(data=data, shape=shape, lost=tuple(lost))))
        payloads = [p for _, p in todo]
        recs = (decode_batch(self.codec, payloads) if self.cache is None
                else self.cache.decode_batch(self.cache_key, self.codec, payloads))
        for (j, p), rec in zip(todo, recs, strict=True):
            out[j] = self._received(rec, p.lost)
        return out  # type: ignore[return-value]

    def _received(self, rec: Reconstruction, lost: tuple[tuple[int, int], ...]) -> Received:
        if not rec.ok:
            return self._failed(rec.error or "decode failed")
        status = "concealed" if (lost or rec.concealed) else "ok"
        return Received(image=rec.image, labels=rec.labels, status=status)

    def receive_symbols(self, symbols: np.ndarray, noise_var: np.ndarray,
                        esno_db: float | None, shape: tuple[int, int],
                        equaliser: str = "mmse") -> Received:
        """Equalised symbols [k] complex64 + noise_var [k] (no / |h|^2) -> Received.
        ``esno_db=None``: noiseless (the error-free line). Not cached: noisy symbols
        never repeat."""
        if shape != self.fallback.shape[:2]:
            raise ValueError(f"payload shape {shape} != fallback image shape "
                             f"{self.fallback.shape[:2]}")
        received = ReceivedSymbols(symbols, noise_var, esno_db, shape, equaliser)
        rec: Reconstruction = self.codec.decode(received)  # type: ignore[arg-type]
        if not rec.ok:
            return self._failed(rec.error or "decode failed")
        return Received(image=rec.image, labels=rec.labels, status="ok")


def send(link: LinkLike, encoded: Sequence[Encoded], esno_db: float,
         seeds: Sequence[int]) -> list:
    """Put each payload on the link (one channel realisation per seed) -> LinkResults.
    Each payload's priority prefix (``Payload.priority_bytes``) goes with it: a link with
    a ``priority`` config sends those bytes on its priority modulation and code."""
    payloads = [e.payload for e in encoded]
    if not all(isinstance(p, Payload) for p in payloads):
        raise ValueError("send needs byte payloads; symbol payloads go with send_symbols")
    return link.transmit([np.frombuffer(p.data, np.uint8) for p in payloads  # type: ignore[union-attr]
                          ], esno_db, list(seeds),
                         [p.priority_bytes for p in payloads])  # type: ignore[union-attr]


def send_symbols(channel: Any, encoded: Sequence[Encoded], esno_db: float,
                 seeds: Sequence[int]) -> list:
    """Put each symbol payload on ``channel`` (a ``channels.analog.AnalogChannel``; one
    realisation per seed, the link's draws for that seed) -> AnalogResults."""
    symbols = []
    for e in encoded:
        if not isinstance(e.payload, SymbolPayload):
            raise ValueError(f"send_symbols needs symbol payloads, got {type(e.payload).__name__}")
        symbols.append(e.payload.symbols)
    return channel.transmit(symbols, esno_db, list(seeds))


def run_pipeline(transmitter: Transmitter, receiver: Receiver, link: LinkLike | Any,
                 images: Sequence[np.ndarray], labels: Sequence[np.ndarray | None],
                 rate: RatePoint, esno_db: float, seeds: Sequence[int]) -> list[Received]:
    """The whole chain for a batch of images, one stage per line (no caching).

    The runner calls the stages itself so that it can encode each (image, codec, rate)
    once and reuse the payload across SNRs, channels and realisations.
    """
    encoded = [transmitter.encode(x, s, rate) for x, s in zip(images, labels, strict=True)]
    if sends_symbols(transmitter.codec):  # ``link`` is then a channels.analog.AnalogChannel
        analog = send_symbols(link, encoded, esno_db, seeds)
        return [receiver.receive_symbols(r.symbols, r.noise_var, esno_db, e.payload.shape,
                                          r.equaliser)
                for e, r in zip(encoded, analog, strict=True)]
    results = send(cast(LinkLike, link), encoded, esno_db, seeds)
    return [receiver.receive(r.data.tobytes(), e.payload.shape, r.lost_ranges)
            for e, r in zip(encoded, results, strict=True)]
