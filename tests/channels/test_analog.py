"""The analog path against the digital one: same draws, same noise and fading statistics.

Statistical checks take their tolerance from the sample size (5 standard errors): a
variance estimate of |n|^2 ~ Exp(no) from N samples has standard error no / sqrt(N),
a mean of |h|^2 ~ Exp(1) has 1 / sqrt(N), a share p has sqrt(p (1 - p) / N).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from channels import Link, LinkConfig
from channels.analog import AnalogChannel
from channels.channel import FlatChannel, _complex_normal
from channels.config import CHANNELS
from channels.snr import noise_variance


def _unit_symbols(k: int, seed: int = 0) -> np.ndarray:
    """[k] complex64 QPSK symbols: mean power exactly 1."""
    bits = np.random.default_rng(seed).integers(0, 2, (k, 2))
    return ((1 - 2 * bits[:, 0] + 1j * (1 - 2 * bits[:, 1])) / math.sqrt(2)).astype(np.complex64)


@pytest.mark.parametrize("kind", CHANNELS)
@pytest.mark.parametrize("block_symbols", [None, 24])
def test_same_draws_as_the_digital_channel(kind: str, block_symbols: int | None) -> None:
    """ZF output and noise_var are the digital path's FlatChannel output, symbol for symbol,
    at the same seed (common random numbers), also for a k that is not a multiple of S."""
    s, k, no, seed = 64, 64 * 5 - 17, noise_variance(3.0), 11
    z = _unit_symbols(k)
    analog = AnalogChannel(kind, s, block_symbols, equaliser="zf")
    x_eq, nv = analog.apply(z, no, seed)
    padded = np.zeros(5 * s, np.complex64)
    padded[:k] = z
    ref_eq, ref_nv = FlatChannel(kind, s, block_symbols).apply(padded.reshape(5, s), no, seed, 0)
    assert np.array_equal(x_eq, ref_eq.reshape(-1)[:k])
    assert np.array_equal(nv, ref_nv.reshape(-1)[:k])
    if kind != "awgn":  # not vacuous: the fading really varies
        assert np.ptp(nv) > 0


def test_from_link_takes_the_links_channel_and_block_length() -> None:
    cfg = LinkConfig(modulation="16qam", code_rate=0.5, channel="rayleigh-block",
                     block_symbols=100)
    link, analog = Link(cfg), AnalogChannel.from_link(cfg)
    assert (analog.channel.kind, analog.channel.symbols_per_block,
            analog.channel.block_symbols) == (link.channel.kind, link.channel.symbols_per_block,
                                              link.channel.block_symbols)
    assert analog.symbols_per_block == link.symbols_per_block == 2048


def test_mmse_is_conj_h_y_over_gain_plus_no() -> None:
    """MMSE output rebuilt from the documented draws (channels.channel: block j of seed s
    draws its gains, then its noise, from SeedSequence(s, spawn_key=(0, j)))."""
    s, no, seed = 32, noise_variance(0.0), 5
    z = _unit_symbols(2 * s, 1)
    out, nv = AnalogChannel("rayleigh-fast", s).apply(z, no, seed)
    for j in range(2):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, j)))
        h = _complex_normal(rng.standard_normal((s, 2), dtype=np.float32)).astype(np.complex128)
        n = _complex_normal(rng.standard_normal((s, 2), dtype=np.float32)) * math.sqrt(no)
        y = h * z[j * s:(j + 1) * s] + n
        want = np.conj(h) * y / (np.abs(h) ** 2 + no)
        np.testing.assert_allclose(out[j * s:(j + 1) * s], want, rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(nv[j * s:(j + 1) * s], no / np.abs(h) ** 2, rtol=1e-4)


@pytest.mark.parametrize("esno_db", [0.0, 10.0])
def test_awgn_noise_variance_matches_the_digital_path(esno_db: float) -> None:
    """Measured noise variance of the analog path = no = that of the digital path's
    channel stage (another seed, so the two estimates are independent)."""
    n, s = 2**17, 2048
    no = noise_variance(esno_db)
    z = _unit_symbols(n, 2)
    x_eq = AnalogChannel("awgn", s, equaliser="zf").transmit([z], esno_db, [3])[0].symbols
    link = Link(LinkConfig(modulation="16qam", code_rate=0.5, channel="awgn"))
    d_eq, _ = link.channel.apply(z.reshape(-1, s), no, 4, 0)
    tol = 5 * no / math.sqrt(n)
    var_a = float(np.mean(np.abs(x_eq - z) ** 2))
    var_d = float(np.mean(np.abs(d_eq.reshape(-1) - z) ** 2))
    assert abs(var_a - no) < tol, (var_a, no)
    assert abs(var_d - no) < tol, (var_d, no)
    assert abs(var_a - var_d) < 2 * tol


@pytest.mark.parametrize("kind", ["rayleigh-fast", "rayleigh-block"])
def test_fading_statistics_match_the_digital_path(kind: str) -> None:
    """|h|^2 ~ Exp(1) on both paths: mean 1 and P(|h|^2 < 0.1) = 1 - e^-0.1; rayleigh-block
    holds one gain per S symbols, as per code block on the link."""
    s = 16
    blocks = 8192 if kind == "rayleigh-block" else 512
    no = noise_variance(10.0)
    z = _unit_symbols(blocks * s, 3)
    res = AnalogChannel(kind, s).transmit([z], 10.0, [21])[0]
    gain_a = no / res.noise_var
    _, d_nv = FlatChannel(kind, s).apply(z.reshape(blocks, s), no, 22, 0)
    gain_d = no / d_nv.reshape(-1)
    if kind == "rayleigh-block":  # one gain per block of S symbols on both paths
        ga, gd = gain_a.reshape(blocks, s), gain_d.reshape(blocks, s)
        assert np.all(ga == ga[:, :1]) and np.all(gd == gd[:, :1])
        gain_a, gain_d = ga[:, 0], gd[:, 0]
    count = gain_a.size
    p = 1 - math.exp(-0.1)
    for g in (gain_a, gain_d):
        assert abs(float(np.mean(g)) - 1.0) < 5 / math.sqrt(count)
        assert abs(float(np.mean(g < 0.1)) - p) < 5 * math.sqrt(p * (1 - p) / count)


def test_channel_uses_power_check_and_seeds() -> None:
    ch = AnalogChannel("rayleigh-fast", 50)
    z = _unit_symbols(123)
    a, b, c = ch.transmit([z, z, z], 5.0, [1, 1, 2])
    assert a.channel_uses == 123 and a.symbols.shape == (123,) and a.symbols.dtype == np.complex64
    assert np.array_equal(a.symbols, b.symbols) and not np.array_equal(a.symbols, c.symbols)
    with pytest.raises(ValueError, match="mean power 4"):
        ch.transmit([2 * z], 5.0, [0])
    with pytest.raises(ValueError, match="1-D complex"):
        ch.transmit([np.ones(4, np.float32)], 5.0, [0])
    with pytest.raises(ValueError, match="equaliser 'lmmse'"):
        AnalogChannel("awgn", 4, equaliser="lmmse")
    with pytest.raises(ValueError, match="channel 'rician'"):
        AnalogChannel("rician", 4)
