"""channels.rng reproduces NumPy's SeedSequence -> PCG64 -> float32 normals bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from channels.rng import entropy_words, standard_normal


@pytest.mark.parametrize(("seed", "key", "count"), [
    (0, (0, 0), 1000),
    (3, (0, 17), 4097),
    (2**40 + 5, (0, 2), 5000),
    (2**62 + 12345, (1, 0), 10),
    (7, (0, 2**33 + 1), 300),
    (123456789, (), 50),
    (1, (0, 4), 600_000),  # ~150 draws in the ziggurat's tail, ~4000 in its wedges
])
def test_normals_match_numpy_bit_for_bit(seed: int, key: tuple[int, ...], count: int) -> None:
    ref = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key)).standard_normal(
        count, dtype=np.float32)
    got = standard_normal(seed, key, count)
    assert np.array_equal(ref.view(np.uint32), got.view(np.uint32))
    if count > 100_000:  # not vacuous: the rare branches were taken
        assert np.sum(np.abs(ref) > 3.6541528853610088) > 20


def test_entropy_matches_seed_sequence_assembly() -> None:
    # seed words little-endian, zero-padded to the pool size (4), then the key's words
    assert entropy_words(2**40 + 5, (0, 2)).tolist() == [5, 256, 0, 0, 0, 2]
    assert entropy_words(0).tolist() == [0]
    with pytest.raises(ValueError, match="must be >= 0"):
        entropy_words(-1)


@pytest.mark.parametrize(("kind", "block_symbols"), [
    ("awgn", None), ("rayleigh-fast", None), ("rayleigh-block", None), ("rayleigh-block", 300)])
def test_channel_draws_depend_on_seed_and_block_only(kind: str, block_symbols: int | None) -> None:
    from channels.channel import FlatChannel

    ch = FlatChannel(kind, 512, block_symbols)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((7, 512)) + 1j * rng.standard_normal((7, 512))).astype(np.complex64)
    whole = ch.apply(x, 0.3, 2**33 + 9, 4)
    parts = [ch.apply(x[a:b], 0.3, 2**33 + 9, 4 + a) for a, b in ((0, 3), (3, 4), (4, 7))]
    for i in range(2):  # x_eq and noise_var, bit for bit, however the blocks are split
        joined = np.concatenate([p[i] for p in parts])
        assert np.array_equal(whole[i].view(np.uint32), joined.view(np.uint32))
    other = ch.apply(x, 0.3, 2**33 + 10, 4)
    assert not np.array_equal(whole[0], other[0])  # another seed, other noise
