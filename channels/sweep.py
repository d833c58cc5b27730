"""BER/BLER vs SNR of the link alone, with Wilson 95% intervals.

With HARQ, BLER is the residual block error rate after the last transmission, channel
uses count every transmission and ``mean_transmissions`` is the mean per code block.

Each SNR point sends batches of full code blocks of random payload bytes until it has
seen ``target_block_errors`` block errors or ``max_blocks`` blocks. Batch ``b`` of every
point uses payload seed ``(seed << 32) | b`` and payload bytes from
``default_rng([seed, b])``: the points share data and noise shapes (common random
numbers), which makes curves smooth and comparisons between configs paired.

Interval caveat: BLER intervals are exact-coverage Wilson intervals for independent
blocks. Bit errors cluster inside failed blocks, so the BER interval (Wilson over bits)
is narrower than the truth; use the BLER interval to judge significance.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from channels.config import LinkConfig
from channels.link import Link
from channels.snr import check_snr_db, esno_db_from_ebno_db

Z95 = 1.959963984540054  # standard normal 97.5% quantile


@dataclass(frozen=True)
class SweepPoint:
    """One measured SNR point (all counts over payload bits / code blocks)."""

    esno_db: float
    ebno_db: float
    num_blocks: int
    block_errors: int
    bler: float
    bler_low: float
    bler_high: float
    num_bits: int
    bit_errors: int
    ber: float
    ber_low: float
    ber_high: float
    undetected_block_errors: int
    channel_uses: int
    mean_iterations: float
    seconds: float
    mean_transmissions: float = 1.0


def wilson_interval(errors: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% for the default z), by
    ``scipy.stats.binomtest(...).proportion_ci(method="wilson")`` at the confidence of
    ``z`` (two-sided). Returns (0, 1) when ``trials`` is 0; the lower bound is 0 at
    zero errors.
    """
    from scipy.stats import binomtest

    if trials < 0 or not 0 <= errors <= max(trials, 0):
        raise ValueError(f"need 0 <= errors <= trials, got errors={errors}, trials={trials}")
    if trials == 0:
        return 0.0, 1.0
    confidence = 2.0 * NormalDist().cdf(z) - 1.0
    ci = binomtest(int(errors), int(trials)).proportion_ci(confidence_level=confidence,
                                                           method="wilson")
    return float(ci.low), float(ci.high)


def ebno_db_of(cfg: LinkConfig, esno_db: float) -> float:
    """Eb/N0 (per LDPC information bit) of ``esno_db`` under ``cfg``."""
    assert cfg.code_rate is not None
    return esno_db - esno_db_from_ebno_db(0.0, cfg.bits_per_symbol, cfg.code_rate)


def ber_bler_sweep(cfg: LinkConfig, esno_db_list: Sequence[float] | float,
                   target_block_errors: int = 100, max_blocks: int = 10000, seed: int = 0,
                   batch_blocks: int = 64,
                   progress: Callable[[SweepPoint], None] | None = None) -> list[SweepPoint]:
    """Measure BER and BLER at each Es/N0 of ``esno_db_list``.

    Parameters
    ----------
    cfg : LinkConfig
    esno_db_list : Es/N0 values in dB, or one value (use ``esno_db_from_ebno_db`` for Eb/N0)
    target_block_errors : stop a point after this many block errors (>= 1)
    max_blocks : ... or after this many blocks (>= 1)
    seed : int >= 0, see module docstring
    batch_blocks : code blocks per ``transmit`` call
    progress : called with each finished point

    Returns
    -------
    list[SweepPoint], in the order of ``esno_db_list``.
    """
    snrs = check_sweep_args(esno_db_list, target_block_errors, max_blocks, seed, batch_blocks)
    link = Link(cfg)
    points = []
    for snr in snrs:
        point = _measure_point(link, snr, target_block_errors, max_blocks, seed, batch_blocks)
        points.append(point)
        if progress is not None:
            progress(point)
    return points


def check_sweep_args(esno_db_list: Sequence[float] | float, target_block_errors: int,
                     max_blocks: int, seed: int, batch_blocks: int = 64) -> list[float]:
    """Validate ``ber_bler_sweep``'s arguments (before any compute or output); returns the
    SNRs as floats (one number, a 0-d array or a sequence)."""
    values: Sequence[object]
    if isinstance(esno_db_list, np.ndarray):
        values = esno_db_list.reshape(-1).tolist()  # 0-d: one value
    elif isinstance(esno_db_list, int | float | np.number):
        values = [esno_db_list]
    else:
        values = esno_db_list
    snrs = [check_snr_db(v, f"esno_db_list[{i}]")  # type: ignore[arg-type]
            for i, v in enumerate(values)]
    if not snrs:
        raise ValueError("esno_db_list is empty; give at least one SNR")
    for name, value in (("target_block_errors", target_block_errors),
                        ("max_blocks", max_blocks), ("batch_blocks", batch_blocks)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} {value!r} must be an int >= 1")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed {seed!r} must be a non-negative int")
    return snrs


def _measure_point(link: Link, esno_db: float, target: int, max_blocks: int, seed: int,
                   batch_blocks: int) -> SweepPoint:
    bpb = link.block_payload_bytes
    blocks = block_err = bits = bit_err = undetected = uses = iters = sends = 0
    start = time.perf_counter()
    batch = 0
    while block_err < target and blocks < max_blocks:
        count = min(batch_blocks, max_blocks - blocks)
        data = np.random.default_rng([seed, batch]).integers(0, 256, count * bpb, dtype=np.uint8)
        r = link.transmit([data], esno_db, [(seed << 32) | batch])[0]
        blocks += r.num_blocks
        block_err += r.block_errors
        bits += r.num_bits
        bit_err += r.bit_errors
        undetected += r.undetected_block_errors
        uses += r.channel_uses
        iters += r.decoder_iterations
        sends += int(r.transmissions.sum())
        batch += 1
    bler_lo, bler_hi = wilson_interval(block_err, blocks)
    ber_lo, ber_hi = wilson_interval(bit_err, bits)
    return SweepPoint(
        esno_db=esno_db, ebno_db=ebno_db_of(link.config, esno_db), num_blocks=blocks,
        block_errors=block_err, bler=block_err / blocks, bler_low=bler_lo, bler_high=bler_hi,
        num_bits=bits, bit_errors=bit_err, ber=bit_err / bits, ber_low=ber_lo, ber_high=ber_hi,
        undetected_block_errors=undetected, channel_uses=uses, mean_iterations=iters / blocks,
        seconds=time.perf_counter() - start, mean_transmissions=sends / blocks)
