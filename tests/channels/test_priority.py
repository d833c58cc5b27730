"""Unequal error protection: a payload's priority bytes on their own modulation and code."""

from __future__ import annotations

import numpy as np
import pytest

from channels import Link, LinkConfig
from channels.link import priority_seed

MAIN = {"modulation": "16qam", "code_rate": 0.5, "k": 1024}
PRIO = {"modulation": "qpsk", "code_rate": 1 / 3, "k": 1024}


@pytest.fixture(scope="module")
def uep() -> Link:
    return Link(LinkConfig(**MAIN, priority=PRIO))


def _payload(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8)


def test_priority_config_inherits_all_but_the_code() -> None:
    cfg = LinkConfig(**MAIN, channel="rayleigh-block", bp_iterations=30, priority=PRIO)
    p = cfg.priority
    assert p is not None and p.priority is None
    assert (p.modulation, p.k, p.n) == ("qpsk", 1024, 3072)
    assert (p.channel, p.bp_iterations, p.decoder) == ("rayleigh-block", 30, "fast")
    assert cfg.describe() == "16qam-ldpc0.5-rayleigh-block+prio-qpsk-ldpc0.333"
    assert LinkConfig.from_dict(cfg.to_dict()) == cfg
    assert LinkConfig(**MAIN).describe() == "16qam-ldpc0.5-awgn"


@pytest.mark.parametrize("priority, message", [
    ({"channel": "awgn"}, "inherited from the main link"),
    ({"modulaton": "qpsk"}, "not a link setting"),
    ({"code_rate": 0.01}, "priority: code rate 0.01"),
    ({"modulation": "8psk"}, "priority: modulation '8psk'"),
    ("qpsk", "priority must be a mapping"),
])
def test_bad_priority_config_names_the_key(priority: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LinkConfig(**MAIN, priority=priority)


def test_without_priority_bytes_the_main_link_alone(uep: Link) -> None:
    """No marked bytes (None, zeros): bit-identical to the link without a priority."""
    plain = Link(LinkConfig(**MAIN))
    sent = [_payload(900, 1), _payload(40, 2)]
    ref = plain.transmit(sent, 6.0, [3, 4])
    for kwargs in ({}, {"priority_bytes": [0, 0]}):
        out = uep.transmit(sent, 6.0, [3, 4], **kwargs)
        for a, b in zip(out, ref, strict=True):
            assert np.array_equal(a.data, b.data) and a.lost_ranges == b.lost_ranges
            assert (a.block_errors, a.channel_uses) == (b.block_errors, b.channel_uses)


def test_priority_bytes_survive_where_the_main_code_fails(uep: Link) -> None:
    """Es/N0 = 2 dB: below 16-QAM rate 1/2's threshold (~5 dB at k = 1024), above QPSK
    rate 1/3's (~-1 dB). The 250 priority bytes (2 blocks) arrive, the other 750 bytes
    (6 blocks) are lost; channel uses count both codes."""
    p = _payload(1000)
    r = uep.transmit([p], 2.0, [7], priority_bytes=[250])[0]
    assert np.array_equal(r.data[:250], p[:250])
    assert r.lost_ranges == ((250, 1000),)
    assert r.num_blocks == 8 and r.block_errors == 6
    assert list(r.block_ok) == [True, True] + [False] * 6
    assert r.channel_uses == 2 * 1536 + 6 * 512
    assert r.num_bits == 8000
    high = uep.transmit([p], 30.0, [7], priority_bytes=[250])[0]
    assert np.array_equal(high.data, p) and high.lost_ranges == ()


def test_split_parts_are_the_two_links_own_results(uep: Link) -> None:
    """The head is the priority link's transmission under the derived seed, the tail the
    main link's under the payload's seed: same seed, same numbers."""
    p = _payload(700, 3)
    r = uep.transmit([p], 4.0, [11], priority_bytes=[300])[0]
    assert uep.priority_link is not None
    head = uep.priority_link.transmit([p[:300]], 4.0, [priority_seed(11)])[0]
    tail = Link(LinkConfig(**MAIN)).transmit([p[300:]], 4.0, [11])[0]
    assert np.array_equal(r.data, np.concatenate([head.data, tail.data]))
    assert r.bit_errors == head.bit_errors + tail.bit_errors
    assert r.channel_uses == head.channel_uses + tail.channel_uses
    again = uep.transmit([p], 4.0, [11], priority_bytes=[300])[0]
    assert np.array_equal(again.data, r.data) and again.lost_ranges == r.lost_ranges
    assert priority_seed(11) != 11 and priority_seed(11) == priority_seed(11)


def test_whole_payload_marked_goes_on_the_priority_code(uep: Link) -> None:
    p = _payload(200)
    r = uep.transmit([p], 1.0, [0], priority_bytes=[10_000])[0]
    assert r.num_blocks == 2 and r.channel_uses == 2 * 1536
    assert np.array_equal(r.data, p)


@pytest.mark.parametrize("priority_bytes, message", [
    ([-1], "priority_bytes\\[0\\] -1"),
    ([1, 2], "one per payload"),
    (3, "one per payload"),
])
def test_bad_priority_bytes(uep: Link, priority_bytes: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        uep.transmit([_payload(10)], 5.0, [0], priority_bytes=priority_bytes)  # type: ignore[arg-type]
