"""Bad inputs raise ValueError naming the value and what is allowed."""

from __future__ import annotations

import numpy as np
import pytest

from semcomm.bitstream import (
    FloatBlock,
    PayloadSpec,
    Prior,
    ScalarQuantizer,
    TokenGrid,
    decode_payload,
    encode_payload,
)

PRIOR = Prior.uniform(1024)
Q8 = ScalarQuantizer(-1.0, 1.0, 8)


def test_indices_out_of_range_at_kept_positions() -> None:
    idx = np.zeros((4, 4), np.int64)
    idx[1, 2] = 1024
    with pytest.raises(ValueError, match=r"grid 'x' must lie in \[0, 1024\).*max 1024"):
        TokenGrid(name="x", indices=idx, prior=PRIOR)
    idx[1, 2] = -1
    with pytest.raises(ValueError, match=r"min -1"):
        TokenGrid(name="x", indices=idx, prior=PRIOR)
    mask = np.ones((4, 4), bool)
    mask[1, 2] = False  # an unkept position may hold anything
    TokenGrid(name="x", indices=idx, prior=PRIOR, mask=mask)


def test_mask_and_indices_must_agree() -> None:
    with pytest.raises(ValueError, match=r"mask shape \(4, 5\) of block 'x' differs .* \(4, 4\)"):
        TokenGrid(name="x", indices=np.zeros((4, 4), np.int64), prior=PRIOR,
                  mask=np.ones((4, 5), bool))
    with pytest.raises(ValueError, match="must be bool"):
        TokenGrid(name="x", indices=np.zeros((4, 4), np.int64), prior=PRIOR,
                  mask=np.ones((4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"integer \[H, W\] array"):
        TokenGrid(name="x", indices=np.zeros((4, 4)), prior=PRIOR)
    with pytest.raises(ValueError, match=r"integer \[H, W\] array"):
        TokenGrid(name="x", indices=np.zeros(4, np.int64), prior=PRIOR)
    with pytest.raises(ValueError, match="H, W >= 1"):
        TokenGrid(name="x", indices=np.zeros((0, 4), np.int64), prior=PRIOR)


def test_float_block_validation() -> None:
    v = np.zeros((2, 3, 4), np.float32)
    v[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf at kept positions"):
        FloatBlock(name="am", values=v, quantizer=Q8)
    mask = np.ones((2, 3), bool)
    mask[0, 0] = False
    FloatBlock(name="am", values=v, quantizer=Q8, mask=mask)  # unsent NaN is fine
    with pytest.raises(ValueError, match=r"float \[H, W, D\] array"):
        FloatBlock(name="am", values=np.zeros((2, 3)), quantizer=Q8)
    with pytest.raises(ValueError, match="has K=1024 symbols, the 8-bit quantizer needs 256"):
        FloatBlock(name="am", values=np.zeros((2, 3, 1)), quantizer=Q8, prior=PRIOR)


def test_payload_level_errors() -> None:
    g = TokenGrid(name="x", indices=np.zeros((4, 4), np.int64), prior=PRIOR)
    with pytest.raises(ValueError, match=r"names must be unique, repeated: \['x'\]"):
        encode_payload([g, g])
    with pytest.raises(ValueError, match="at least one block"):
        encode_payload([])
    with pytest.raises(ValueError, match=r"packet_bytes=8 must be an int >= 11 \(a 7-byte"):
        encode_payload([g], packet_bytes=8)
    with pytest.raises(ValueError, match="non-empty str"):
        TokenGrid(name="", indices=np.zeros((4, 4), np.int64), prior=PRIOR)
    with pytest.raises(ValueError, match="must be TokenGrid or FloatBlock"):
        encode_payload([np.zeros((4, 4))])  # type: ignore[list-item]


def test_position_larger_than_a_packet_is_a_clear_error() -> None:
    big = FloatBlock(name="am", values=np.random.default_rng(0).normal(size=(2, 2, 256)),
                     quantizer=Q8)
    with pytest.raises(ValueError, match=r"position 0 \(block 'am', row 0, col 0\) codes to "
                                         r"\d+ bytes, more than the 57 bytes a 64-byte packet"):
        encode_payload([big], packet_bytes=64)
    assert len(encode_payload([big], packet_bytes=300)) % 300 == 0


def test_bad_lost_ranges_are_caller_errors_but_bad_bytes_are_not() -> None:
    g = TokenGrid(name="x", indices=np.zeros((4, 4), np.int64), prior=PRIOR)
    spec = PayloadSpec.of([g])
    with pytest.raises(ValueError, match=r"lost byte range \(5, 2\)"):
        decode_payload(encode_payload([g]), spec, lost=((5, 2),))
    for junk in (b"", b"\x00", b"\xb2", bytes(range(256)) * 3):
        dec = decode_payload(junk, spec)
        assert not dec.ok and dec.grids["x"].missing.all() and dec.errors
