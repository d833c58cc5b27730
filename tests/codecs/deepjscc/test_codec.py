"""DeepJSCC codec: round-trip shapes, power, seeds, validation, and the pipeline hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from channels.analog import AnalogChannel
from semcomm.codecs.base import RatePoint, ReceivedPayload, ReceivedSymbols
from semcomm.codecs.deepjscc.codec import DeepJSCCCodec
from semcomm.codecs.deepjscc.config import config_from_dict
from semcomm.codecs.deepjscc.model import DeepJSCC
from semcomm.pipeline import Receiver, Transmitter, run_pipeline
from tests.codecs.deepjscc.conftest import SIZE, tiny_config, tiny_dict


def _codec(seed: int = 0) -> DeepJSCCCodec:
    torch.manual_seed(seed)
    return DeepJSCCCodec.from_model(DeepJSCC(tiny_config().model))


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*SIZE, 3), dtype=np.uint8)


@pytest.mark.parametrize(("ratio", "maps"), [(1 / 16, 1), (2 / 16, 2)])
def test_round_trip_shapes_and_power(ratio: float, maps: int) -> None:
    codec = _codec()
    p = codec.encode(_image(), None, RatePoint(knob=ratio))
    k = maps * (SIZE[0] // 4) * (SIZE[1] // 4)
    assert p.symbols.shape == (k,) and p.symbols.dtype == np.complex64
    assert p.channel_uses == codec.channel_uses(SIZE, ratio) == k
    assert p.cu_per_pixel == pytest.approx(ratio)
    assert abs(float(np.mean(np.abs(p.symbols) ** 2)) - 1.0) < 1e-5  # Es = 1
    res = AnalogChannel("rayleigh-fast", 40).transmit([p.symbols], 5.0, [1])[0]
    rec = codec.decode(ReceivedSymbols(res.symbols, res.noise_var, 5.0, SIZE))
    assert rec.ok and rec.image.shape == (*SIZE, 3) and rec.image.dtype == np.uint8


def test_same_seed_same_numbers() -> None:
    """Through the pipeline: same seed, same image; another seed, another image."""
    codec = _codec()
    tx, rx = Transmitter(codec), Receiver(codec, "mean", np.full((*SIZE, 3), 128, np.uint8))
    ch = AnalogChannel("awgn", 64)
    args = ([_image(1)], [None], RatePoint(knob=0.125), 0.0)
    a = run_pipeline(tx, rx, ch, *args, seeds=[7])[0]
    b = run_pipeline(tx, rx, ch, *args, seeds=[7])[0]
    c = run_pipeline(tx, rx, ch, *args, seeds=[8])[0]
    assert a.status == "ok" and np.array_equal(a.image, b.image)
    assert not np.array_equal(a.image, c.image)
    assert np.array_equal(_codec(0).encode(_image(), None, RatePoint(knob=0.125)).symbols,
                          _codec(0).encode(_image(), None, RatePoint(knob=0.125)).symbols)


def test_zf_input_is_converted_to_mmse() -> None:
    codec = _codec()
    p = codec.encode(_image(), None, RatePoint(knob=0.125))
    mmse = AnalogChannel("rayleigh-fast", 64).transmit([p.symbols], 3.0, [2])[0]
    zf = AnalogChannel("rayleigh-fast", 64, equaliser="zf").transmit([p.symbols], 3.0, [2])[0]
    a = codec.decode(ReceivedSymbols(mmse.symbols, mmse.noise_var, 3.0, SIZE, "mmse")).image
    b = codec.decode(ReceivedSymbols(zf.symbols, zf.noise_var, 3.0, SIZE, "zf")).image
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # float rounding only


def test_bad_rates_and_inputs() -> None:
    codec = _codec()
    with pytest.raises(ValueError, match="not bits"):
        codec.encode(_image(), None, RatePoint(bpp=0.2))
    with pytest.raises(ValueError, match=r"bandwidth ratio 0.3 not available.*0.0625, 0.125"):
        codec.encode(_image(), None, RatePoint(knob=0.3))
    with pytest.raises(ValueError, match="multiples of 4"):
        codec.encode(np.zeros((30, 64, 3), np.uint8), None, RatePoint(knob=0.125))
    rec = codec.decode(ReceivedPayload(b"abc", SIZE))  # never raises
    assert not rec.ok and "complex symbols" in rec.error
    rec = codec.decode(ReceivedSymbols(np.ones(7, np.complex64), np.zeros(7, np.float32),
                                       1.0, SIZE))
    assert not rec.ok and "do not fill" in rec.error


def test_config_errors_name_key_and_range() -> None:
    bad = tiny_dict()
    bad["train"]["chanel_choices"] = [1]
    with pytest.raises(ValueError, match="nearest valid key: 'train.channel_choices'"):
        config_from_dict(bad, "x.yaml")
    with pytest.raises(ValueError, match=r"channel_choices \[1, 3\] exceed model.max_channels 2"):
        tiny_config(channel_choices=[1, 3])
    with pytest.raises(ValueError, match="channel_probs"):
        tiny_config(channel_probs=[0.5, 0.5, 0.5])


def test_training_channel_models_the_analog_path() -> None:
    """simulate_channel: MMSE gain |h|^2/(|h|^2+no) constant per block for rayleigh-block,
    1/(1+no) on AWGN, |h|^2 = no g / (1 - g) with mean 1 (Exp(1): 5 standard errors),
    and z_hat -> z as no -> 0."""
    from semcomm.codecs.deepjscc.model import simulate_channel

    g = torch.Generator().manual_seed(0)
    k, blocks = 4096, 16
    z = torch.ones(4, k, dtype=torch.complex64)
    snr = torch.tensor([10.0, 10.0, 10.0, 60.0])
    kinds = ["awgn", "rayleigh-block", "rayleigh-fast", "rayleigh-fast"]
    z_hat, gain = simulate_channel(z, snr, kinds, k // blocks, g)
    no = 0.1
    assert torch.allclose(gain[0], torch.full((k,), 1 / (1 + no)))
    per_block = gain[1].reshape(blocks, -1)
    assert torch.all(per_block == per_block[:, :1])
    h2 = (no * gain[2] / (1 - gain[2])).double()
    assert abs(float(h2.mean()) - 1.0) < 5 / k ** 0.5
    close = (z_hat[3] - z[3]).abs() < 2e-2  # all but the deepest fades (|h|^2 << no)
    assert float(close.float().mean()) > 0.99
