"""Prior learning, checkpoint state, and the scalar quantizer."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from semcomm.bitstream import (
    PayloadSpec,
    Prior,
    ScalarQuantizer,
    TokenGrid,
    decode_payload,
    encode_payload,
)


def test_fit_is_smoothed_frequency() -> None:
    p = Prior.fit(np.array([0, 0, 0, 2]), num_symbols=4, smoothing=0.5)
    assert np.allclose(p.probs, np.array([3.5, 0.5, 1.5, 0.5]) / 6.0)
    assert np.all(p.probs > 0)  # unseen symbols stay codable
    assert Prior.fit(torch.tensor([[1, 1], [1, 0]]), 2).probs[1] > 0.5


def test_state_round_trip_is_bit_exact_through_torch_save() -> None:
    rng = np.random.default_rng(0)
    prior = Prior.fit(rng.integers(0, 16384, 10_000), 16384, smoothing=0.1)
    buf = io.BytesIO()
    torch.save({"prior_x": prior.to_state()}, buf)
    buf.seek(0)
    back = Prior.from_state(torch.load(buf)["prior_x"])
    assert back == prior and back.fingerprint == prior.fingerprint
    # A receiver holding the restored prior decodes what the original prior encoded.
    grid = TokenGrid(name="x", indices=rng.integers(0, 16384, (8, 8)), prior=prior)
    rx = PayloadSpec.of([TokenGrid(name="x", indices=grid.indices, prior=back)])
    dec = decode_payload(encode_payload([grid]), rx)
    assert dec.ok and np.array_equal(dec.grids["x"].indices, grid.indices)


def test_entropy_and_information() -> None:
    u = Prior.uniform(1024)
    assert u.entropy_bits() == pytest.approx(10.0)
    assert u.information_bits(np.arange(7)) == pytest.approx(70.0)


@pytest.mark.parametrize("k", [1, 0, -3, 2**16 + 1])
def test_alphabet_size_outside_range_is_rejected(k: int) -> None:
    with pytest.raises(ValueError, match=r"K=.* outside the allowed range \[2, 65536\]"):
        Prior.uniform(k)
    with pytest.raises(ValueError, match="outside the allowed range"):
        Prior.fit(np.zeros(3, np.int64), k)


def test_bad_priors_are_rejected() -> None:
    with pytest.raises(ValueError, match="smoothing 0 must be"):
        Prior.fit(np.zeros(3, np.int64), 4, smoothing=0)
    with pytest.raises(ValueError, match=r"samples must lie in \[0, 4\), found min 0 max 4"):
        Prior.fit(np.array([0, 4]), 4)
    with pytest.raises(ValueError, match="must be integers"):
        Prior.fit(np.array([0.5]), 4)
    with pytest.raises(ValueError, match="> 0 for every symbol"):
        Prior(np.array([0.5, 0.0, 0.5]))
    with pytest.raises(ValueError, match="1-D table"):
        Prior(np.ones((2, 2)))
    with pytest.raises(ValueError, match="format 7 unknown"):
        Prior.from_state({"format": 7, "num_symbols": 2, "probs": torch.ones(2)})
    with pytest.raises(ValueError, match="says num_symbols=3"):
        Prior.from_state({"format": 1, "num_symbols": 3, "probs": torch.ones(2)})
    with pytest.raises(ValueError, match="keys format, num_symbols, probs"):
        Prior.from_state({"probs": torch.ones(2)})


def test_scalar_quantizer() -> None:
    q = ScalarQuantizer(-1.0, 1.0, 3)
    assert q.levels == 8 and q.step == pytest.approx(2 / 7)
    v = np.linspace(-1.5, 1.5, 101)
    lv = q.quantize(v)
    assert lv.min() == 0 and lv.max() == 7
    inside = np.abs(v) <= 1
    assert np.all(np.abs(q.dequantize(lv) - v)[inside] <= q.step / 2 + 1e-6)
    for bits in (0, 17):
        with pytest.raises(ValueError, match=r"bits=\d+ outside the allowed range \[1, 16\]"):
            ScalarQuantizer(0.0, 1.0, bits)
    with pytest.raises(ValueError, match="lo < hi"):
        ScalarQuantizer(1.0, 1.0, 8)
    with pytest.raises(ValueError, match="must be finite"):
        ScalarQuantizer(0.0, float("inf"), 8)
