"""Classic codecs: round trips, rate control by bisection, unreachable targets."""

from __future__ import annotations

import warnings

import imagecodecs
import numpy as np
import pytest

from semcomm.codecs.base import RatePoint, ReceivedPayload
from semcomm.codecs.classic import rate_unreachable
from semcomm.codecs.classic.formats import jxl_codestream_size
from semcomm.codecs.registry import build_codec
from semcomm.metrics import psnr

NAMES = ["jpeg", "jpeg2000", "webp", "hevc", "avif", "jpegxl"]


def scene(h: int = 64, w: int = 128, seed: int = 0) -> np.ndarray:
    """A smooth image with edges and mild noise (compressible, not trivial)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 / w, yy * 255 / h, 128 + 60 * np.sin(xx / 7.0)], -1)
    img[h // 4: h // 2, w // 4: w // 2] = [200, 30, 40]
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_quality_and_shape(name: str) -> None:
    codec = build_codec(name)
    x = scene()
    payload = codec.encode(x, None, RatePoint(bpp=2.0))
    assert 0 < payload.bpp <= 2.0
    rec = codec.decode(ReceivedPayload(payload.data, payload.shape))
    assert rec.ok and not rec.concealed and rec.error == ""
    assert rec.image.shape == x.shape and rec.image.dtype == np.uint8
    assert psnr(x, rec.image) > 25.0  # a real decode, not a fallback (grey gives ~8 dB)


@pytest.mark.parametrize("name", NAMES)
def test_bisection_finds_the_best_fitting_knob(name: str) -> None:
    codec = build_codec(name)
    x = scene()
    target = 1.0
    payload = codec.encode(x, None, RatePoint(bpp=target))
    assert payload.bpp <= target and payload.knob is not None
    # Encoding again at the chosen knob reproduces the bytes (deterministic encoder).
    again = codec.encode(x, None, RatePoint(knob=payload.knob))
    assert again.data == payload.data
    lo, hi = codec.knob_range  # type: ignore[attr-defined]
    if codec.integer_knob:  # type: ignore[attr-defined]
        step = 1.0 if codec.knob_increases_rate else -1.0  # type: ignore[attr-defined]
        better = payload.knob + step
        if lo <= better <= hi:
            assert codec.encode(x, None, RatePoint(knob=better)).bpp > target
    else:  # the optimum of a continuous knob lies within a few percent
        factor = 1.05 if codec.knob_increases_rate else 1 / 1.05  # type: ignore[attr-defined]
        better = min(hi, max(lo, payload.knob * factor))
        assert codec.encode(x, None, RatePoint(knob=better)).bpp >= 0.9 * target
    # A higher target never gives fewer bytes.
    assert codec.encode(x, None, RatePoint(bpp=2.0)).bpp >= payload.bpp


@pytest.mark.parametrize("name", NAMES)
def test_unreachable_target_is_flagged_not_substituted(name: str) -> None:
    codec = build_codec(name)
    x = scene()
    rate = RatePoint(bpp=0.001)  # 1 byte for 8192 pixels: no codec's header fits
    with pytest.warns(UserWarning, match="unreachable"):
        payload = codec.encode(x, None, rate)
    assert rate_unreachable(payload, rate)
    cheapest = codec.encode(x, None, RatePoint(knob=codec._ordered(0.0)))  # type: ignore[attr-defined]
    assert payload.data == cheapest.data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok = codec.encode(x, None, RatePoint(bpp=2.0))
    assert not rate_unreachable(ok, RatePoint(bpp=2.0))


def test_knob_and_image_validation() -> None:
    jpeg = build_codec("jpeg")
    with pytest.raises(ValueError, match=r"quality 120.0 must be an integer in \[1, 95\]"):
        jpeg.encode(scene(), None, RatePoint(knob=120.0))
    with pytest.raises(ValueError, match="quality 7.5"):
        jpeg.encode(scene(), None, RatePoint(knob=7.5))
    with pytest.raises(ValueError, match="distance 30"):
        build_codec("jpegxl").encode(scene(), None, RatePoint(knob=30.0))
    with pytest.raises(ValueError, match="uint8"):
        jpeg.encode(scene().astype(np.float32), None, RatePoint(knob=50))
    with pytest.raises(ValueError, match="shape"):
        jpeg.encode(scene()[..., :2], None, RatePoint(knob=50))


def test_jpeg2000_uses_the_irreversible_colour_transform() -> None:
    data = build_codec("jpeg2000").encode(scene(), None, RatePoint(knob=1.0)).data
    assert data[:4] == b"\xff\x4f\xff\x51"  # raw codestream: SOC, SIZ
    cod = data.index(b"\xff\x52")  # COD marker (T.800 A.6.1)
    lcod = int.from_bytes(data[cod + 2: cod + 4], "big")
    segment = data[cod + 4: cod + 2 + lcod]
    assert segment[4] == 1  # SGcod: multiple component transform on
    assert segment[9] == 0  # SPcod: 9/7 irreversible wavelet


@pytest.mark.parametrize("shape", [(32, 64), (37, 53), (300, 17), (8, 2000), (128, 256)])
def test_jxl_size_header_parser(shape: tuple[int, int]) -> None:
    data = bytes(imagecodecs.jpegxl_encode(np.zeros((*shape, 3), np.uint8), distance=2.0))
    assert jxl_codestream_size(data) == shape
    with pytest.raises(ValueError, match="FF 0A"):
        jxl_codestream_size(b"\x00" + data[1:])


def test_decode_rejects_wrong_size_and_foreign_streams() -> None:
    x = scene()
    for name in NAMES:
        codec = build_codec(name)
        payload = codec.encode(x, None, RatePoint(bpp=2.0))
        rec = codec.decode(ReceivedPayload(payload.data, (32, 64)))  # wrong declared shape
        assert not rec.ok and rec.image.shape == (32, 64, 3) and "size" in rec.error.lower()
        other = build_codec("webp" if name != "webp" else "jpeg").encode(
            x, None, RatePoint(bpp=2.0))
        assert not codec.decode(ReceivedPayload(other.data, payload.shape)).ok
