"""SQ-GAN codec: bytes, packets, concealment, rate control (tiny random model, 32 x 64).

The model is randomly initialised (plus two training-mode passes so the codebooks hold
data-driven codes) and exported with the trainer's own ``export_model``; the codec loads
it from disk exactly as it loads the shipped file.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from semcomm.bitstream import decode_payload
from semcomm.codecs.base import RatePoint, ReceivedPayload
from semcomm.codecs.registry import available_codecs, build_codec
from semcomm.codecs.sqgan import SQGAN, TRAIN_COMMAND, SQGANCodec, SQGANTokens
from semcomm.codecs.sqgan import codec as codec_module
from semcomm.codecs.sqgan.train import collect_index_counts, export_model

from .conftest import synthetic_samples, tiny_config

SHAPE = (32, 64)
PIXELS = SHAPE[0] * SHAPE[1]
POSITIONS = 8 * 16  # tiny config: downsampling 4
BITS = 5  # K = 32
PACKET = 32  # small packets so a tiny payload spans several


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = SQGAN(tiny_config().model)
    data = synthetic_samples(4, seed=3)
    x = torch.stack([torch.from_numpy(d.image).permute(2, 0, 1) for d in data]).float() / 255
    s = torch.stack([torch.from_numpy(d.labels.astype(np.int64)) for d in data])  # type: ignore[union-attr]
    model.train()
    for _ in range(2):
        model(x, s, 0.5, 0.5, "all")
    model.eval()
    counts = collect_index_counts(model, data, (0.05, 0.5, 1.0), count=4, batch=4)
    path = tmp_path_factory.mktemp("sqgan") / "model.pt"
    return export_model(model, path, counts, {"note": "random test model"})


@pytest.fixture(scope="module")
def single(checkpoint: Path) -> SQGANCodec:
    return SQGANCodec(checkpoint)


@pytest.fixture(scope="module")
def packets(checkpoint: Path) -> SQGANCodec:
    return SQGANCodec(checkpoint, packet_bytes=PACKET)


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, np.ndarray]:
    smp = synthetic_samples(1, seed=11)[0]
    assert smp.labels is not None
    return smp.image, smp.labels


def _reference(codec: SQGANCodec, image: np.ndarray, labels: np.ndarray, m: float,
               missing_x: np.ndarray | None = None, missing_s: np.ndarray | None = None):
    """The transmitter's own reconstruction: model.encode_tokens -> model.decode_tokens."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    s = torch.from_numpy(labels.astype(np.int64))[None]
    tokens = codec.model.encode_tokens(x, s, m, codec.m_s(m))
    mx = None if missing_x is None else torch.from_numpy(missing_x)[None]
    ms = None if missing_s is None else torch.from_numpy(missing_s)[None]
    return tokens, codec.model.decode_tokens(tokens, mx, ms)


def _to_uint8(x_hat: torch.Tensor) -> np.ndarray:
    return (x_hat[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


# ----------------------------------------------------------------------- loading
def test_registered_and_built_by_name(checkpoint: Path) -> None:
    assert "sqgan" in available_codecs()
    codec = build_codec("sqgan", checkpoint=str(checkpoint), packet_bytes=509)
    assert type(codec) is SQGANCodec and codec.name == "sqgan" and codec.packet_bytes == 509


def test_missing_checkpoint_names_path_and_command(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    absent = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError) as err:
        SQGANCodec(absent)
    assert str(absent) in str(err.value) and TRAIN_COMMAND in str(err.value)
    default = tmp_path / "assets" / "sqgan.pt"
    monkeypatch.setattr(codec_module, "DEFAULT_CHECKPOINT", default)
    with pytest.raises(FileNotFoundError, match="assets/sqgan.pt") as err:
        SQGANCodec()
    assert TRAIN_COMMAND in str(err.value)


def test_priors_are_the_smoothed_checkpoint_histograms(single: SQGANCodec,
                                                       checkpoint: Path) -> None:
    counts = torch.load(checkpoint, weights_only=True)["index_counts"]
    for prior, name in ((single.prior_x, "image"), (single.prior_s, "semantic")):
        c = counts[name].numpy().astype(np.float64) + 0.5
        np.testing.assert_array_equal(prior.probs, c / c.sum())


def test_constructor_and_input_validation(checkpoint: Path, single: SQGANCodec,
                                          scene: tuple[np.ndarray, np.ndarray]) -> None:
    image, labels = scene
    with pytest.raises(ValueError, match="packet_bytes"):
        SQGANCodec(checkpoint, packet_bytes=8)
    with pytest.raises(ValueError, match="m_s_ratio"):
        SQGANCodec(checkpoint, m_s_ratio=0.0)
    with pytest.raises(ValueError, match="m_grid"):
        SQGANCodec(checkpoint, m_grid=[0.0, 0.5])
    with pytest.raises(ValueError, match=r"m=1.5 must be a number in \[0, 1\]"):
        single.encode(image, labels, RatePoint(knob=1.5))
    with pytest.raises(ValueError, match="needs the semantic map"):
        single.encode(image, None, RatePoint(knob=0.5))
    with pytest.raises(ValueError, match="multiple of the SQ-GAN downsampling 4"):
        single.encode(image[:30], labels[:30], RatePoint(knob=0.5))
    bad = labels.copy()
    bad[0, 0] = 19
    with pytest.raises(ValueError, match="allowed"):
        single.encode(image, bad, RatePoint(knob=0.5))


# ----------------------------------------------------------------------- error-free
@pytest.mark.parametrize("m", [0.05, 0.5, 1.0])
@pytest.mark.parametrize("mode", ["single", "packets"])
def test_error_free_decode_is_the_encoders_reconstruction(
        m: float, mode: str, single: SQGANCodec, packets: SQGANCodec,
        scene: tuple[np.ndarray, np.ndarray]) -> None:
    codec = single if mode == "single" else packets
    image, labels = scene
    tokens, ref = _reference(codec, image, labels, m)
    payload = codec.encode(image, labels, RatePoint(knob=m))
    assert payload.knob == m and payload.shape == SHAPE
    assert payload.data == codec.pack(tokens)  # the bytes are the entropy-coded tokens
    got = codec.decode_detailed(ReceivedPayload(payload.data, payload.shape))
    rec = got.reconstruction
    assert rec.ok and not rec.concealed and rec.error == ""
    assert got.decoded is not None
    assert torch.equal(got.decoded.x_hat, ref.x_hat)  # bit for bit, float
    assert torch.equal(got.decoded.s_hat, ref.s_hat)
    assert rec.image.dtype == np.uint8 and rec.image.shape == (*SHAPE, 3)
    np.testing.assert_array_equal(rec.image, _to_uint8(ref.x_hat))
    assert rec.labels is not None and rec.labels.dtype == np.uint8
    np.testing.assert_array_equal(rec.labels, ref.s_hat[0].numpy().astype(np.uint8))
    if mode == "packets":
        assert len(payload.data) % PACKET == 0 and len(payload.data) // PACKET >= 2 or m < 0.1


@pytest.mark.parametrize("m", [0.0, 0.05, 0.5, 1.0])
def test_bpp_from_bytes_and_analytic_rate(m: float, single: SQGANCodec,
                                          scene: tuple[np.ndarray, np.ndarray]) -> None:
    payload = single.encode(*scene, RatePoint(knob=m))
    assert payload.bpp == 8 * len(payload.data) / PIXELS
    rate = single.analytic_rate(payload)
    kept = math.floor(m * POSITIONS + 1e-9)
    assert (rate.kept_x, rate.kept_s, rate.positions) == (kept, kept, POSITIONS)
    assert rate.bits_per_index_x == rate.bits_per_index_s == BITS
    assert rate.bpp_x == rate.bpp_s == (BITS * kept + POSITIONS) / PIXELS
    assert rate.bpp == pytest.approx(2 * (BITS * kept + POSITIONS) / PIXELS)
    assert rate.bpp_real == payload.bpp
    assert rate.as_fields()["analytic_bpp"] == rate.bpp
    with pytest.raises(ValueError, match="does not decode"):
        single.analytic_rate(type(payload)(payload.data[:-1] + b"\x01", payload.num_pixels,
                                           payload.shape, payload.knob))


def test_m_s_ratio_sets_the_semantic_fraction(checkpoint: Path,
                                              scene: tuple[np.ndarray, np.ndarray]) -> None:
    codec = SQGANCodec(checkpoint, m_s_ratio=0.5)
    rate = codec.analytic_rate(codec.encode(*scene, RatePoint(knob=0.5)))
    assert (rate.kept_x, rate.kept_s) == (64, 32)
    assert codec.m_s(1.0) == 0.5 and SQGANCodec(checkpoint, m_s_ratio=4.0).m_s(0.5) == 1.0



def test_fixed_m_x_and_m_s_set_the_paper_grid_point(checkpoint: Path,
                                                    scene: tuple[np.ndarray, np.ndarray]) -> None:
    """params {m_x, m_s}: the kept counts are floor(m * 128) per branch whatever the knob
    or bpp target; a different knob, both m_s and m_s_ratio, or m outside [0, 1] fail."""
    codec = SQGANCodec(checkpoint, m_x=0.7, m_s=0.4)
    for rate in (RatePoint(knob=0.7), RatePoint(bpp=0.001), RatePoint(bpp=20.0)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bpp=0.001 is unreachable: warns
            got = codec.analytic_rate(codec.encode(*scene, rate))
        assert (got.kept_x, got.kept_s) == (89, 51)
    assert SQGANCodec(checkpoint, m_s=0.4).m_s(1.0) == 0.4
    with pytest.raises(ValueError, match="knob 0.5 differs from the fixed m_x 0.7"):
        codec.encode(*scene, RatePoint(knob=0.5))
    with pytest.raises(ValueError, match="not both"):
        SQGANCodec(checkpoint, m_s=0.4, m_s_ratio=2.0)
    for key, bad in (("m_x", 1.5), ("m_s", -0.1), ("m_x", float("nan")), ("m_s", True)):
        with pytest.raises(ValueError, match=rf"sqgan {key}=.* must be a kept fraction"):
            SQGANCodec(checkpoint, **{key: bad})

# ----------------------------------------------------------------------- losses
def test_lost_packet_is_concealed_at_its_positions(packets: SQGANCodec,
                                                   scene: tuple[np.ndarray, np.ndarray]) -> None:
    image, labels = scene
    payload = packets.encode(image, labels, RatePoint(knob=1.0))
    spec = packets.spec(SHAPE)
    clean = decode_payload(payload.data, spec)
    n = len(clean.packets)
    assert n >= 4, "the test needs a payload of several packets"
    for p in (0, n // 2, n - 1):
        start, stop = clean.packets[p].positions or (0, 0)
        lost = np.zeros(2 * POSITIONS, bool)
        lost[start:stop] = True
        # A link-flagged block, and the same block corrupted without a flag (CRC catches it).
        flipped = bytearray(payload.data)
        flipped[p * PACKET + PACKET // 2] ^= 0x10
        for data, ranges in ((payload.data, ((p * PACKET, (p + 1) * PACKET),)),
                             (bytes(flipped), ())):
            got = packets.decode_detailed(ReceivedPayload(data, SHAPE, ranges))
            rec = got.reconstruction
            assert rec.ok and rec.concealed and rec.error == ""
            assert rec.image.shape == (*SHAPE, 3) and rec.image.dtype == np.uint8
            assert rec.labels is not None and rec.labels.shape == SHAPE
            assert got.missing_s is not None and got.missing_x is not None
            np.testing.assert_array_equal(got.missing_s.ravel(), lost[:POSITIONS])
            np.testing.assert_array_equal(got.missing_x.ravel(), lost[POSITIONS:])
            assert got.payload is not None and got.payload.packets_lost == 1
            # Exactly the model's concealment of those positions.
            _, ref = _reference(packets, image, labels, 1.0, got.missing_x, got.missing_s)
            assert got.decoded is not None and torch.equal(got.decoded.x_hat, ref.x_hat)


def test_priority_bytes_are_the_packets_of_the_semantic_grid(
        single: SQGANCodec, packets: SQGANCodec, scene: tuple[np.ndarray, np.ndarray]) -> None:
    """Packet mode marks the packets that carry any semantic position as priority: when
    only they arrive, s_hat is the error-free one and every x position is missing."""
    image, labels = scene
    assert single.encode(image, labels, RatePoint(knob=1.0)).priority_bytes == 0
    payload = packets.encode(image, labels, RatePoint(knob=1.0))
    clean = decode_payload(payload.data, packets.spec(SHAPE))
    carrying_s = [p for p in clean.packets if (p.positions or (0, 0))[0] < POSITIONS]
    assert 0 < payload.priority_bytes == len(carrying_s) * PACKET < len(payload.data)
    tail = ((payload.priority_bytes, len(payload.data)),)
    got = packets.decode_detailed(ReceivedPayload(payload.data, SHAPE, tail))
    full = packets.decode(ReceivedPayload(payload.data, SHAPE))
    assert got.reconstruction.ok and got.reconstruction.concealed
    assert got.missing_s is not None and not got.missing_s.any()
    assert got.missing_x is not None
    arrived = max((p.positions or (0, 0))[1] for p in carrying_s) - POSITIONS
    expect = np.arange(POSITIONS) >= arrived  # x positions beyond the priority packets
    np.testing.assert_array_equal(got.missing_x.ravel(), expect)
    np.testing.assert_array_equal(got.reconstruction.labels, full.labels)


def test_total_loss_is_not_ok(single: SQGANCodec, packets: SQGANCodec,
                              scene: tuple[np.ndarray, np.ndarray]) -> None:
    for codec in (single, packets):
        data = codec.encode(*scene, RatePoint(knob=0.5)).data
        for received in (ReceivedPayload(data, SHAPE, ((0, len(data)),)),
                         ReceivedPayload(b"", SHAPE),
                         ReceivedPayload(data, (36, 64))):
            rec = codec.decode(received)
            assert not rec.ok and rec.error and rec.labels is None
            assert rec.image.shape == (*received.shape, 3) and rec.image.dtype == np.uint8
    # Single-packet mode: any damage loses everything (the cliff).
    damaged = bytearray(single.encode(*scene, RatePoint(knob=0.5)).data)
    damaged[-1] ^= 0x01
    rec = single.decode(ReceivedPayload(bytes(damaged), SHAPE))
    assert not rec.ok and "checksum" in rec.error


def test_bytes_of_another_model_are_rejected(tmp_path: Path, checkpoint: Path,
                                             single: SQGANCodec,
                                             scene: tuple[np.ndarray, np.ndarray]) -> None:
    ckpt = torch.load(checkpoint, weights_only=True)
    ckpt["index_counts"]["image"] = ckpt["index_counts"]["image"] + 1
    torch.save(ckpt, tmp_path / "other.pt")
    other = SQGANCodec(tmp_path / "other.pt")
    rec = other.decode(ReceivedPayload(single.encode(*scene, RatePoint(knob=0.5)).data, SHAPE))
    assert not rec.ok and "checksum" in rec.error


def test_random_corruption_never_raises(single: SQGANCodec, packets: SQGANCodec,
                                        scene: tuple[np.ndarray, np.ndarray]) -> None:
    rng = np.random.default_rng(2024)
    sent = {id(c): [c.encode(*scene, RatePoint(knob=m)).data for m in (0.05, 0.5, 1.0)]
            for c in (single, packets)}
    outcomes = {"ok": 0, "concealed": 0, "failed": 0}
    for case in range(100):
        codec = (single, packets)[case % 2]
        data = bytearray(sent[id(codec)][int(rng.integers(3))])
        kind = case % 5
        if kind == 0:  # random bit flips, no flag
            for i in rng.integers(0, len(data), size=int(rng.integers(1, 6))):
                data[i] ^= 1 << int(rng.integers(8))
        elif kind == 1:  # truncated or extended
            cut = int(rng.integers(0, len(data) + 1))
            data = data[:cut] + bytearray(rng.integers(0, 256, int(rng.integers(0, 40)),
                                                       dtype=np.uint8).tobytes())
        elif kind == 2:  # pure garbage of any length
            data = bytearray(rng.integers(0, 256, int(rng.integers(0, 300)),
                                          dtype=np.uint8).tobytes())
        elif kind == 3:  # burst overwritten
            a = int(rng.integers(0, len(data)))
            b = min(len(data), a + int(rng.integers(1, 64)))
            data[a:b] = rng.integers(0, 256, b - a, dtype=np.uint8).tobytes()
        lost: tuple[tuple[int, int], ...] = ()
        if kind == 4 or rng.random() < 0.3:  # link-flagged ranges, possibly past the end
            starts = rng.integers(0, len(data) + 8, size=int(rng.integers(1, 4)))
            lost = tuple((int(a), int(a + rng.integers(0, 80))) for a in starts)
        rec = codec.decode(ReceivedPayload(bytes(data), SHAPE, lost))
        assert rec.image.shape == (*SHAPE, 3) and rec.image.dtype == np.uint8
        if rec.ok:
            assert rec.labels is not None and rec.labels.shape == SHAPE and rec.error == ""
            assert set(np.unique(rec.labels).tolist()) <= {*range(19), 255}
        else:
            assert rec.error and rec.labels is None
        outcomes["failed" if not rec.ok else "concealed" if rec.concealed else "ok"] += 1
    # Not vacuous: the corruptions produced every outcome.
    assert min(outcomes.values()) > 0, outcomes


# ----------------------------------------------------------------------- rate control
@pytest.mark.parametrize("mode", ["single", "packets"])
def test_bpp_target_picks_the_largest_fitting_m(mode: str, single: SQGANCodec,
                                                packets: SQGANCodec,
                                                scene: tuple[np.ndarray, np.ndarray]) -> None:
    codec = single if mode == "single" else packets
    grid = codec.m_grid
    sizes = [len(codec.encode(*scene, RatePoint(knob=m)).data) for m in grid]
    assert sizes == sorted(sizes)  # monotone in m (what the bisection relies on)
    targets = sorted({8 * (sizes[i] + d) / PIXELS
                      for i in (0, 5, 11, 20, len(grid) - 1) for d in (-1, 0, 3)})
    for bpp in targets:
        budget = math.floor(bpp * PIXELS / 8 + 1e-9)
        if budget < sizes[0]:
            with pytest.warns(UserWarning, match="unreachable"):
                payload = codec.encode(*scene, RatePoint(bpp=bpp))
            assert payload.knob == grid[0] and payload.bpp > bpp
            continue
        payload = codec.encode(*scene, RatePoint(bpp=bpp))
        best = max(i for i, n in enumerate(sizes) if n <= budget)
        assert payload.knob == grid[best] and len(payload.data) == sizes[best] <= budget
        assert payload.bpp <= bpp


def test_default_grid_refines_the_papers_fractions() -> None:
    grid = codec_module.M_GRID
    assert len(grid) == 33 and grid[0] == 0.05 and grid[-1] == 1.0
    assert {0.05, 0.2875, 0.525, 0.7625, 1.0} <= set(grid)
    assert isinstance(SQGANTokens, type)
