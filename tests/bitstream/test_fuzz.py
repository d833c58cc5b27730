"""Fuzz: 1000 random corruptions per mode; never an exception, hang or out-of-range value,
and the missing positions are exactly those of the packets that were hit.

A packet counts as hit when any of its bytes differs from what was sent (or is absent),
or when a lost range the link reported touches it. In single-packet mode any hit loses
every position. The CRC-32 misses a random corruption with probability 2**-32 per packet,
so over ~10^4 corrupted packets an undetected one is a ~1e-6 event, not a tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

from semcomm.bitstream import PayloadSpec, Prior, TokenGrid, decode_payload, encode_payload
from tests.bitstream.helpers import check_decoded, packet_spans, random_floats, random_grid

N_TRIALS = 1000
KINDS = ("bitflip", "burst", "truncate", "random", "lost", "lost_intact", "insert", "delete",
         "swap", "append", "foreign", "empty")


def _payload(rng: np.random.Generator) -> list:
    return [random_grid(rng, "s", (8, 16), 1024, "iid"),
            random_grid(rng, "x", (6, 10), 16384, "none"),
            random_floats(rng, "am", (8, 16), 3, 6, "iid")]


def _corrupt(rng: np.random.Generator, data: bytes, kind: str, pb: int,
             foreign: bytes) -> tuple[bytes, list[tuple[int, int]]]:
    """Apply one corruption -> (received bytes, lost ranges reported by the 'link')."""
    buf, n, lost = bytearray(data), len(data), []
    if kind == "bitflip":
        for pos in rng.integers(0, 8 * n, int(rng.integers(1, 9))):
            buf[pos // 8] ^= 1 << (pos % 8)
    elif kind == "burst":
        a = int(rng.integers(0, n))
        b = min(n, a + int(rng.integers(1, 40)))
        buf[a:b] = rng.integers(0, 256, b - a, dtype=np.uint8).tobytes()
    elif kind == "truncate":
        del buf[int(rng.integers(0, n)):]
    elif kind == "random":
        buf = bytearray(rng.integers(0, 256, int(rng.integers(1, 2 * n)), dtype=np.uint8).tobytes())
        buf[::pb] = bytes([data[0]]) * len(buf[::pb])  # pass the version-byte check
    elif kind in ("lost", "lost_intact"):
        for _ in range(int(rng.integers(1, 4))):
            a = int(rng.integers(0, n))
            b = min(n, a + int(rng.integers(1, 2 * pb)))
            lost.append((a, b))
            if kind == "lost":  # the link's failed blocks carry garbage, not zeros
                buf[a:b] = rng.integers(0, 256, b - a, dtype=np.uint8).tobytes()
    elif kind == "insert":
        buf.insert(int(rng.integers(0, n + 1)), int(rng.integers(0, 256)))
    elif kind == "delete":
        del buf[int(rng.integers(0, n))]
    elif kind == "swap" and n >= 2 * pb:
        i, j = rng.choice(n // pb, size=2, replace=False)
        buf[i * pb:(i + 1) * pb], buf[j * pb:(j + 1) * pb] = (data[j * pb:(j + 1) * pb],
                                                              data[i * pb:(i + 1) * pb])
    elif kind == "append":
        buf += rng.integers(0, 256, int(rng.integers(1, pb + 5)), dtype=np.uint8).tobytes()
    elif kind == "foreign":
        buf = bytearray(foreign)
    elif kind == "empty":
        buf = bytearray()
    return bytes(buf), lost


def _expected_missing(data: bytes, got: bytes, lost: list[tuple[int, int]],
                      spans: list[tuple[int, int]], pb: int | None, total: int) -> np.ndarray:
    size = len(data) if pb is None else pb
    missing = np.zeros(total, bool)
    for p, (a, b) in enumerate(spans):
        lo, hi = p * size, (p + 1) * size
        if got[lo:hi] != data[lo:hi] or any(s < hi and e > lo for s, e in lost):
            missing[a:b] = True
    if pb is None and got != data:
        missing[:] = True  # appended bytes also break the single packet's CRC
    return missing


@pytest.mark.timeout(120)
@pytest.mark.parametrize("pb", [None, 40])
def test_fuzz_corruptions(pb: int | None) -> None:
    rng = np.random.default_rng(2024 if pb is None else 2025)
    blocks = _payload(rng)
    spec = PayloadSpec.of(blocks, pb)
    data = encode_payload(blocks, pb)
    clean = decode_payload(data, spec)
    spans = packet_spans(clean)
    assert pb is None or len(spans) >= 8, "payload too small to exercise packet losses"
    alien = TokenGrid(name="s", indices=blocks[0].indices, mask=blocks[0].mask,
                      prior=Prior.uniform(1024))
    foreign = encode_payload([alien, *blocks[1:]], pb)  # same layout, another prior
    seen = dict.fromkeys(KINDS, 0)
    any_partial = False
    for _ in range(N_TRIALS):
        kind = KINDS[int(rng.integers(len(KINDS)))]
        got, lost = _corrupt(rng, data, kind, pb or len(data), foreign)
        dec = decode_payload(got, spec, lost=lost)
        expect = _expected_missing(data, got, lost, spans, pb, spec.total_positions)
        check_decoded(dec, blocks, spec, expect)
        assert dec.ok == (got == data and not expect.any()), (kind, dec.errors)
        assert bool(dec.errors) == (not dec.ok)
        seen[kind] += 1
        any_partial |= bool(expect.any() and not expect.all())
    assert min(seen.values()) > 0.5 * N_TRIALS / len(KINDS)  # every kind exercised
    assert pb is None or any_partial, "no trial lost only part of the payload"
