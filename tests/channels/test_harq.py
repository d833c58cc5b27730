"""HARQ: redundancy versions (Sionna equality), chase and IR combining gains, the
retransmission rule and channel-use accounting, and HARQ off unchanged."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from channels import Link, LinkConfig
from channels.ldpc import FastLdpcEncoder, build_code
from channels.sweep import ber_bler_sweep, wilson_interval

QPSK_HALF = dict(modulation="qpsk", code_rate=0.5, k=1024)


@pytest.mark.parametrize(("k", "n", "m"), [(4096, 8192, 4), (1000, 3000, 2), (200, 600, 2),
                                           (8448, 9600, 8), (3824, 12000, 6)])
def test_every_rv_is_bit_exact_with_sionna(k: int, n: int, m: int) -> None:
    import torch
    from sionna.phy.fec.ldpc import LDPC5GEncoder

    code = build_code(k, n, m, (0, 1, 2, 3))
    u = np.random.default_rng(k).integers(0, 2, (3, k), dtype=np.uint8)
    ref = LDPC5GEncoder(k, n, num_bits_per_symbol=m)(torch.tensor(u, dtype=torch.float32),
                                                      rv=[0, 1, 2, 3]).numpy()
    enc = FastLdpcEncoder(code)
    for j, rv in enumerate((0, 1, 2, 3)):
        assert np.array_equal(enc(u, rv), ref[:, j].astype(np.uint8)), rv
    assert not np.array_equal(enc(u, 0), enc(u, 2))  # not vacuous


def _esno_at(cfg: LinkConfig, snrs: list[float], bler: float, blocks: int) -> float:
    """Es/N0 where BLER crosses ``bler`` (log-BLER interpolated between grid points)."""
    pts = ber_bler_sweep(cfg, snrs, target_block_errors=10**9, max_blocks=blocks,
                         batch_blocks=250)
    for a, b in zip(pts, pts[1:], strict=False):
        if a.bler >= bler > b.bler > 0:
            f = (math.log(a.bler) - math.log(bler)) / (math.log(a.bler) - math.log(b.bler))
            return a.esno_db + f * (b.esno_db - a.esno_db)
    raise AssertionError(f"BLER {bler} not bracketed: {[(p.esno_db, p.bler) for p in pts]}")


def test_chase_combining_of_two_transmissions_gains_3_db_on_awgn() -> None:
    """QPSK (per-bit LLRs add exactly), rate 1/2, k = 1024: the BLER 0.1 point moves
    3.0 +- 0.3 dB. (Without combining the second copy would gain far less.)"""
    one = _esno_at(LinkConfig(**QPSK_HALF), [0.75, 1.0, 1.25, 1.5], 0.1, 1500)
    two = _esno_at(LinkConfig(**QPSK_HALF, harq={"max_transmissions": 2}),
                   [-2.25, -2.0, -1.75, -1.5], 0.1, 1500)
    assert one - two == pytest.approx(3.0, abs=0.3), (one, two)


def test_ir_beats_chase_at_rate_half() -> None:
    counts = {}
    for combining in ("chase", "ir"):
        link = Link(LinkConfig(**QPSK_HALF, harq={"max_transmissions": 2,
                                                  "combining": combining}), num_threads=1)
        payload = np.random.default_rng(0).integers(0, 256, 400 * link.block_payload_bytes,
                                                    dtype=np.uint8)
        r = link.transmit([payload], -2.0, [5])[0]
        counts[combining] = (r.block_errors, r.num_blocks)
    _, hi_ir = wilson_interval(*counts["ir"])
    lo_chase, _ = wilson_interval(*counts["chase"])
    assert hi_ir < lo_chase and counts["chase"][0] > 40, counts


def test_retransmits_only_until_the_crc_passes() -> None:
    """Blocks that pass on transmission 1 are exactly those HARQ-off passes (same seed);
    the others are resent; channel uses count every transmission."""
    cfg = dict(QPSK_HALF, channel="rayleigh-block")
    off = Link(LinkConfig(**cfg), num_threads=1)
    on = Link(LinkConfig(**cfg, harq={"max_transmissions": 4, "combining": "ir"}),
              num_threads=1)
    payload = np.random.default_rng(1).integers(0, 256, 300 * off.block_payload_bytes,
                                                dtype=np.uint8)
    r_off = off.transmit([payload], 4.0, [9])[0]
    r_on = on.transmit([payload], 4.0, [9])[0]
    assert np.array_equal(r_off.block_ok, r_on.transmissions == 1)
    assert r_off.block_errors > 0 and r_on.block_errors < r_off.block_errors // 2
    assert r_on.block_ok[r_on.transmissions < 4].all()
    assert set(np.unique(r_on.transmissions)) == {1, 2, 3, 4}
    assert r_on.channel_uses == int(r_on.transmissions.sum()) * on.symbols_per_block
    assert r_on.rounds == 4
    assert r_off.channel_uses == r_off.num_blocks * off.symbols_per_block
    assert (r_off.transmissions == 1).all()
    lost = on.transmit([payload], -300.0, [9])[0]  # erasures: every block sent 4 times, lost
    assert (lost.transmissions == 4).all() and lost.block_errors == lost.num_blocks


# Outputs of main before HARQ and scrambling (commit 7198f99): sha256 of every result's
# data, block verdicts and counts; tests/channels/test_harq.py::_digest.
GOLDEN = [
    (dict(modulation="16qam", code_rate=0.5), 6.3, 40, "b90e6d37b7f850d0"),
    (dict(modulation="qpsk", code_rate=1 / 3, channel="rayleigh-block", block_symbols=500),
     1.0, 20, "859555be98f451bb"),
    (dict(modulation="64qam", code_rate=0.75, channel="rayleigh-fast", k=1024), 20.0, 20,
     "2ee747e05d00a780"),
    (dict(modulation="16qam", code_rate=0.5, decoder="sionna", k=1024), 6.0, 6,
     "03912286539829a3"),
]


def _digest(link: Link, esno_db: float, blocks: int) -> str:
    rng = np.random.default_rng(5)
    payloads = [rng.integers(0, 256, blocks * link.block_payload_bytes - 7, dtype=np.uint8),
                rng.integers(0, 256, 33, dtype=np.uint8)]
    h = hashlib.sha256()
    for r in link.transmit(payloads, esno_db, [11, 12]):
        h.update(r.data.tobytes())
        h.update(r.block_ok.tobytes())
        h.update(str((r.bit_errors, r.block_errors, r.channel_uses, r.decoder_iterations,
                      r.undetected_block_errors)).encode())
    return h.hexdigest()[:16]


@pytest.mark.parametrize(("cfg", "esno_db", "blocks", "digest"), GOLDEN)
@pytest.mark.parametrize("harq", [None, {"max_transmissions": 1, "combining": "ir"}])
def test_harq_off_is_bit_identical_to_before(cfg: dict, esno_db: float, blocks: int,
                                             digest: str, harq: dict | None) -> None:
    """With scrambling off (the one intended change), HARQ off or a single transmission
    reproduces the link's results from before HARQ bit for bit."""
    link = Link(LinkConfig(**cfg, harq=harq, scrambling=False), num_threads=1)
    assert _digest(link, esno_db, blocks) == digest


@pytest.mark.slow
@pytest.mark.parametrize("combining", ["chase", "ir"])
def test_sionna_harq_agrees_with_fast(combining: str) -> None:
    """Sionna's LDPC5GDecoder(harq_mode) with stacked RVs vs the fast combiner: same noise,
    overlapping BLER intervals, same transmission counts within a few blocks."""
    res = {}
    for decoder in ("fast", "sionna"):
        link = Link(LinkConfig(modulation="qpsk", code_rate=0.5, k=256, decoder=decoder,
                               harq={"max_transmissions": 3, "combining": combining}),
                    num_threads=1)
        payload = np.random.default_rng(2).integers(0, 256, 60 * link.block_payload_bytes,
                                                    dtype=np.uint8)
        res[decoder] = link.transmit([payload], -3.0, [4])[0]
    f, s = res["fast"], res["sionna"]
    lo_f, hi_f = wilson_interval(int((f.transmissions > 1).sum()), f.num_blocks)
    lo_s, hi_s = wilson_interval(int((s.transmissions > 1).sum()), s.num_blocks)
    assert lo_f <= hi_s and lo_s <= hi_f, (f.transmissions, s.transmissions)
    assert (f.transmissions > 1).sum() > 10  # retransmissions happened
    assert abs(int(f.transmissions.sum()) - int(s.transmissions.sum())) <= 6


def test_harq_with_a_priority_part_reports_both_parts() -> None:
    link = Link(LinkConfig(modulation="16qam", code_rate=0.5, k=1024,
                           priority={"modulation": "qpsk", "code_rate": 1 / 3, "k": 512},
                           harq={"max_transmissions": 3, "combining": "ir"}), num_threads=1)
    assert link.priority_link is not None and link.priority_link.config.harq is not None
    payload = np.random.default_rng(3).integers(0, 256, 1000, dtype=np.uint8)
    r = link.transmit([payload], -300.0, [1], priority_bytes=[200])[0]
    assert r.transmissions.shape == (r.num_blocks,) and (r.transmissions == 3).all()
    assert r.channel_uses == 3 * r.channel_uses_first
    ok = link.transmit([payload], 40.0, [1], priority_bytes=[200])[0]
    assert np.array_equal(ok.data, payload) and ok.rounds == 1
