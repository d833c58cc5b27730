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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from semcomm.codecs.base import Codec, Payload, RatePoint, ReceivedPayload, Reconstruction

FAILURE_POLICIES = ("mean", "grey", "conceal")
#: Status of one received image.
STATUSES = ("ok", "concealed", "failed")


class LinkLike(Protocol):
    """What the pipeline needs of ``channels.Link``."""

    def transmit(self, payloads: Sequence[np.ndarray], esno_db: float,
                 seeds: Sequence[int]) -> list: ...


@dataclass(frozen=True)
class Encoded:
    """Transmitter output for one (image, codec, rate).

    Attributes
    ----------
    payload : Payload        the bytes sent, with the knob the rate control chose
    rate : RatePoint         the requested rate (resolved: bpp or knob)
    unreachable : bool       a bpp target below what the codec's cheapest setting gives
    """

    payload: Payload
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

    def __init__(self, codec: Codec) -> None:
        self.codec = codec

    def encode(self, image: np.ndarray, labels: np.ndarray | None, rate: RatePoint) -> Encoded:
        payload = self.codec.encode(image, labels, rate)
        if len(payload.data) == 0:
            raise ValueError(f"codec {self.codec.name!r} produced an empty payload at {rate.label}")
        unreachable = rate.bpp is not None and payload.bpp > rate.bpp + 1e-12
        return Encoded(payload=payload, rate=rate, unreachable=unreachable)


def conceals_losses(codec: Codec) -> bool:
    """True when ``codec`` decodes around CRC-lost byte ranges itself (its decoder is
    given them whatever the failure policy)."""
    return bool(getattr(codec, "conceals_losses", False))


class Receiver:
    """Received bytes -> x_hat under a failure policy.

    Parameters
    ----------
    codec : Codec
    policy : "mean" | "grey" | "conceal"
    fallback : [H, W, 3] uint8
        Image shown on failure (the mean image for ``mean``, grey otherwise).
    """

    def __init__(self, codec: Codec, policy: str, fallback: np.ndarray) -> None:
        if policy not in FAILURE_POLICIES:
            raise ValueError(f"failure policy {policy!r} must be one of {FAILURE_POLICIES}")
        if fallback.dtype != np.uint8 or fallback.ndim != 3 or fallback.shape[2] != 3:
            raise ValueError(f"fallback image must be [H, W, 3] uint8, got {fallback.dtype} "
                             f"{fallback.shape}")
        self.codec, self.policy = codec, policy
        self.fallback = fallback
        self.grey = np.full_like(fallback, 128)

    def _failed(self, error: str) -> Received:
        image = self.grey if self.policy == "conceal" else self.fallback
        return Received(image=image, labels=None, status="failed", error=error)

    def receive(self, data: bytes, shape: tuple[int, int],
                lost: tuple[tuple[int, int], ...] = ()) -> Received:
        """Bytes after the link (+ CRC-lost byte ranges) -> Received."""
        if shape != self.fallback.shape[:2]:
            raise ValueError(f"payload shape {shape} != fallback image shape "
                             f"{self.fallback.shape[:2]}")
        if lost and self.policy != "conceal" and not conceals_losses(self.codec):
            return self._failed(f"CRC-detected loss of {len(lost)} byte range(s)")
        rec: Reconstruction = self.codec.decode(ReceivedPayload(data=data, shape=shape,
                                                                lost=tuple(lost)))
        if not rec.ok:
            return self._failed(rec.error or "decode failed")
        status = "concealed" if (lost or rec.concealed) else "ok"
        return Received(image=rec.image, labels=rec.labels, status=status)


def send(link: LinkLike, encoded: Sequence[Encoded], esno_db: float,
         seeds: Sequence[int]) -> list:
    """Put each payload on the link (one channel realisation per seed) -> LinkResults."""
    return link.transmit([np.frombuffer(e.payload.data, np.uint8) for e in encoded],
                         esno_db, list(seeds))


def run_pipeline(transmitter: Transmitter, receiver: Receiver, link: LinkLike,
                 images: Sequence[np.ndarray], labels: Sequence[np.ndarray | None],
                 rate: RatePoint, esno_db: float, seeds: Sequence[int]) -> list[Received]:
    """The whole chain for a batch of images, one stage per line (no caching).

    The runner calls the stages itself so that it can encode each (image, codec, rate)
    once and reuse the payload across SNRs, channels and realisations.
    """
    encoded = [transmitter.encode(x, s, rate) for x, s in zip(images, labels, strict=True)]
    results = send(link, encoded, esno_db, seeds)
    return [receiver.receive(r.data.tobytes(), e.payload.shape, r.lost_ranges)
            for e, r in zip(encoded, results, strict=True)]
