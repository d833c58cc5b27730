"""Bit-exact round trips over many shapes, alphabets, masks, float blocks and packet sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semcomm.bitstream import (
    FloatBlock,
    PayloadSpec,
    Prior,
    ScalarQuantizer,
    TokenGrid,
    decode_payload,
    encode_packets,
    encode_payload,
)
from tests.bitstream.helpers import (
    check_decoded,
    packet_spans,
    random_floats,
    random_grid,
    zipf_prior,
)

SHAPES = [(1, 1), (1, 7), (5, 1), (3, 7), (16, 32), (37, 53)]
ALPHABETS = [2, 3, 17, 1024, 16384]
MASKS = ["none", "iid", "all", "empty", "cluster"]
PACKET_BYTES = [None, 48, 96, 509, 2000]


def _random_payload(rng: np.random.Generator, case: int) -> list:
    """Case-driven coverage: every shape, K and mask kind appears, plus random extras."""
    blocks: list = [random_grid(rng, "g0", SHAPES[case % len(SHAPES)],
                                ALPHABETS[case % len(ALPHABETS)], MASKS[case % len(MASKS)])]
    for j in range(int(rng.integers(0, 3))):
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        if rng.random() < 0.5:
            k = ALPHABETS[int(rng.integers(len(ALPHABETS)))]
            blocks.append(random_grid(rng, f"g{j + 1}", shape, k, MASKS[int(rng.integers(5))]))
        else:
            bits = int(rng.choice([1, 4, 8, 12]))
            blocks.append(random_floats(rng, f"f{j}", shape, int(rng.integers(1, 5)), bits,
                                        MASKS[int(rng.integers(5))]))
    return blocks


@pytest.mark.parametrize("packet_bytes", PACKET_BYTES)
def test_round_trip_is_bit_exact(packet_bytes: int | None) -> None:
    rng = np.random.default_rng(1000 + (packet_bytes or 0))
    for case in range(40):
        blocks = _random_payload(rng, case)
        data = encode_payload(blocks, packet_bytes)
        spec = PayloadSpec.of(blocks, packet_bytes)
        dec = decode_payload(data, spec)
        assert dec.ok and not dec.errors, (case, dec.errors)
        assert dec.packets_lost == 0
        check_decoded(dec, blocks, spec, np.zeros(spec.total_positions, bool))
        if packet_bytes is not None:
            assert len(data) % packet_bytes == 0
            assert dec.packets_total == len(data) // packet_bytes
            spans = packet_spans(dec)
            assert spans[0][0] == 0 and spans[-1][1] == spec.total_positions
            assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
            # encode_packets: the same packets, each with the positions it carries.
            packets = encode_packets(blocks, packet_bytes)
            assert b"".join(p for _, _, p in packets) == data
            assert [(a, a + n) for a, n, _ in packets] == spans


def test_large_alphabet_large_grid_both_modes() -> None:
    rng = np.random.default_rng(7)
    k = 16384
    prior = Prior.fit(rng.integers(0, k, 50_000), k)
    grid = TokenGrid(name="x", indices=rng.integers(0, k, (64, 96)), prior=prior,
                     mask=rng.random((64, 96)) < 0.6)
    for pb in (None, 509):
        spec = PayloadSpec.of([grid], pb)
        dec = decode_payload(encode_payload([grid], pb), spec)
        check_decoded(dec, [grid], spec, np.zeros(spec.total_positions, bool))


def test_float_values_match_the_quantizer() -> None:
    rng = np.random.default_rng(3)
    q = ScalarQuantizer(-1.0, 3.0, 6)
    v = rng.uniform(-2, 4, size=(4, 5, 7)).astype(np.float32)  # some outside [lo, hi]
    blk = FloatBlock(name="am", values=v, quantizer=q)
    dec = decode_payload(encode_payload([blk]), PayloadSpec.of([blk]))
    out = dec.floats["am"].values
    inside = (v >= -1) & (v <= 3)
    assert np.all(np.abs(out - v)[inside] <= q.step / 2 + 1e-6)
    assert np.array_equal(out[v < -1], np.full((v < -1).sum(), -1.0, np.float32))
    assert np.allclose(out[v > 3], 3.0)


def test_encoding_is_deterministic_and_accepts_torch() -> None:
    rng = np.random.default_rng(5)
    idx = rng.integers(0, 1024, (16, 32))
    mask = rng.random((16, 32)) < 0.3
    prior = zipf_prior(1024)
    a = encode_payload([TokenGrid(name="x", indices=idx, mask=mask, prior=prior)], 64)
    b = encode_payload([TokenGrid(name="x", indices=torch.from_numpy(idx),  # type: ignore[arg-type]
                                  mask=torch.from_numpy(mask), prior=prior)], 64)  # type: ignore[arg-type]
    assert a == b


def test_prior_mismatch_is_detected_not_garbage() -> None:
    """A receiver holding another prior (foreign spec) gets all positions missing."""
    rng = np.random.default_rng(9)
    grid = TokenGrid(name="x", indices=rng.integers(0, 64, (8, 8)), prior=Prior.uniform(64))
    other = TokenGrid(name="x", indices=grid.indices, prior=zipf_prior(64))
    for pb in (None, 40):
        dec = decode_payload(encode_payload([grid], pb), PayloadSpec.of([other], pb))
        assert dec.grids["x"].missing.all() and not dec.ok


def test_lost_code_block_loses_exactly_its_packet() -> None:
    rng = np.random.default_rng(11)
    grid = random_grid(rng, "x", (32, 64), 1024, "iid")
    pb = 509
    data = encode_payload([grid], pb)
    spec = PayloadSpec.of([grid], pb)
    spans = packet_spans(decode_payload(data, spec))
    assert len(spans) >= 3
    garbled = bytearray(data)
    garbled[pb:2 * pb] = rng.integers(0, 256, pb, dtype=np.uint8).tobytes()  # block 1 garbage
    dec = decode_payload(bytes(garbled), spec, lost=((pb, 2 * pb),))
    expect = np.zeros(spec.total_positions, bool)
    expect[spans[1][0]:spans[1][1]] = True
    check_decoded(dec, [grid], spec, expect)
    assert dec.packets_lost == 1 and "lost by the link" in dec.errors[0]
    # Without the link's flag the packet CRC catches the garbage just the same.
    check_decoded(decode_payload(bytes(garbled), spec), [grid], spec, expect)
