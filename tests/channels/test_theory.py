"""Uncoded BER against closed forms, tolerance 5 standard errors of the estimate.

Closed forms (Es = 1, no = N0 = 10^(-EsN0/10), nearest-point detection, Gray labels):

* QPSK on AWGN: each bit is a BPSK decision on one axis with amplitude 1/sqrt(2) and noise
  variance no/2, so BER = Q(sqrt(Es/N0)).
* 16-QAM on AWGN: per axis 4-PAM at +-d, +-3d, d = 1/sqrt(10), noise sigma^2 = no/2. The
  sign bit errs with (Q(d/s) + Q(3d/s))/2, the magnitude bit (threshold 2d) with
  (2Q(d/s) + Q(3d/s) - Q(5d/s))/2, so BER = (3Q(a) + 2Q(3a) - Q(5a))/4, a = sqrt(Es/N0 / 5).
* QPSK on fast Rayleigh with perfect CSI: given h the bit errs with Q(sqrt(|h|^2 Es/N0));
  averaging over |h|^2 ~ Exp(1) gives the classic 0.5 (1 - sqrt(g / (1 + g))) with
  g = Es/N0 / 2 (= Eb/N0 of uncoded QPSK).

Standard error: bits that share a noise sample (same axis) or a fading gain (same symbol)
are correlated; with h such bits per group the variance of the BER estimate is at most
p (1 - p) / (N / h), so we use N / h effective bits (h = 1 for QPSK/AWGN, 2 otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy.stats import norm

from channels import Link, LinkConfig


def _q(x: float) -> float:
    return float(norm.sf(x))


def _ber_qpsk_awgn(esno_db: float) -> float:
    return _q(math.sqrt(10 ** (esno_db / 10)))


def _ber_16qam_awgn(esno_db: float) -> float:
    a = math.sqrt(10 ** (esno_db / 10) / 5)
    return (3 * _q(a) + 2 * _q(3 * a) - _q(5 * a)) / 4


def _ber_qpsk_rayleigh(esno_db: float) -> float:
    g = 10 ** (esno_db / 10) / 2
    return 0.5 * (1 - math.sqrt(g / (1 + g)))


def _measure(modulation: str, channel: str, esno_db: float, blocks: int,
             seed: int) -> tuple[int, int]:
    link = Link(LinkConfig(modulation=modulation, coding="uncoded", channel=channel, k=8192))
    rng = np.random.default_rng(seed)
    payload = rng.integers(0, 256, blocks * link.block_payload_bytes, dtype=np.uint8)
    r = link.transmit([payload], esno_db, [seed])[0]
    return r.bit_errors, r.num_bits


@pytest.mark.parametrize(
    ("modulation", "channel", "theory", "snrs", "group"),
    [
        ("qpsk", "awgn", _ber_qpsk_awgn, (0.0, 4.0, 8.0), 1),
        ("16qam", "awgn", _ber_16qam_awgn, (4.0, 9.0, 14.0), 2),
        ("qpsk", "rayleigh-fast", _ber_qpsk_rayleigh, (0.0, 10.0, 20.0), 2),
    ],
)
def test_uncoded_ber_matches_closed_form(modulation: str, channel: str,
                                         theory: Callable[[float], float],
                                         snrs: tuple[float, ...], group: int) -> None:
    for i, esno_db in enumerate(snrs):
        errors, bits = _measure(modulation, channel, esno_db, blocks=160, seed=i)
        p = theory(esno_db)
        se = math.sqrt(p * (1 - p) / (bits / group))
        assert errors > 100, "too few errors for a meaningful check"
        assert abs(errors / bits - p) <= 5 * se, (esno_db, errors / bits, p, se)


def test_closed_form_check_can_fail() -> None:
    """A 1 dB SNR mistake is far outside the band at this sample size."""
    errors, bits = _measure("qpsk", "awgn", 5.0, blocks=160, seed=9)
    p_wrong = _ber_qpsk_awgn(6.0)
    se = math.sqrt(p_wrong * (1 - p_wrong) / bits)
    assert abs(errors / bits - p_wrong) > 5 * se
