"""Channel capacities: the rate a link could carry at an SNR (separation-theorem ceilings).

::

    esno_db ──► capacity(kind, channel, ...) ──► bits per channel use (complex symbol)
    rate    ──► required_esno_db(...)        ──► smallest Es/N0 (dB) that carries it

Kinds
-----
* ``gaussian``: Gaussian inputs, ``log2(1 + snr)`` (Shannon).
* ``bicm``: bit-interleaved coded modulation with the link's Gray QAM
  (``channels.modulation``) and an ideal binary code per bit level,
  ``C = sum_i I(b_i; y)`` (Caire, Taricco, Biglieri, IEEE Trans. IT 44(3), 1998). Gray
  QAM factorises into two PAMs (even bits label the real axis, odd bits the imaginary
  one), so ``C_QAM(snr) = 2 C_PAM`` with noise ``no / 2`` per axis; each bit level's
  mutual information is an expectation over the Gaussian noise, evaluated with
  Gauss-Hermite quadrature (deterministic, converged to < 1e-6 bit with 96 nodes).

Channels (SNR conventions of ``channels.snr``: Es = 1, E|h|^2 = 1, perfect CSI)
-------------------------------------------------------------------------------
* ``awgn``: the capacity at ``snr``.
* ``rayleigh-fast``: ergodic capacity ``E_g[C(g snr)]``, g = |h|^2 ~ Exp(1) (one gain
  per symbol, coding across many): closed form for ``gaussian``, adaptive quadrature
  over g for ``bicm``.
* ``rayleigh-block``: outage capacity at outage probability ``outage`` (one gain per
  code block): the largest rate carried with probability ``1 - outage``,
  ``C(g_p snr)`` with ``g_p = -ln(1 - outage)`` the ``outage`` quantile of Exp(1).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.special import exp1, logsumexp

from channels.modulation import _pam_norm, pam_levels
from channels.snr import check_snr_db, db_to_linear

KINDS = ("gaussian", "bicm")
CHANNELS = ("awgn", "rayleigh-fast", "rayleigh-block")
#: Gauss-Hermite order of the expectation over the noise.
_HERMITE_NODES = 96


def capacity(esno_db: float, kind: str = "gaussian", channel: str = "awgn",
             bits_per_symbol: int | None = None, outage: float = 0.01) -> float:
    """Bits per complex channel use the channel could carry at Es/N0 = ``esno_db``.

    Parameters
    ----------
    esno_db : float
        Average Es/N0 per complex symbol, dB.
    kind : ``"gaussian"`` | ``"bicm"``
    channel : ``"awgn"`` | ``"rayleigh-fast"`` | ``"rayleigh-block"``
    bits_per_symbol : {2, 4, 6, 8}, required for ``bicm``
    outage : float in (0, 1), for ``rayleigh-block``

    Output
    ------
    float, bits per channel use (<= bits_per_symbol for ``bicm``).
    """
    snr = db_to_linear(check_snr_db(esno_db, "esno_db"))
    _check(kind, channel, bits_per_symbol, outage)
    awgn = functools.partial(_awgn_capacity, kind=kind, bits_per_symbol=bits_per_symbol)
    if channel == "awgn":
        return awgn(snr)
    if channel == "rayleigh-block":
        return awgn(snr * -math.log1p(-outage))
    if kind == "gaussian" and snr > 0.02:  # E[log2(1 + g snr)] = log2(e) e^(1/snr) E1(1/snr)
        return float(math.log2(math.e) * exp1(1.0 / snr) * math.exp(1.0 / snr))
    # Adaptive quadrature: the integrand has a log kink near g = 0 at high SNR, where a
    # fixed Gauss-Laguerre rule is off by 0.01 bit.
    value, _ = quad(lambda g: math.exp(-g) * awgn(snr * g), 0.0, math.inf, limit=200,
                    epsabs=1e-9, epsrel=1e-9)
    return float(value)


def required_esno_db(rate: float, kind: str = "gaussian", channel: str = "awgn",
                     bits_per_symbol: int | None = None, outage: float = 0.01) -> float:
    """Smallest Es/N0 (dB) whose :func:`capacity` reaches ``rate`` bits per channel use.

    Raises ValueError if ``rate`` is not in (0, bits_per_symbol) for ``bicm``.
    """
    _check(kind, channel, bits_per_symbol, outage)
    top = float(bits_per_symbol) if kind == "bicm" else math.inf  # type: ignore[arg-type]
    if not (isinstance(rate, (int, float)) and 0.0 < rate < top):
        raise ValueError(f"rate {rate!r} bits per channel use must lie in (0, {top:g}) "
                         f"for {kind} capacity")

    def gap(esno_db: float) -> float:
        return capacity(esno_db, kind, channel, bits_per_symbol, outage) - rate

    lo, hi = -30.0, 30.0
    while gap(hi) < 0:
        hi += 30.0
    return float(brentq(gap, lo, hi, xtol=1e-6))


def _check(kind: str, channel: str, bits_per_symbol: int | None, outage: float) -> None:
    if kind not in KINDS:
        raise ValueError(f"capacity kind {kind!r} not one of {', '.join(KINDS)}")
    if channel not in CHANNELS:
        raise ValueError(f"channel {channel!r} not one of {', '.join(CHANNELS)}")
    if kind == "bicm" and bits_per_symbol not in (2, 4, 6, 8):
        raise ValueError(f"bicm capacity needs bits_per_symbol in 2, 4, 6, 8, got "
                         f"{bits_per_symbol!r}")
    if channel == "rayleigh-block" and not (isinstance(outage, (int, float))
                                            and 0.0 < outage < 1.0):
        raise ValueError(f"outage probability {outage!r} must lie in (0, 1)")


def _awgn_capacity(snr: float, kind: str, bits_per_symbol: int | None) -> float:
    if kind == "gaussian":
        return math.log2(1.0 + snr)
    assert bits_per_symbol is not None
    return 2.0 * _bicm_pam(snr, bits_per_symbol // 2)


def _bicm_pam(snr: float, bits_per_dim: int) -> float:
    """BICM capacity (bits per real dimension) of the Gray PAM with 2^bits_per_dim levels
    at complex Es/N0 ``snr`` (noise variance ``1 / (2 snr)`` per real dimension)."""
    if snr <= 0.0:
        return 0.0
    levels = pam_levels(bits_per_dim) / _pam_norm(bits_per_dim)  # [M], label = index
    labels = np.arange(levels.size)
    sigma2 = 0.5 / snr
    t, w = np.polynomial.hermite.hermgauss(_HERMITE_NODES)  # int e^-t^2 f(t) dt
    y = levels[:, None] + math.sqrt(2.0 * sigma2) * t[None, :]  # [M, T]
    metric = -(y[:, :, None] - levels[None, None, :]) ** 2 / (2.0 * sigma2)  # [M, T, M]
    log_all = logsumexp(metric, axis=2)  # [M, T]
    total = 0.0
    for i in range(bits_per_dim):
        bit = (labels >> (bits_per_dim - 1 - i)) & 1  # b_i of every level
        same = bit[:, None] == bit[None, :]  # [M (sent), M (candidate)]
        log_same = logsumexp(np.where(same[:, None, :], metric, -np.inf), axis=2)
        penalty = (log_all - log_same) / math.log(2.0)  # [M, T], >= 0
        total += 1.0 - float(np.mean(penalty @ w) / math.sqrt(math.pi))
    return max(total, 0.0)
