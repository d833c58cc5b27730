"""Transmitter -> link -> receiver: failure policies and the real link at both ends."""

from __future__ import annotations

import numpy as np
import pytest

from channels import Link, LinkConfig
from semcomm.codecs.base import RatePoint, ReceivedPayload, Reconstruction
from semcomm.codecs.registry import build_codec
from semcomm.metrics import psnr
from semcomm.pipeline import (
    DecodeCache,
    Receiver,
    Transmitter,
    conceals_losses,
    run_pipeline,
    send,
)

from .codecs.test_classic import scene


@pytest.fixture(scope="module")
def link() -> Link:
    return Link(LinkConfig(modulation="qpsk", code_rate=0.5, channel="awgn"))


def _fallback() -> np.ndarray:
    return np.full((64, 128, 3), 77, np.uint8)


def test_policies_on_a_crc_loss() -> None:
    codec = build_codec("jpeg")
    x = scene()
    enc = Transmitter(codec).encode(x, None, RatePoint(bpp=1.0))
    data, shape = enc.payload.data, enc.payload.shape
    lost = ((100, 200),)  # bytes intact but flagged: 'conceal' decodes them fine
    for policy, status, value in [("mean", "failed", 77), ("grey", "failed", 77)]:
        got = Receiver(codec, policy, _fallback()).receive(data, shape, lost)
        assert got.status == status and np.all(got.image == value) and "CRC" in got.error
    got = Receiver(codec, "conceal", _fallback()).receive(data, shape, lost)
    assert got.status == "concealed" and psnr(x, got.image) > 25
    # conceal on an undecodable stream: grey, failed.
    got = Receiver(codec, "conceal", _fallback()).receive(b"\x00" * 50, shape, lost)
    assert got.status == "failed" and np.all(got.image == 128)
    # No CRC loss but a stream the decoder rejects (undetected errors): fallback.
    got = Receiver(codec, "mean", _fallback()).receive(b"\x00" * 50, shape, ())
    assert got.status == "failed" and np.all(got.image == 77)
    got = Receiver(codec, "mean", _fallback()).receive(data, shape, ())
    assert got.status == "ok" and got.error == ""


class _Concealing:
    """The decode side of a codec that decodes around lost ranges (all the Receiver
    uses): ok unless everything was lost."""

    name = "concealing"
    conceals_losses = True

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def decode(self, received: ReceivedPayload) -> Reconstruction:
        self.calls.append(received.lost)
        if sum(b - a for a, b in received.lost) >= len(received.data):
            return Reconstruction.failed(received.shape, "nothing decodable")
        image = np.full((*received.shape, 3), 200, np.uint8)
        return Reconstruction(image=image, labels=None, ok=True,
                              concealed=bool(received.lost))


@pytest.mark.parametrize("policy", ["mean", "grey", "conceal"])
def test_concealing_codec_is_decoded_under_every_policy(policy: str) -> None:
    codec = _Concealing()
    rx = Receiver(codec, policy, _fallback())
    got = rx.receive(b"\x01" * 100, (64, 128), ((0, 50),))
    assert codec.calls == [((0, 50),)]
    assert got.status == "concealed" and np.all(got.image == 200)
    # The codec gives up (every byte lost): the policy's fallback, status failed.
    got = rx.receive(b"\x01" * 100, (64, 128), ((0, 100),))
    assert got.status == "failed" and got.error == "nothing decodable"
    assert np.all(got.image == (128 if policy == "conceal" else 77))
    assert rx.receive(b"\x01" * 100, (64, 128), ()).status == "ok"


def test_decode_cache_decodes_each_received_payload_once() -> None:
    codec = _Concealing()
    cache = DecodeCache()
    rx = Receiver(codec, "mean", _fallback(), cache=cache, cache_key="c")
    first = rx.receive(b"\x01" * 100, (64, 128), ((0, 50),))
    # Another Receiver on the same cache (the runner builds one per point): a hit.
    again = Receiver(codec, "mean", _fallback(), cache=cache, cache_key="c").receive(
        b"\x01" * 100, (64, 128), ((0, 50),))
    assert codec.calls == [((0, 50),)] and cache.hits == 1
    assert again.status == first.status == "concealed" and again.image is first.image
    assert not again.image.flags.writeable  # shared: nobody may write into it
    # Different lost ranges, bytes, or codec key: decoded anew.
    rx.receive(b"\x01" * 100, (64, 128), ((0, 40),))
    rx.receive(b"\x01" * 99 + b"\x02", (64, 128), ((0, 50),))
    Receiver(codec, "mean", _fallback(), cache=cache, cache_key="d").receive(
        b"\x01" * 100, (64, 128), ((0, 50),))
    assert len(codec.calls) == 4 and cache.misses == 4 and len(cache) == 4
    # A failed decode is cached too and still gives the policy's fallback.
    for _ in range(2):
        got = rx.receive(b"\x01" * 100, (64, 128), ((0, 100),))
        assert got.status == "failed" and np.all(got.image == 77)
    assert len(codec.calls) == 5


def test_decode_cache_evicts_least_recently_used_by_bytes() -> None:
    codec = _Concealing()
    one = 64 * 128 * 3  # bytes of one reconstruction
    cache = DecodeCache(max_bytes=2 * one)
    rx = Receiver(codec, "mean", _fallback(), cache=cache)
    for tag in (b"a", b"b", b"a", b"c"):  # "b" is the least recently used when "c" comes
        rx.receive(tag * 10, (64, 128))
    assert len(cache) == 2 and len(codec.calls) == 3
    rx.receive(b"a" * 10, (64, 128))
    assert len(codec.calls) == 3
    rx.receive(b"b" * 10, (64, 128))
    assert len(codec.calls) == 4
    with pytest.raises(ValueError, match="max_bytes -1"):
        DecodeCache(max_bytes=-1)


def test_learned_codecs_declare_concealment() -> None:
    from semcomm.codecs.amvq import AMVQCodec
    from semcomm.codecs.isc import ISCCodec
    from semcomm.codecs.sqgan import SQGANCodec

    assert AMVQCodec.conceals_losses and ISCCodec.conceals_losses
    assert SQGANCodec.conceals_losses
    assert not conceals_losses(build_codec("jpeg"))


def test_receiver_validation() -> None:
    codec = build_codec("jpeg")
    with pytest.raises(ValueError, match="failure policy 'zero'"):
        Receiver(codec, "zero", _fallback())
    with pytest.raises(ValueError, match="fallback image"):
        Receiver(codec, "grey", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="payload shape"):
        Receiver(codec, "grey", _fallback()).receive(b"x", (8, 8))


def test_unreachable_flag() -> None:
    enc = Transmitter(build_codec("webp")).encode(scene(), None, RatePoint(knob=50))
    assert not enc.unreachable
    with pytest.warns(UserWarning):
        enc = Transmitter(build_codec("jpeg")).encode(scene(), None, RatePoint(bpp=0.01))
    assert enc.unreachable and enc.payload.bpp > 0.01


def test_real_link_high_and_low_snr(link: Link) -> None:
    codec = build_codec("jpeg")
    tx, rx = Transmitter(codec), Receiver(codec, "grey", np.full((64, 128, 3), 128, np.uint8))
    images = [scene(seed=s) for s in range(3)]
    rate = RatePoint(bpp=1.0)
    clean = run_pipeline(tx, rx, link, images, [None] * 3, rate, 12.0, [1, 2, 3])
    for x, got in zip(images, clean, strict=True):
        assert got.status == "ok" and psnr(x, got.image) > 25
    dead = run_pipeline(tx, rx, link, images, [None] * 3, rate, -10.0, [1, 2, 3])
    assert all(got.status == "failed" and np.all(got.image == 128) for got in dead)
    # Same seeds, same channel: the link result is reproducible.
    enc = [tx.encode(images[0], None, rate)]
    a, b = send(link, enc, 0.5, [9]), send(link, enc, 0.5, [9])
    assert np.array_equal(a[0].data, b[0].data) and a[0].bit_errors == b[0].bit_errors
