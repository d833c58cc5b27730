"""The separation-theorem ceiling drawn on the quality-vs-SNR plots."""

from __future__ import annotations

import math

import pytest

from channels import LinkConfig
from channels.capacity import capacity, required_esno_db
from semcomm.runner.plots import capacity_bound

CURVE = [(0.25, 0.40), (0.5, 0.60), (1.0, 0.70)]  # error-free (bpp, mIoU) of a codec


def test_bound_interpolates_the_rate_quality_curve_at_capacity():
    link = LinkConfig(modulation="16qam", code_rate=0.5, channel="awgn")
    at_two_bits = required_esno_db(2.0, "bicm", "awgn", 4)  # 5.28 dB
    # 2 bit/cu x 0.25 cu/px = 0.5 bpp: exactly the curve's middle point.
    assert capacity_bound(CURVE, at_two_bits, 0.25, link) == pytest.approx(0.60, abs=1e-4)
    # 0.375 bpp lies half way between the first two points.
    assert capacity_bound(CURVE, at_two_bits, 0.1875, link) == pytest.approx(0.50, abs=1e-4)
    # Above the curve's last rate the codec cannot use more: its best quality.
    assert capacity_bound(CURVE, 30.0, 1.0, link) == pytest.approx(0.70)
    # Below its first rate nothing fits: no bound.
    assert math.isnan(capacity_bound(CURVE, -5.0, 0.25, link))


def test_bound_uses_the_channel_and_capacity_kind():
    esno, cu = 4.0, 0.2
    for channel in ("awgn", "rayleigh-fast", "rayleigh-block"):
        link = LinkConfig(modulation="qpsk", code_rate=0.5, channel=channel)
        for kind in ("bicm", "gaussian"):
            bits = capacity(esno, kind, channel, 2 if kind == "bicm" else None, 0.05)
            want = float(__import__("numpy").interp(bits * cu, *zip(*CURVE, strict=True))) \
                if bits * cu >= CURVE[0][0] else math.nan
            got = capacity_bound(CURVE, esno, cu, link, kind, outage=0.05)
            assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want)
    # Fading costs quality at the same average SNR; Gaussian inputs bound BICM from above.
    awgn, fast, block = (capacity_bound(CURVE, 8.0, 0.2, LinkConfig(
        modulation="qpsk", code_rate=0.5, channel=c)) for c in
        ("awgn", "rayleigh-fast", "rayleigh-block"))
    assert awgn >= fast and math.isnan(block) or awgn >= fast >= block
    link = LinkConfig(modulation="qpsk", code_rate=0.5, channel="awgn")
    assert capacity_bound(CURVE, 3.0, 0.2, link, "gaussian") >= \
        capacity_bound(CURVE, 3.0, 0.2, link, "bicm")


def test_bound_rises_with_snr_and_needs_a_curve():
    link = LinkConfig(modulation="16qam", code_rate=0.5, channel="awgn")
    values = [capacity_bound(CURVE, s, 0.2, link) for s in range(2, 20)]
    finite = [v for v in values if math.isfinite(v)]
    assert finite == sorted(finite) and len(finite) > 5
    assert math.isnan(capacity_bound([], 10.0, 0.2, link))
