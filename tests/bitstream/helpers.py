"""Shared builders and checks for the bitstream tests."""

from __future__ import annotations

import numpy as np

from semcomm.bitstream import (
    DecodedPayload,
    FloatBlock,
    PayloadSpec,
    Prior,
    ScalarQuantizer,
    TokenGrid,
)


def zipf_prior(k: int, s: float = 1.1) -> Prior:
    """A skewed 'known distribution' over K symbols: p_k proportional to (k + 1)^-s."""
    p = 1.0 / np.arange(1, k + 1) ** s
    return Prior(p / p.sum())


def random_mask(rng: np.random.Generator, shape: tuple[int, int], kind: str) -> np.ndarray | None:
    """None / i.i.d. / all kept / none kept / clustered (a rectangle) masks."""
    if kind == "none":
        return None
    if kind == "iid":
        return rng.random(shape) < rng.uniform(0.05, 0.95)
    if kind == "all":
        return np.ones(shape, dtype=bool)
    if kind == "empty":
        return np.zeros(shape, dtype=bool)
    m = np.zeros(shape, dtype=bool)
    r0, c0 = rng.integers(0, shape[0]), rng.integers(0, shape[1])
    m[r0:r0 + 1 + shape[0] // 2, c0:c0 + 1 + shape[1] // 2] = True
    return m


def random_grid(rng: np.random.Generator, name: str, shape: tuple[int, int], k: int,
                mask_kind: str) -> TokenGrid:
    prior = zipf_prior(k) if rng.random() < 0.5 else Prior.fit(rng.integers(0, k, 200), k)
    idx = rng.choice(k, size=shape, p=prior.probs / prior.probs.sum())
    mask = random_mask(rng, shape, mask_kind)
    if mask is not None:
        idx = np.where(mask, idx, -1)  # unkept positions may hold anything
    return TokenGrid(name=name, indices=idx, mask=mask, prior=prior)


def random_floats(rng: np.random.Generator, name: str, shape: tuple[int, int], dim: int,
                  bits: int, mask_kind: str) -> FloatBlock:
    q = ScalarQuantizer(-2.0, 2.0, bits)
    values = rng.normal(size=(*shape, dim)).astype(np.float32)
    prior = None
    if rng.random() < 0.5:
        prior = Prior.fit(q.quantize(rng.normal(size=4000)), q.levels)
    mask = random_mask(rng, shape, mask_kind)
    if mask is not None:
        values[~mask] = np.nan  # never sent, never read
    return FloatBlock(name=name, values=values, quantizer=q, mask=mask, prior=prior)


def global_missing(dec: DecodedPayload, spec: PayloadSpec) -> np.ndarray:
    """Concatenate every block's missing map in global position order -> [T] bool."""
    parts = []
    for b in spec.blocks:
        d = dec.grids[b.name] if b.name in dec.grids else dec.floats[b.name]
        parts.append(d.missing.ravel())
    return np.concatenate(parts)


def check_decoded(dec: DecodedPayload, blocks: list, spec: PayloadSpec,
                  expect_missing: np.ndarray) -> None:
    """Missing exactly ``expect_missing`` [T]; everything else exactly what was sent;
    decoded values always in range."""
    got = global_missing(dec, spec)
    assert np.array_equal(got, expect_missing), (
        f"missing positions differ: {np.flatnonzero(got != expect_missing)[:10]}; {dec.errors}")
    for blk in blocks:
        if isinstance(blk, TokenGrid):
            d = dec.grids[blk.name]
            k = blk.prior.num_symbols
            assert d.indices.dtype == np.int64 and d.indices.shape == blk.indices.shape
            assert d.indices.min() >= 0 and d.indices.max() < k
            sent = np.ones(blk.indices.shape, bool) if blk.mask is None else blk.mask
            ok = ~d.missing
            assert np.array_equal(d.mask[ok], sent[ok])
            assert np.array_equal(d.indices[d.valid], blk.indices[d.valid])
            if blk.mask is not None:
                assert not d.mask[d.missing].any()
        else:
            f = dec.floats[blk.name]
            levels = blk.levels()
            sent = np.ones(f.mask.shape, bool) if blk.mask is None else blk.mask
            ok = ~f.missing
            assert np.array_equal(f.mask[ok], sent[ok])
            assert f.levels.min() >= 0 and f.levels.max() < blk.quantizer.levels
            assert np.array_equal(f.levels[f.valid], levels[f.valid])
            assert np.array_equal(f.values[f.valid], blk.quantizer.dequantize(levels[f.valid]))
            assert not f.values[~f.valid].any()


def packet_spans(dec: DecodedPayload) -> list[tuple[int, int]]:
    """Global position range of every packet of an intact decode."""
    spans = [p.positions for p in dec.packets]
    assert all(s is not None for s in spans), dec.errors
    return [s for s in spans if s is not None]
