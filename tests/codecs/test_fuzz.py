"""Corrupted or truncated bitstreams never crash or hang a classic decoder.

1000 corruptions per codec on a 32 x 64 image: bit flips, truncations and random
byte spans, each decoded in-process (no decoder needed a subprocess: none crashed or
hung in these runs). The test also checks that it is not vacuous: some corruptions
must be rejected (ok=False) and every result must be a valid image.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from semcomm.codecs.base import RatePoint, ReceivedPayload
from semcomm.codecs.registry import build_codec

from .test_classic import NAMES, scene

CORRUPTIONS = 1000


def corrupt(data: np.ndarray, i: int, rng: np.random.Generator) -> np.ndarray:
    x = data.copy()
    kind = i % 3
    if kind == 0:  # 1..8 bit flips
        pos = rng.integers(0, 8 * x.size, rng.integers(1, 9))
        np.bitwise_xor.at(x, pos // 8, (1 << (pos % 8)).astype(np.uint8))
        return x
    if kind == 1:  # truncation (possibly to nothing)
        return x[: rng.integers(0, x.size)]
    start = int(rng.integers(0, x.size))  # a random span, as a lost code block would be
    stop = min(x.size, start + int(rng.integers(1, 64)))
    x[start:stop] = rng.integers(0, 256, stop - start, dtype=np.uint8)
    return x


@pytest.mark.parametrize("name", NAMES)
def test_thousand_corruptions(name: str) -> None:
    codec = build_codec(name)
    image = scene(32, 64, seed=3)
    payload = codec.encode(image, None, RatePoint(knob=codec._ordered(0.6)))  # type: ignore[attr-defined]
    data = np.frombuffer(payload.data, np.uint8)
    rng = np.random.default_rng(2024)
    failed, worst = 0, 0.0
    for i in range(CORRUPTIONS):
        bad = corrupt(data, i, rng)
        lost = ((0, len(bad)),) if i % 2 else ()
        t0 = time.perf_counter()
        rec = codec.decode(ReceivedPayload(bad.tobytes(), payload.shape, lost))
        worst = max(worst, time.perf_counter() - t0)
        assert rec.image.shape == (32, 64, 3) and rec.image.dtype == np.uint8
        assert rec.ok != bool(rec.error)
        failed += not rec.ok
    assert failed >= CORRUPTIONS // 10, f"{name}: only {failed} corruptions were rejected"
    assert worst < 2.0, f"{name}: one decode took {worst:.2f} s"
