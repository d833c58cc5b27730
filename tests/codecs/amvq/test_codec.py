"""AM-VQ codec: exact error-free decode, rate vs tau, packets, concealment, rate control.

The tiny random model (conftest) is exported with the trainer's own functions and loaded
from disk exactly as the shipped file would be.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from semcomm.bitstream import ScalarQuantizer, TokenGrid, decode_payload, encode_payload
from semcomm.codecs.amvq import TRAIN_COMMAND, AMVQCodec, conceal, level_prior
from semcomm.codecs.amvq import codec as codec_module
from semcomm.codecs.base import RatePoint, ReceivedPayload
from semcomm.codecs.registry import available_codecs, build_codec

from .conftest import TAUS, synthetic_samples

SHAPE = (32, 64)
PIXELS = SHAPE[0] * SHAPE[1]
PACKET = 32


@pytest.fixture(scope="module")
def single(checkpoint: Path) -> AMVQCodec:
    return AMVQCodec(checkpoint)


@pytest.fixture(scope="module")
def packets(checkpoint: Path) -> AMVQCodec:
    return AMVQCodec(checkpoint, packet_bytes=PACKET)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return synthetic_samples(1, seed=11)[0].image


def _reference(codec: AMVQCodec, image: np.ndarray, tau: float) -> np.ndarray:
    """Independent transmitter-side path: analyze -> A > 1 - tau -> SQ floats or code
    vectors -> decoder; no bytes involved."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    z_hat = []
    for s, an in enumerate(codec.model.analyze(x)):
        q = codec.quantizers[s]
        floats = torch.from_numpy(q.dequantize(q.quantize(an.z.numpy())))
        z_hat.append(torch.where((an.a > 1.0 - tau)[:, None], floats,
                                 codec.model.lookup(s, an.indices)).contiguous())
    out = codec.model.decode(z_hat)[0].clamp(0, 1) * 255
    return out.round().to(torch.uint8).permute(1, 2, 0).numpy()


def test_missing_checkpoint_names_file_and_command(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError) as err:
        AMVQCodec(missing)
    assert str(missing) in str(err.value) and TRAIN_COMMAND in str(err.value)
    assert codec_module.DEFAULT_CHECKPOINT.name == "amvq.pt"
    assert codec_module.DEFAULT_CHECKPOINT.parent.name == "assets"


def test_registered_as_amvq(checkpoint: Path) -> None:
    assert "amvq" in available_codecs()
    codec = build_codec("amvq", checkpoint=checkpoint)
    assert type(codec) is AMVQCodec and codec.name == "amvq"


@pytest.mark.parametrize("tau", TAUS)
def test_error_free_decode_reproduces_the_encoder_exactly(
        single: AMVQCodec, packets: AMVQCodec, image: np.ndarray, tau: float) -> None:
    reference = _reference(single, image, tau)
    for codec in (single, packets):
        enc = codec.encode_detailed(image, RatePoint(knob=tau))
        assert enc.payload.knob == tau and enc.payload.shape == SHAPE
        assert enc.payload.bpp == 8 * len(enc.payload.data) / PIXELS
        rec = codec.decode(ReceivedPayload(enc.payload.data, SHAPE))
        assert rec.ok and not rec.concealed and rec.labels is None
        assert np.array_equal(rec.image, enc.x_hat)
        assert np.array_equal(enc.x_hat, reference)
        assert codec.encode(image, None, RatePoint(knob=tau)).data == enc.payload.data


def test_rate_rises_with_tau_and_tau_zero_is_plain_vq(single: AMVQCodec,
                                                       image: np.ndarray) -> None:
    encs = [single.encode_detailed(image, RatePoint(knob=t)) for t in TAUS]
    sizes = [len(e.payload.data) for e in encs]
    sent = [e.unquantized_fraction for e in encs]
    assert sizes == sorted(sizes), sizes
    assert sent == sorted(sent) and sent[-1] > 0.1 and sent[0] == 0, sent
    assert sizes[-1] > sizes[0] + 10  # float vectors are what costs
    # tau = 0: no float vector; the bytes are plain VQ's (indices) plus the two
    # near-free all-equal masks.
    dec = decode_payload(encs[0].payload.data, single.spec(SHAPE))
    assert dec.ok and not any(f.mask.any() for f in dec.floats.values())
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    plain = encode_payload([
        TokenGrid(name=f"i{s}", indices=an.indices[0].numpy(), prior=single.index_priors[s])
        for s, an in enumerate(single.model.analyze(x))])
    assert 0 <= sizes[0] - len(plain) <= 6, (sizes[0], len(plain))


def test_float_bits_trade_bytes(checkpoint: Path, single: AMVQCodec,
                                image: np.ndarray) -> None:
    fine = AMVQCodec(checkpoint, float_bits=8)
    assert fine.quantizers[0].bits == 8 and single.quantizers[0].bits == 4
    enc4 = single.encode_detailed(image, RatePoint(knob=1.0))
    enc8 = fine.encode_detailed(image, RatePoint(knob=1.0))
    assert len(enc8.payload.data) > len(enc4.payload.data)
    rec = fine.decode(ReceivedPayload(enc8.payload.data, SHAPE))
    assert np.array_equal(rec.image, enc8.x_hat)
    # Bytes made with another bit depth fail the spec's checksum instead of decoding.
    wrong = single.decode(ReceivedPayload(enc8.payload.data, SHAPE))
    assert not wrong.ok and "checksum" in wrong.error
    with pytest.raises(ValueError, match="float_bits"):
        AMVQCodec(checkpoint, float_bits=0)


def test_lost_packet_is_concealed_only_where_nothing_arrived(packets: AMVQCodec,
                                                             image: np.ndarray) -> None:
    enc = packets.encode_detailed(image, RatePoint(knob=1.0))
    data = enc.payload.data
    n = len(data) // PACKET
    assert len(data) % PACKET == 0 and n >= 3
    spec = packets.spec(SHAPE)
    clean = decode_payload(data, spec)
    start, stop = clean.packets[1].positions or (0, 0)
    out = packets.decode_detailed(ReceivedPayload(data, SHAPE, ((PACKET, 2 * PACKET),)))
    rec = out.reconstruction
    assert rec.ok and rec.concealed and rec.image.shape == (*SHAPE, 3)
    assert out.concealed is not None and out.payload is not None
    lost_global = np.zeros(spec.total_positions, bool)
    lost_global[start:stop] = True
    concealed_total = 0
    for s, concealed in enumerate(out.concealed):
        lo_i, lo_f = spec.offsets[2 * s], spec.offsets[2 * s + 1]
        n_pos = concealed.size
        in_lost = lost_global[lo_i:lo_i + n_pos] | lost_global[lo_f:lo_f + n_pos]
        assert not (concealed.ravel() & ~in_lost).any()  # only where something was lost
        concealed_total += int(concealed.sum())
    assert concealed_total > 0
    assert not np.array_equal(rec.image, enc.x_hat)
    everything = packets.decode(ReceivedPayload(data, SHAPE, ((0, len(data)),)))
    assert not everything.ok and everything.image.shape == (*SHAPE, 3)
    assert "nothing decodable" in everything.error


def test_corrupt_bytes_never_raise(packets: AMVQCodec, single: AMVQCodec,
                                   image: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    for codec in (packets, single):
        data = codec.encode(image, None, RatePoint(knob=0.3)).data
        for case in range(20):
            buf = bytearray(data)
            kind = case % 4
            if kind == 0:
                for i in rng.integers(0, len(buf), size=3):
                    buf[i] ^= int(rng.integers(1, 256))
            elif kind == 1:
                buf = buf[: int(rng.integers(0, len(buf)))]
            elif kind == 2:
                buf = bytearray(rng.integers(0, 256, len(buf), dtype=np.uint8).tobytes())
            lost = ((int(rng.integers(0, len(data))), len(data)),) if kind == 3 else ()
            rec = codec.decode(ReceivedPayload(bytes(buf), SHAPE, lost))
            assert rec.image.shape == (*SHAPE, 3) and rec.image.dtype == np.uint8
            assert rec.ok or rec.error
    bad = single.decode(ReceivedPayload(b"", (30, 64)))
    assert not bad.ok and "multiple" in bad.error


def test_bpp_target_picks_the_largest_fitting_tau(single: AMVQCodec,
                                                  image: np.ndarray) -> None:
    at = {t: len(single.encode(image, None, RatePoint(knob=t)).data) for t in (0.0, 0.7)}
    target = 8 * at[0.7] / PIXELS
    payload = single.encode(image, None, RatePoint(bpp=target))
    assert payload.knob is not None and payload.knob >= 0.7 and payload.bpp <= target
    if payload.knob < 1.0:  # the next larger tau of the grid would not fit
        larger = min(t for t in single.tau_grid if t > payload.knob)
        assert len(single.encode(image, None, RatePoint(knob=larger)).data) > math.floor(
            target * PIXELS / 8)
    tiny = 0.5 * 8 * at[0.0] / PIXELS
    with pytest.warns(UserWarning, match="unreachable"):
        low = single.encode(image, None, RatePoint(bpp=tiny))
    assert low.knob == 0.0 and low.bpp > tiny


def test_bad_inputs_raise(single: AMVQCodec, image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8"):
        single.encode(image.astype(np.float32), None, RatePoint(knob=0.3))
    with pytest.raises(ValueError, match="multiple"):
        single.encode(image[:30], None, RatePoint(knob=0.3))
    with pytest.raises(ValueError, match="tau"):
        single.encode(image, None, RatePoint(knob=1.5))
    with pytest.raises(ValueError, match="tau"):
        AMVQCodec(single.checkpoint, tau_grid=[0.2, 2.0])


def test_conceal_and_level_prior() -> None:
    z = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 2, 3, 4)
    known = torch.ones(3, 4, dtype=torch.bool)
    known[1, 1] = False
    out = conceal(z, known, torch.zeros(2))
    neighbours = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)]
    for c in range(2):
        assert float(out[0, c, 1, 1]) == pytest.approx(
            float(np.mean([float(z[0, c, i, j]) for i, j in neighbours])))
    assert torch.equal(out[0, :, known], z[0, :, known])
    far = torch.zeros(3, 4, dtype=torch.bool)
    far[0, 0] = True  # one known corner fills the whole grid, sweep by sweep
    filled = conceal(z, far, torch.zeros(2))
    assert torch.equal(filled, z[:, :, :1, :1].expand_as(z))
    assert torch.equal(conceal(z, torch.zeros(3, 4, dtype=torch.bool), torch.tensor([5.0, 6.0])),
                       torch.tensor([5.0, 6.0]).view(1, 2, 1, 1).expand_as(z))
    q = ScalarQuantizer(-1.0, 1.0, 3)
    prior = level_prior(np.r_[np.zeros(63), 100.0], q)  # last bin: centre 1 - 1/64 -> level 7
    assert prior.num_symbols == 8 and prior.probs.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(prior.probs, np.r_[np.full(7, 0.5), 100.5] / 104)
