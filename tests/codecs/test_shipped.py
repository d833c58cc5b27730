"""The learned codecs' shipped model files: size limit, weights-only loading, and an
error-free round trip that reproduces the transmitter-side reconstruction bit for bit.

Each check runs only where the file ships (``semcomm/assets/<name>.pt``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from semcomm.codecs.base import RatePoint, ReceivedPayload
from semcomm.data import StreetScenes

ASSETS = Path(__file__).resolve().parents[2] / "semcomm" / "assets"
MAX_BYTES = 20_000_000  # each codec's model file stays <= 20 MB


def _sample() -> tuple[np.ndarray, np.ndarray]:
    smp = StreetScenes(split="test", count=1)[0]
    return smp.image, smp.labels


def _need(name: str) -> Path:
    path = ASSETS / f"{name}.pt"
    if not path.is_file():
        pytest.skip(f"{path} is not shipped")
    assert path.stat().st_size <= MAX_BYTES, f"{path}: {path.stat().st_size} bytes"
    return path


@pytest.mark.parametrize("name", ["amvq", "amvq_fast"])
def test_amvq_checkpoint_round_trip(name: str) -> None:
    from semcomm.codecs.amvq import AMVQCodec

    codec = AMVQCodec(_need(name), packet_bytes=509)
    x, _ = _sample()
    enc = codec.encode_detailed(x, RatePoint(knob=0.3))
    rec = codec.decode(ReceivedPayload(enc.payload.data, enc.payload.shape))
    assert rec.ok and not rec.concealed
    assert np.array_equal(rec.image, enc.x_hat)
    assert codec.encode(x, None, RatePoint(knob=0.3)).data == enc.payload.data


@pytest.mark.parametrize("depth", [0, 2, 4])
def test_isc_checkpoint_round_trip(depth: int) -> None:
    from semcomm.codecs.isc import ISCCodec

    _need("isc")
    codec = ISCCodec()
    x, s = _sample()
    enc = codec.encode_detailed(x, s, RatePoint(knob=depth))
    rec = codec.decode(ReceivedPayload(enc.payload.data, enc.payload.shape))
    assert rec.ok and rec.labels is not None
    assert np.array_equal(rec.image, enc.x_hat)
    assert np.array_equal(rec.labels, enc.labels)


def test_sqgan_checkpoint_round_trip() -> None:
    from semcomm.codecs.sqgan import SQGANCodec

    _need("sqgan")
    codec = SQGANCodec()
    x, s = _sample()
    m = 0.2875
    xt = torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255.0
    st = torch.from_numpy(s.astype(np.int64))[None]
    tokens = codec.model.encode_tokens(xt, st, m, codec.m_s(m))
    ref = codec.model.decode_tokens(tokens, None, None)  # the transmitter's own x_hat
    payload = codec.encode(x, s, RatePoint(knob=m))
    got = codec.decode_detailed(ReceivedPayload(payload.data, payload.shape))
    assert got.reconstruction.ok and got.decoded is not None
    assert torch.equal(got.decoded.x_hat, ref.x_hat) and torch.equal(got.decoded.s_hat, ref.s_hat)


def test_isc_enhancement_loss_through_the_receiver_is_the_base_image() -> None:
    """Under the runner's default policy (mean), a lost enhancement packet shows the base
    image (status concealed), and a lost base packet the fallback (status failed)."""
    from semcomm.codecs.isc import ISCCodec
    from semcomm.pipeline import Receiver

    _need("isc")
    codec = ISCCodec(packet_bytes=125)
    x, s = _sample()
    enc = codec.encode_detailed(x, s, RatePoint(knob=2))
    data = bytearray(enc.payload.data)
    base = -(-enc.layer_bytes[0] // 125) * 125  # the base layer's whole packets
    fallback = np.full_like(x, 77)
    rx = Receiver(codec, "mean", fallback)
    lost = ((base, base + 125),)  # the first enhancement packet
    data[base:base + 125] = bytes(125)
    got = rx.receive(bytes(data), enc.payload.shape, lost)
    assert got.status == "concealed" and np.array_equal(got.image, enc.x_base)
    got = rx.receive(bytes(data), enc.payload.shape, ((0, 125),))
    assert got.status == "failed" and np.all(got.image == 77)
