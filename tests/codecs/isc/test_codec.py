"""Codec: exact decode, bits from bytes, layered rates, graceful degradation, fuzzing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from semcomm.codecs.base import RatePoint, ReceivedPayload
from semcomm.codecs.isc.codec import (
    DEFAULT_CHECKPOINT,
    TRAIN_COMMAND,
    ISCCodec,
    pack_single,
    split_single,
)
from semcomm.codecs.registry import build_codec
from semcomm.data.types import Sample

from .conftest import SIZE, STAGES

PACKET = 40  # small packets: every layer spans one or more


@pytest.fixture(scope="module", params=[None, PACKET], ids=["single", "packets"])
def codec(request: pytest.FixtureRequest, checkpoint: Path) -> ISCCodec:
    return ISCCodec(checkpoint, packet_bytes=request.param)


def _received(data: bytes, lost: tuple[tuple[int, int], ...] = ()) -> ReceivedPayload:
    return ReceivedPayload(data, SIZE, lost)


def test_registry_and_missing_checkpoint(checkpoint: Path, tmp_path: Path) -> None:
    assert type(build_codec("isc", checkpoint=checkpoint)) is ISCCodec
    with pytest.raises(FileNotFoundError) as err:
        ISCCodec(tmp_path / "none.pt")
    assert TRAIN_COMMAND in str(err.value) and str(DEFAULT_CHECKPOINT) in str(err.value)


def test_exact_decode_every_depth(codec: ISCCodec, samples: list[Sample]) -> None:
    for smp in samples[:3]:
        for depth in range(STAGES + 1):
            enc = codec.encode_detailed(smp.image, smp.labels, RatePoint(knob=depth))
            rec = codec.decode(_received(enc.payload.data))
            assert rec.ok and not rec.concealed, rec.error
            assert np.array_equal(rec.image, enc.x_hat)
            assert np.array_equal(rec.labels, enc.labels)
            assert enc.payload.knob == depth
            assert enc.payload.bpp == 8 * len(enc.payload.data) / (SIZE[0] * SIZE[1])
            assert sum(enc.layer_bytes) == len(enc.payload.data)
            if codec.packet_bytes is not None:
                assert all(b % PACKET == 0 for b in enc.layer_bytes)


def test_more_stages_more_bytes(codec: ISCCodec, samples: list[Sample]) -> None:
    smp = samples[0]
    sizes = [len(codec.encode(smp.image, smp.labels, RatePoint(knob=k)).data)
             for k in range(STAGES + 1)]
    assert all(a < b for a, b in zip(sizes, sizes[1:], strict=False)), sizes
    base = codec.encode_detailed(smp.image, smp.labels, RatePoint(knob=0))
    full = codec.encode_detailed(smp.image, smp.labels, RatePoint(knob=STAGES))
    assert np.array_equal(base.x_base, full.x_base)  # the base layer is depth-independent
    assert np.array_equal(base.x_hat, base.x_base)


def test_labels_are_the_coded_map(checkpoint: Path, samples: list[Sample]) -> None:
    codec = ISCCodec(checkpoint)
    smp = samples[1]
    enc = codec.encode_detailed(smp.image, smp.labels, RatePoint(knob=0))
    # Majority vote over 4 x 4 blocks: agrees with the map on most pixels.
    assert (enc.labels == smp.labels).mean() > 0.8


def test_enhancement_loss_gives_the_base_image(codec: ISCCodec, samples: list[Sample]) -> None:
    smp = samples[2]
    enc = codec.encode_detailed(smp.image, smp.labels, RatePoint(knob=STAGES))
    data, sizes = enc.payload.data, enc.layer_bytes
    assert enc.payload.priority_bytes == sizes[0]  # the base layer (and layer table)
    assert codec.encode(smp.image, smp.labels, RatePoint(knob=STAGES)).priority_bytes == sizes[0]
    rec = codec.decode(_received(data, ((sizes[0], len(data)),)))  # every stage lost
    assert rec.ok and rec.concealed, rec.error
    assert np.array_equal(rec.image, enc.x_base)
    assert not np.array_equal(enc.x_hat, enc.x_base)  # the test is not vacuous
    # Losing stage 2 keeps stage 1 only (and drops stage 3 though it arrived).
    start2 = sizes[0] + sizes[1]
    detail = codec.decode_detailed(_received(data, ((start2, start2 + sizes[2]),)))
    one = codec.encode_detailed(smp.image, smp.labels, RatePoint(knob=1))
    assert detail.depth == 1 and detail.reconstruction.concealed
    assert np.array_equal(detail.reconstruction.image, one.x_hat)


def test_base_loss_is_an_outage(codec: ISCCodec, samples: list[Sample]) -> None:
    smp = samples[0]
    enc = codec.encode_detailed(smp.image, smp.labels, RatePoint(knob=2))
    start = 0 if codec.packet_bytes is not None else 3  # after the layer table
    rec = codec.decode(_received(enc.payload.data, ((start, start + 1),)))
    assert not rec.ok and "base layer lost" in rec.error
    assert rec.image.shape == (*SIZE, 3)


def test_bpp_target(codec: ISCCodec, samples: list[Sample]) -> None:
    smp = samples[0]
    sizes = [len(codec.encode(smp.image, smp.labels, RatePoint(knob=k)).data)
             for k in range(STAGES + 1)]
    px = SIZE[0] * SIZE[1]
    pay = codec.encode(smp.image, smp.labels, RatePoint(bpp=8 * (sizes[2] + 0.5) / px))
    assert pay.knob == 2 and len(pay.data) == sizes[2]
    with pytest.warns(UserWarning, match="unreachable"):
        pay = codec.encode(smp.image, smp.labels, RatePoint(bpp=8 * 0.5 / px))
    assert pay.knob == 0


def test_input_errors(codec: ISCCodec, samples: list[Sample]) -> None:
    smp = samples[0]
    with pytest.raises(ValueError, match=r"whole number of enhancement stages in 0..3"):
        codec.encode(smp.image, smp.labels, RatePoint(knob=1.5))
    with pytest.raises(ValueError, match="needs the semantic map"):
        codec.encode(smp.image, None, RatePoint(knob=0))
    with pytest.raises(ValueError, match="multiple of 8"):
        codec.encode(smp.image[:30], smp.labels[:30], RatePoint(knob=0))


def test_layer_table() -> None:
    layers = [b"a" * 200, b"bb", b"c"]
    data = pack_single(layers)
    ranges, err = split_single(data, 4)
    assert not err and [data[a:b] for a, b in ranges] == layers
    assert split_single(b"\x09", 4)[1].startswith("layer table says 9")
    assert split_single(data[:2], 4)[1]


def test_fuzz_never_raises(codec: ISCCodec, samples: list[Sample]) -> None:
    """~200 corruptions: flipped bits, truncation, junk, flagged ranges -> a result."""
    smp = samples[3]
    enc = codec.encode_detailed(smp.image, smp.labels, RatePoint(knob=STAGES))
    data = enc.payload.data
    rng = np.random.default_rng(0)
    outcomes = {"ok": 0, "failed": 0}
    for trial in range(200):
        buf = bytearray(data)
        kind = trial % 4
        lost: tuple[tuple[int, int], ...] = ()
        if kind == 0:
            for _ in range(int(rng.integers(1, 4))):
                i = int(rng.integers(len(buf)))
                buf[i] ^= 1 << int(rng.integers(8))
        elif kind == 1:
            buf = buf[:int(rng.integers(len(buf)))]
        elif kind == 2:
            buf = bytearray(rng.integers(0, 256, int(rng.integers(0, 2 * len(data)))
                                         ).astype(np.uint8).tobytes())
        else:
            a = int(rng.integers(len(buf)))
            lost = ((a, a + int(rng.integers(1, 50))),)
        rec = codec.decode(_received(bytes(buf), lost))
        assert rec.image.shape == (*SIZE, 3) and rec.image.dtype == np.uint8
        assert rec.ok or rec.error
        if rec.ok:  # whatever decodes is the base or a prefix of stages, never garbage
            assert rec.labels is not None and np.array_equal(rec.labels, enc.labels)
        outcomes["ok" if rec.ok else "failed"] += 1
    assert outcomes["ok"] and outcomes["failed"], outcomes
    assert math.isfinite(enc.payload.bpp)
