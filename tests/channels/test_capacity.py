"""Capacities against closed forms, published thresholds and Monte Carlo."""

import math

import numpy as np
import pytest

from channels.capacity import capacity, required_esno_db


def test_bicm_16qam_threshold():
    # 16-QAM Gray BICM carries 2 bit/symbol from Es/N0 = 5.28 dB (issue 24's reference).
    assert required_esno_db(2.0, "bicm", "awgn", 4) == pytest.approx(5.28, abs=0.05)


def test_bicm_qpsk_is_two_bpsk_shannon_limit():
    # QPSK at 1 bit/symbol = BPSK at rate 1/2, whose limit is Eb/N0 = 0.187 dB; with
    # Es = 2 Eb per QPSK symbol at this rate, Es/N0 = 0.187 dB as well.
    assert required_esno_db(1.0, "bicm", "awgn", 2) == pytest.approx(0.187, abs=0.02)


@pytest.mark.parametrize("rate", [0.5, 1.0, 2.0, 4.0])
def test_gaussian_awgn_formula(rate):
    assert required_esno_db(rate) == pytest.approx(10 * math.log10(2**rate - 1), abs=1e-4)


@pytest.mark.parametrize("m", [2, 4, 6, 8])
def test_bicm_bounds_and_saturation(m):
    snrs = np.arange(-10.0, 41.0, 5.0)
    c = [capacity(s, "bicm", "awgn", m) for s in snrs]
    assert all(b > a for a, b in zip(c, c[1:], strict=False) if a < m - 1e-6)  # increasing
    assert all(ci <= capacity(s) + 1e-9 for ci, s in zip(c, snrs, strict=True))  # <= Shannon
    assert c[-1] == pytest.approx(m, abs=1e-3)


def test_ergodic_against_monte_carlo():
    rng = np.random.default_rng(0)
    g = rng.exponential(size=200_000)
    snr_db = 8.0
    mc = np.log2(1 + g * 10 ** (snr_db / 10))
    se = mc.std() / math.sqrt(mc.size)
    assert abs(capacity(snr_db, "gaussian", "rayleigh-fast") - mc.mean()) < 5 * se
    g = g[:400]  # BICM: average the AWGN capacity over sampled gains
    mc_b = np.array([capacity(snr_db + 10 * math.log10(x), "bicm", "awgn", 4) for x in g])
    se_b = mc_b.std() / math.sqrt(mc_b.size)
    assert abs(capacity(snr_db, "bicm", "rayleigh-fast", 4) - mc_b.mean()) < 5 * se_b


def test_outage_capacity_has_the_stated_outage():
    rng = np.random.default_rng(1)
    g = rng.exponential(size=200_000)
    snr_db, p = 15.0, 0.05
    c_out = capacity(snr_db, "gaussian", "rayleigh-block", outage=p)
    frac = np.mean(np.log2(1 + g * 10 ** (snr_db / 10)) < c_out)
    assert abs(frac - p) < 5 * math.sqrt(p * (1 - p) / g.size)
    # BICM: the same quantile of the gain, applied to the modulation's AWGN capacity.
    gp = -math.log1p(-p)
    assert capacity(snr_db, "bicm", "rayleigh-block", 4, outage=p) == pytest.approx(
        capacity(snr_db + 10 * math.log10(gp), "bicm", "awgn", 4))


def test_fading_costs_snr():
    for kind, m in (("gaussian", None), ("bicm", 4)):
        awgn = required_esno_db(1.5, kind, "awgn", m)
        fast = required_esno_db(1.5, kind, "rayleigh-fast", m)
        block = required_esno_db(1.5, kind, "rayleigh-block", m, outage=0.01)
        assert awgn < fast < block


@pytest.mark.parametrize("kwargs, match", [
    ({"kind": "turbo"}, "kind"),
    ({"channel": "rician"}, "channel"),
    ({"kind": "bicm"}, "bits_per_symbol"),
    ({"channel": "rayleigh-block", "outage": 1.5}, "outage"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        capacity(5.0, **kwargs)


def test_unreachable_rate():
    with pytest.raises(ValueError, match="bits per channel use"):
        required_esno_db(4.0, "bicm", "awgn", 4)
