"""Coded performance: the 16-QAM rate-1/2 waterfall against Sionna, CRC integrity,
and the fast decoder's BLER against Sionna's decoder at three SNRs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from channels import Link, LinkConfig
from channels.sweep import wilson_interval

WATERFALL = dict(modulation="16qam", code_rate=0.5, k=4096, channel="awgn", bp_iterations=20)


def _bler(link: Link, esno_db: float, blocks: int, seed: int) -> tuple[int, int]:
    """(block errors, blocks) over ``blocks`` random full blocks."""
    data = np.random.default_rng(seed).integers(0, 256, blocks * link.block_payload_bytes,
                                                dtype=np.uint8)
    r = link.transmit([data], esno_db, [seed])[0]
    return r.block_errors, r.num_blocks


def _crossing(snrs: list[float], blers: list[float], target: float = 0.1) -> float:
    """SNR where BLER crosses ``target`` (log-linear interpolation between grid points)."""
    for i in range(len(snrs) - 1):
        if blers[i] >= target > blers[i + 1]:
            lo, hi = math.log10(blers[i]), math.log10(max(blers[i + 1], 1e-4))
            return snrs[i] + (math.log10(target) - lo) / (hi - lo) * (snrs[i + 1] - snrs[i])
    raise AssertionError(f"BLER never crosses {target}: {list(zip(snrs, blers, strict=True))}")


def test_waterfall_16qam_rate_half_matches_sionna() -> None:
    """BLER falls from > 0.9 to < 0.01 within 2 dB, and the BLER = 0.1 point is within
    0.3 dB of Sionna's own LDPC5GDecoder (default boxplus-phi, flooding, 20 iterations)."""
    fast = Link(LinkConfig(**WATERFALL))
    snrs = [5.4 + 0.2 * i for i in range(11)]  # 5.4 .. 7.4 dB Es/N0
    counts = [_bler(fast, s, 600 if s > 6.3 else 150, seed=i) for i, s in enumerate(snrs)]
    blers = [e / n for e, n in counts]
    lows = [wilson_interval(e, n)[0] for e, n in counts]
    highs = [wilson_interval(e, n)[1] for e, n in counts]
    # > 0.9 and < 0.01 with 95% confidence, at most 2 dB apart
    top = max(i for i in range(len(snrs)) if lows[i] > 0.9)
    bottom = min(i for i in range(len(snrs)) if highs[i] < 0.01)
    assert snrs[bottom] - snrs[top] <= 2.0 + 1e-9, list(zip(snrs, blers, strict=True))
    s_fast = _crossing(snrs, blers)

    # Not vacuous: at the BLER = 0.1 point the channel's hard decisions are wrong often.
    bits = np.unpackbits(fast.layout.segment(np.zeros(8 * 509, np.uint8)), axis=1)
    coded = fast.backend.encode(bits)
    y, nv = fast.channel.apply(fast.backend.modulate(coded), 10 ** (-s_fast / 10), 1, 0)
    raw_ber = np.mean((fast.backend.demodulate(y, nv) > 0) != coded)
    assert raw_ber > 0.02

    # Sionna's decoder crosses 0.1 between s_fast - 0.3 and s_fast + 0.3 (95% confidence).
    ref = Link(LinkConfig(**WATERFALL, decoder="sionna", cn_update="boxplus-phi",
                          cn_schedule="flooding"), chunk_blocks=64)
    e_lo, n_lo = _bler(ref, s_fast - 0.3, 32, seed=101)
    e_hi, n_hi = _bler(ref, s_fast + 0.3, 128, seed=102)
    assert wilson_interval(e_lo, n_lo)[0] > 0.1, (s_fast, e_lo, n_lo)
    assert wilson_interval(e_hi, n_hi)[1] < 0.1, (s_fast, e_hi, n_hi)


def test_crc_lets_no_failed_block_through() -> None:
    """>= 1000 failed blocks, every one flagged by the CRC: a short LDPC code below its
    threshold (decoder output far from the block sent) and an uncoded link with a few
    bit errors per block (the sparse patterns a weak CRC would miss)."""
    failed = 0
    for cfg, esno_db in ((LinkConfig(modulation="qpsk", k=128, n=256), -3.0),
                         (LinkConfig(modulation="qpsk", coding="uncoded", k=256), 5.0)):
        link = Link(cfg)
        bpb = link.block_payload_bytes
        data = np.random.default_rng(0).integers(0, 256, 700 * bpb, dtype=np.uint8)
        r = link.transmit([data], esno_db, [0])[0]
        corrupted = np.any((r.data ^ data).reshape(-1, bpb) != 0, axis=1)
        assert r.undetected_block_errors == 0
        assert np.all(~r.block_ok[corrupted])  # every corrupted block is flagged
        failed += r.block_errors
    assert failed >= 1000


@pytest.mark.parametrize("esno_db", [5.75, 6.25, 6.75])
def test_fast_bler_within_band_of_sionna(esno_db: float) -> None:
    """Same payloads and channel realisations through both decoders (the fast one and
    Sionna's LDPC5GDecoder with the same rule: layered offset min-sum, 20 iterations):
    BLERs agree within 5 standard errors of their difference, and block by block."""
    cfg = dict(modulation="16qam", k=512, n=1024)
    blocks = 128
    fast = Link(LinkConfig(**cfg))
    ref = Link(LinkConfig(**cfg, decoder="sionna"), chunk_blocks=blocks)
    data = np.random.default_rng(7).integers(0, 256, blocks * fast.block_payload_bytes,
                                             dtype=np.uint8)
    rf = fast.transmit([data], esno_db, [7])[0]
    rs = ref.transmit([data], esno_db, [7])[0]
    p_f, p_s = rf.block_errors / blocks, rs.block_errors / blocks
    pooled = (p_f + p_s) / 2
    se = math.sqrt(max(pooled * (1 - pooled), 1 / blocks) * 2 / blocks)
    assert abs(p_f - p_s) <= 5 * se, (p_f, p_s)
    assert np.mean(rf.block_ok == rs.block_ok) >= 0.9
    assert 0 < rs.block_errors < blocks  # inside the waterfall: not vacuous
