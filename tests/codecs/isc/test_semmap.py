"""Map coder: majority vote, prediction symbols round trip, label conversion."""

from __future__ import annotations

import numpy as np
import pytest

from semcomm.codecs.isc.semmap import (
    MAP_CLASSES,
    MAP_SYMBOLS,
    SYM_N,
    SYM_W,
    majority_downsample,
    map_from_symbols,
    map_symbols,
    to_classes,
    to_labels,
    upsample_map,
)


def test_majority_vote_and_ties() -> None:
    c = np.zeros((4, 8), np.uint8)
    c[:2, :2] = 3          # block (0, 0): 4 x 3 of 16 -> 0 wins
    c[:, 4:8] = 5
    c[0:2, 4:6] = 7        # block (0, 1): 12 x 5, 4 x 7 -> 5
    out = majority_downsample(c, 4)
    assert out.tolist() == [[0, 5]]
    tie = np.array([[1, 2], [2, 1]], np.uint8)
    assert majority_downsample(tie, 2).tolist() == [[1]]  # ties go to the smaller class
    assert np.array_equal(majority_downsample(c, 1), c)
    with pytest.raises(ValueError, match="multiple of map_factor 3"):
        majority_downsample(c, 3)


@pytest.mark.parametrize("kind", ["random", "regions"])
def test_symbols_round_trip(kind: str) -> None:
    rng = np.random.default_rng(1)
    if kind == "random":
        m = rng.integers(0, MAP_CLASSES, (9, 13)).astype(np.uint8)
    else:
        m = np.zeros((16, 32), np.uint8)
        m[:8] = 10
        m[5:12, 3:20] = 13
        m[:, 25:] = 19
    u = map_symbols(m)
    assert u.min() >= 0 and u.max() < MAP_SYMBOLS
    assert np.array_equal(map_from_symbols(u), m)
    if kind == "regions":  # piecewise-constant maps are mostly "same as W / N"
        assert np.isin(u, (SYM_W, SYM_N)).mean() > 0.9


def test_labels_and_upsampling() -> None:
    lab = np.array([[0, 18], [255, 7]], np.uint8)
    c = to_classes(lab)
    assert c.tolist() == [[0, 18], [19, 7]]
    assert np.array_equal(to_labels(c), lab)
    assert upsample_map(c, 2).shape == (4, 4)
    with pytest.raises(ValueError, match=r"allowed \[0, 19\) and 255"):
        to_classes(np.array([[0, 19]], np.uint8))
    with pytest.raises(ValueError, match="map symbols"):
        map_from_symbols(np.array([[22]]))
