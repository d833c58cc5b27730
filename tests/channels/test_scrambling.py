"""Scrambling (TS 38.211 7.3.1.1): Sionna equality, padding, LLR sign flips, and the
payload independence it buys; erasures are counted lost."""

from __future__ import annotations

import numpy as np
import pytest

from channels import Link, LinkConfig
from channels.scrambling import Scrambler, c_init, gold_sequence
from channels.sweep import wilson_interval


@pytest.mark.parametrize("value", [0, 1, 32769, 12345, 2**31 - 1])
def test_gold_sequence_equals_sionna(value: int) -> None:
    from sionna.phy.nr.utils import generate_prng_seq

    ours = gold_sequence(4000, value)
    assert np.array_equal(ours, generate_prng_seq(4000, value).astype(np.uint8))
    assert 0.3 < ours.mean() < 0.7  # not vacuous: a pseudo-random 0/1 sequence


@pytest.mark.parametrize(("n_rnti", "n_id"), [(1, 1), (0, 0), (65535, 1023), (4660, 17)])
def test_link_scrambling_equals_sionna_tb5g_scrambler(n_rnti: int, n_id: int) -> None:
    """A payload's blocks, concatenated, are Sionna's TB5GScrambler of the codeword; the
    LLR descrambler is Sionna's soft (sign-flip) mode."""
    import torch
    from sionna.phy.fec.scrambling import TB5GScrambler

    link = Link(LinkConfig(modulation="16qam", code_rate=0.5, k=512, n_rnti=n_rnti, n_id=n_id),
                num_threads=1)
    assert link.scrambler is not None
    assert link.scrambler.c_init == c_init(n_rnti, n_id) == n_rnti * 2**15 + n_id
    bits = np.unpackbits(link.layout.segment(np.arange(300, dtype=np.uint8)), axis=1)
    coded = link.backend.encode(bits)
    blocks = np.arange(coded.shape[0])
    ours = link.scrambler.scramble(coded, blocks)
    ref = TB5GScrambler(n_rnti=n_rnti, n_id=n_id, channel_type="PDSCH", binary=True)
    theirs = ref(torch.tensor(coded.reshape(-1), dtype=torch.float32)).numpy()
    assert np.array_equal(ours.reshape(-1), theirs.astype(np.uint8))
    llr = np.random.default_rng(0).normal(size=coded.shape).astype(np.float32)
    soft = ref(torch.tensor(llr.reshape(-1)), binary=False).numpy().reshape(llr.shape)
    np.testing.assert_array_equal(link.scrambler.descramble_llr(llr.copy(), blocks), soft)


def test_padding_bits_are_scrambled() -> None:
    """Uncoded 64-QAM with k = 1024 pads 2 bits per block to whole symbols: they go on the
    air scrambled (the sequence continues over them)."""
    link = Link(LinkConfig(modulation="64qam", coding="uncoded", k=1024), num_threads=1)
    assert link.scrambler is not None and link.backend.coded_bits == 1026
    coded = link.backend.encode(np.zeros((3, 1024), dtype=np.uint8))
    sent = link.scrambler.scramble(coded, np.arange(3))
    seq = gold_sequence(3 * 1026, c_init(1, 1)).reshape(3, 1026)
    assert np.array_equal(sent, seq) and sent[:, 1024:].any()


def test_scrambler_rejects_wrong_shapes() -> None:
    s = Scrambler(7, 16)
    with pytest.raises(ValueError, match=r"expected \[B, 16\]"):
        s.scramble(np.zeros((2, 15), dtype=np.uint8), np.arange(2))
    with pytest.raises(ValueError, match="c_init"):
        gold_sequence(10, 2**31)


def _x_power(link: Link, payload: np.ndarray) -> float:
    """Mean |x|^2 of the symbols ``transmit`` puts on the air for ``payload``."""
    bits = np.unpackbits(link.layout.segment(payload), axis=1)
    coded = link.backend.encode(bits)
    assert link.scrambler is not None
    x = link.backend.modulate(link.scrambler.scramble(coded, np.arange(coded.shape[0])))
    return float(np.mean(np.abs(x) ** 2))


def _payload_cases(bpb: int, num: int, seed: int) -> dict[str, list[np.ndarray]]:
    """Each case: ``num`` code blocks in all (one long payload, or ``num`` short ones)."""
    rng = np.random.default_rng(seed)
    return {
        "random": [rng.integers(0, 256, num * bpb, dtype=np.uint8)],
        "zeros": [np.zeros(num * bpb, dtype=np.uint8)],
        "0xff": [np.full(num * bpb, 255, dtype=np.uint8)],
        "1 byte": [rng.integers(0, 256, 1, dtype=np.uint8) for _ in range(num)],
        "10% of a block": [rng.integers(0, 256, bpb // 10, dtype=np.uint8) for _ in range(num)],
    }


def _bler_by_case(link: Link, esno_db: float, num: int) -> dict[str, tuple[int, int]]:
    out = {}
    for name, payloads in _payload_cases(link.block_payload_bytes, num, 3).items():
        seeds = [7] if len(payloads) == 1 else list(range(1000, 1000 + num))
        res = link.transmit(payloads, esno_db, seeds)
        out[name] = (sum(r.block_errors for r in res), sum(r.num_blocks for r in res))
    return out


def _check_payload_independence(channel: str, snrs: list[float], num: int) -> None:
    # k = 4096: a payload mostly made of fixed padding is one fixed waveform whose energy
    # deviates from Es by ~1/sqrt(symbols); at k = 1024 a 1-byte payload gets 0.984 Es,
    # which the steep waterfall resolves (docs/channels.md)
    link = Link(LinkConfig(modulation="16qam", code_rate=0.5, k=4096, channel=channel),
                num_threads=1)
    for name, payloads in _payload_cases(link.block_payload_bytes, 200, 4).items():
        # short payloads are one block each: the mean over all their symbols
        power = float(np.mean([_x_power(link, p) for p in payloads]))
        assert abs(power - 1.0) <= 0.02, (name, power)
    for snr in snrs:
        counts = _bler_by_case(link, snr, num)
        lo_r, hi_r = wilson_interval(*counts["random"])
        assert 0.02 < counts["random"][0] / num < 0.98, (snr, counts)  # on the waterfall
        for name, (err, blocks) in counts.items():
            lo, hi = wilson_interval(err, blocks)
            assert lo <= hi_r and lo_r <= hi, (channel, snr, name, counts)


def test_bler_does_not_depend_on_payload_content_awgn_one_snr() -> None:
    """Fast tier of the payload-independence test (the full one is marked slow)."""
    _check_payload_independence("awgn", [6.1], 300)


def test_without_scrambling_content_matters() -> None:
    """The test above can fail: unscrambled all-zero payloads are lost at 6.1 dB."""
    link = Link(LinkConfig(modulation="16qam", code_rate=0.5, k=4096, scrambling=False),
                num_threads=1)
    counts = _bler_by_case(link, 6.1, 100)
    lo_r, hi_r = wilson_interval(*counts["random"])
    lo_z, _ = wilson_interval(*counts["zeros"])
    assert lo_z > hi_r, counts


@pytest.mark.slow
@pytest.mark.parametrize(("channel", "snrs"), [("awgn", [5.9, 6.1, 6.3]),
                                               ("rayleigh-block", [8.0, 12.0, 16.0])])
def test_bler_does_not_depend_on_payload_content(channel: str, snrs: list[float]) -> None:
    """3 waterfall SNRs: random, all-zero, all-0xFF, 1-byte and 10%-of-a-block payloads
    have overlapping BLER Wilson intervals; mean |x|^2 = 1 +- 0.02 in every case."""
    _check_payload_independence(channel, snrs, 600)


@pytest.mark.parametrize("decoder", ["fast", "sionna"])
def test_erased_blocks_are_lost(decoder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """All-zero LLRs decode to the all-zero word, whose CRC24B is valid; the link must
    still count the block lost. Both at Es/N0 -300 dB and with LLRs forced to 0."""
    link = Link(LinkConfig(modulation="16qam", code_rate=0.5, k=512, decoder=decoder),
                num_threads=1)
    assert link.layout.crc_ok(np.zeros((1, 64), dtype=np.uint8))[0]  # why the rule is needed
    payloads = [np.zeros(200, dtype=np.uint8), np.arange(61, dtype=np.uint8)]
    for r in link.transmit(payloads, -300.0, [1, 2]):
        assert r.block_errors == r.num_blocks and not r.block_ok.any()
        assert r.lost_ranges == ((0, r.num_bits // 8),)
    monkeypatch.setattr(link.backend, "demodulate",
                        lambda x, nv: np.zeros((x.shape[0], link.backend.coded_bits),
                                               dtype=np.float32))
    for r in link.transmit(payloads, 30.0, [1, 2]):
        assert r.block_errors == r.num_blocks and r.undetected_block_errors == 0
