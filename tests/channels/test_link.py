"""Link.transmit: round trips, determinism, lost byte ranges, bandwidth accounting, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from channels import Link, LinkConfig, LinkResult


@pytest.fixture(scope="module")
def link() -> Link:
    return Link(LinkConfig(modulation="16qam", code_rate=0.5))


def _payloads(lengths: list[int], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, n, dtype=np.uint8) for n in lengths]


def test_noiseless_round_trip_is_bit_exact_for_any_length(link: Link) -> None:
    """Very high SNR: every length from 1 byte to 1e5 bytes comes back bit-exact."""
    bpb = link.block_payload_bytes
    rng = np.random.default_rng(1)
    lengths = [1, 2, bpb - 1, bpb, bpb + 1, 2 * bpb + 7, 100_000]
    lengths += [int(v) for v in rng.integers(1, 100_001, 5)]
    sent = _payloads(lengths)
    results = link.transmit(sent, esno_db=40.0, seeds=list(range(len(sent))))
    for p, r in zip(sent, results, strict=True):
        assert r.data.dtype == np.uint8 and np.array_equal(r.data, p)
        assert (r.bit_errors, r.block_errors, r.undetected_block_errors) == (0, 0, 0)
        assert r.lost_ranges == () and r.intact and r.block_ok.all()
        assert r.num_bits == 8 * p.size
        assert r.num_blocks == -(-p.size // bpb) == link.num_blocks(p.size)
        assert r.channel_uses == r.num_blocks * 2048 == link.channel_uses(p.size)


@pytest.mark.parametrize("channel", ["rayleigh-fast", "rayleigh-block"])
@pytest.mark.parametrize("modulation", ["qpsk", "64qam", "256qam"])
def test_round_trip_other_modulations_and_channels(modulation: str, channel: str) -> None:
    link = Link(LinkConfig(modulation=modulation, code_rate=0.5, k=1024, channel=channel))
    sent = _payloads([1, 125, 126, 3000])
    for r, p in zip(link.transmit(sent, 60.0, [0, 1, 2, 3]), sent, strict=True):
        assert np.array_equal(r.data, p) and r.block_errors == 0


def test_sionna_path_round_trip_and_same_symbols_as_fast() -> None:
    cfg = dict(modulation="16qam", k=512, n=1024)
    fast = Link(LinkConfig(**cfg))
    ref = Link(LinkConfig(**cfg, decoder="sionna", cn_update="boxplus-phi",
                          cn_schedule="flooding"))
    sent = _payloads([1, 61, 62, 200])
    for r, p in zip(ref.transmit(sent, 30.0, [5, 6, 7, 8]), sent, strict=True):
        assert np.array_equal(r.data, p) and r.block_errors == 0
    bits = np.unpackbits(ref.layout.segment(sent[3]), axis=1)
    x_fast = fast.backend.modulate(fast.backend.encode(bits))
    x_ref = ref.backend.modulate(ref.backend.encode(bits))
    np.testing.assert_allclose(x_fast, x_ref, atol=1e-6)  # same codewords, same symbols
    y, nv = fast.channel.apply(x_fast, 0.3, seed=1, first_block=0)
    np.testing.assert_allclose(fast.backend.demodulate(y, nv), ref.backend.demodulate(y, nv),
                               rtol=1e-4, atol=1e-3)


def test_same_seed_same_result_regardless_of_batching() -> None:
    cfg = LinkConfig(modulation="16qam", k=512, n=1024, channel="rayleigh-block")
    sent = _payloads([700, 3, 1500], seed=2)
    a = Link(cfg).transmit(sent, 7.0, [11, 12, 13])
    b = Link(cfg, chunk_blocks=3).transmit(sent, [7.0, 7.0, 7.0], [11, 12, 13])
    c = Link(cfg).transmit(sent[::-1], 7.0, [13, 12, 11])[::-1]  # order of payloads
    for ra, rb, rc in zip(a, b, c, strict=True):
        for other in (rb, rc):
            assert np.array_equal(ra.data, other.data)
            assert ra.lost_ranges == other.lost_ranges
            assert (ra.bit_errors, ra.block_errors) == (other.bit_errors, other.block_errors)
    d = Link(cfg).transmit(sent, 7.0, [21, 22, 23])
    assert any(not np.array_equal(ra.block_ok, rd.block_ok) or ra.bit_errors != rd.bit_errors
               for ra, rd in zip(a, d, strict=True))  # other seeds, other realisations
    assert sum(r.block_errors for r in a) > 0  # not vacuous: some blocks failed


def test_lost_ranges_are_exactly_the_failed_blocks() -> None:
    """Block fading at a mid SNR: some blocks fail; their byte ranges, and only those."""
    link = Link(LinkConfig(modulation="16qam", k=512, n=1024, channel="rayleigh-block"))
    bpb = link.block_payload_bytes  # 61
    size = 40 * bpb + 17  # last block partial
    sent = _payloads([size], seed=3)[0]
    r = link.transmit([sent], 9.0, [4])[0]
    failed = ~r.block_ok
    assert 3 <= failed.sum() <= 38 and r.block_errors == failed.sum()
    assert r.undetected_block_errors == 0
    lost = np.zeros(size, dtype=bool)
    for start, stop in r.lost_ranges:
        assert 0 <= start < stop <= size and lost[start:stop].sum() == 0
        lost[start:stop] = True
    assert np.array_equal(lost, failed[np.arange(size) // bpb])  # byte j is in block j // bpb
    starts = [s for s, _ in r.lost_ranges]
    stops = [e for _, e in r.lost_ranges]
    assert all(s % bpb == 0 for s in starts) and all(e % bpb == 0 or e == size for e in stops)
    assert all(stops[i] < starts[i + 1] for i in range(len(starts) - 1))  # merged
    assert np.array_equal(r.data[~lost], sent[~lost])  # intact blocks are exact
    assert r.bit_errors == int(np.unpackbits(r.data ^ sent).sum()) > 0


def test_bandwidth_accounting(link: Link) -> None:
    assert link.block_payload_bytes == 509 and link.symbols_per_block == 2048
    assert link.channel_uses(0) == 0
    assert link.channel_uses(1) == link.channel_uses(509) == 2048
    assert link.channel_uses(510) == 4096
    for budget in (0, 2047, 2048, 5000, 10**6):
        best = link.max_payload_bytes(budget)
        assert link.channel_uses(best) <= budget
        assert link.channel_uses(best + 1) > budget
    with pytest.raises(ValueError, match="channel_uses -1 must be a non-negative int"):
        link.max_payload_bytes(-1)
    uncoded = Link(LinkConfig(modulation="64qam", coding="uncoded", k=1000 * 8))
    assert uncoded.symbols_per_block == -(-8000 // 6)


@pytest.mark.parametrize(
    ("payloads", "esno", "seeds", "message"),
    [
        ([np.zeros(4, np.float32)], 5.0, [0], "payload 0 has dtype float32"),
        ([np.zeros(4, np.int16)], 5.0, [0], "expected a 1-D uint8 array"),
        ([np.zeros((2, 2), np.uint8)], 5.0, [0], r"shape \(2, 2\)"),
        ([np.zeros(0, np.uint8)], 5.0, [0], "payload 0 is empty"),
        ([[1, 2, 3]], 5.0, [0], "payload 0 is a list"),
        ([np.zeros(4, np.uint8)], float("nan"), [0], "esno_db nan is not finite"),
        ([np.zeros(4, np.uint8)], float("inf"), [0], "is not finite"),
        ([np.zeros(4, np.uint8)], "high", [0], "esno_db 'high' is not a number"),
        ([np.zeros(4, np.uint8)] * 2, 5.0, [0], "got 1 seeds for 2 payloads"),
        ([np.zeros(4, np.uint8)], 5.0, [-1], "seed 0 -1 must be a non-negative int"),
        ([np.zeros(4, np.uint8)], 5.0, 3, "seeds must be a sequence"),
        ([np.zeros(4, np.uint8)] * 2, [5.0], [0, 1], "got 1 esno_db values for 2 payloads"),
    ],
)
def test_bad_input_raises_value_error(link: Link, payloads: list, esno: object, seeds: object,
                                      message: str) -> None:
    with pytest.raises(ValueError, match=message):
        link.transmit(payloads, esno, seeds)  # type: ignore[arg-type]


def test_bytes_payloads_and_result_type(link: Link) -> None:
    r = link.transmit([b"hello link"], 30.0, [0])[0]
    assert isinstance(r, LinkResult) and bytes(r.data) == b"hello link" and r.ber == 0.0
    assert link.transmit([], 30.0, []) == []


def test_threads_do_not_change_results() -> None:
    cfg = LinkConfig(modulation="qpsk", k=256, n=512, channel="rayleigh-fast")
    sent = _payloads([29 * 40, 5, 29 * 3 + 1], seed=4)
    one = Link(cfg, num_threads=1).transmit(sent, 2.0, [1, 2, 3])
    many = Link(cfg, num_threads=3, chunk_blocks=7).transmit(sent, 2.0, [1, 2, 3])
    for a, b in zip(one, many, strict=True):
        assert np.array_equal(a.data, b.data) and np.array_equal(a.block_ok, b.block_ok)
        assert a.decoder_iterations == b.decoder_iterations
    assert sum(r.block_errors for r in one) > 0
    with pytest.raises(ValueError, match="num_threads 0"):
        Link(cfg, num_threads=0)


def test_set_num_threads_after_use_and_on_the_priority_link() -> None:
    # A process worker turns a link down to one thread; a started pool is shut down.
    cfg = LinkConfig(modulation="qpsk", k=256, n=512, channel="rayleigh-fast",
                     priority={"modulation": "qpsk", "code_rate": 0.333, "k": 256})
    sent = _payloads([29 * 40, 29 * 3 + 1], seed=5)
    link = Link(cfg, num_threads=3, chunk_blocks=7)
    many = link.transmit(sent, 2.0, [1, 2], [29, 40])
    assert link._pool is not None
    link.set_num_threads(1)
    assert link.num_threads == 1 and link._pool is None
    assert link.priority_link is not None and link.priority_link.num_threads == 1
    one = link.transmit(sent, 2.0, [1, 2], [29, 40])
    for a, b in zip(one, many, strict=True):
        assert np.array_equal(a.data, b.data) and np.array_equal(a.block_ok, b.block_ok)
    with pytest.raises(ValueError, match="num_threads 0"):
        link.set_num_threads(0)
