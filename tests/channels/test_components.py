"""Each building block against Sionna (the reference) or a first-principles check."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from channels.channel import FlatChannel
from channels.ldpc import FastLdpcDecoder, FastLdpcEncoder, build_code, lifted_pcm, sionna_encoder
from channels.modulation import QamModem, qam_points
from channels.segmentation import BlockLayout, crc24b

CODES = [(4096, 8192, 4), (100 * 8, 2400, 2), (1000, 3000, 6), (8448, 8896, 8), (3824, 12000, 4),
         (504, 2496, 2), (32, 64, 2), (2048, 2720, 8)]


@pytest.mark.parametrize(("k", "n", "m"), CODES)
def test_code_and_encoder_match_sionna(k: int, n: int, m: int) -> None:
    """Base graph, Z, interleaver and the codewords themselves are Sionna's, bit for bit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Sionna warns for rates above 948/1024
        ref = sionna_encoder(k, n, m)
    code = build_code(k, n, m)
    assert (code.z, code.base_graph, code.k_ldpc, code.n_ldpc) == \
        (ref.z, ref._bg, ref.k_ldpc, ref.n_ldpc)
    assert np.array_equal(code.out_int, ref.out_int.numpy())
    assert (lifted_pcm(code) != ref.pcm.astype(np.uint8)).nnz == 0
    u = np.random.default_rng(k).integers(0, 2, (16, k), dtype=np.uint8)
    c = FastLdpcEncoder(code)(u)
    assert np.array_equal(c, ref(torch.tensor(u, dtype=torch.float32)).numpy().astype(np.uint8))


def test_full_codeword_satisfies_parity_checks() -> None:
    """Encode with no puncturing visible: rebuild the mother codeword and check H c = 0."""
    code = build_code(1024, 3072, 2)  # BG2
    u = np.random.default_rng(1).integers(0, 2, (4, 1024), dtype=np.uint8)
    c = FastLdpcEncoder(code)(u)
    h = lifted_pcm(code)
    z = code.z
    for row in range(4):
        rm = np.empty(code.n, dtype=np.uint8)
        rm[code.out_int] = c[row]  # undo interleaving
        mother = np.zeros(code.n_ldpc, dtype=np.uint8)
        mother[:1024] = u[row]
        tx = np.concatenate([np.arange(2 * z, 1024), np.arange(code.k_ldpc, code.n_ldpc)])
        mother[tx[: code.n]] = rm
        kept = code.num_layers * z  # rows whose parity bits are all transmitted or inert
        syndrome = (h[: 4 * z] @ mother) % 2
        assert not syndrome.any()
        assert np.array_equal(mother[2 * z: 1024], u[row, 2 * z:])
        assert kept >= 4 * z


def test_fast_decoder_is_sionnas_layered_offset_minsum() -> None:
    """Same LLRs into both decoders: the same blocks succeed (identical algorithm)."""
    from sionna.phy.fec.ldpc import LDPC5GDecoder

    k, n, m = 256, 512, 2
    code = build_code(k, n, m)
    u = np.random.default_rng(2).integers(0, 2, (48, k), dtype=np.uint8)
    c = FastLdpcEncoder(code)(u)
    sigma = 0.92  # BPSK-equivalent LLRs in the waterfall of this short code
    y = 1.0 - 2.0 * c + sigma * np.random.default_rng(3).standard_normal(c.shape)
    llr = (-2.0 * y / sigma**2).astype(np.float32)  # logits log p(1)/p(0)
    u_fast, iters = FastLdpcDecoder(code, 20)(llr)
    ref = LDPC5GDecoder(sionna_encoder(k, n, m), num_iter=20, cn_update="offset-minsum",
                        cn_schedule="layered")
    u_ref = ref(torch.tensor(llr)).numpy().astype(np.uint8)
    ok_fast = np.all(u_fast == u, axis=1)
    ok_ref = np.all(u_ref == u, axis=1)
    assert 0.1 < ok_ref.mean() < 0.95  # waterfall: both outcomes occur
    assert np.array_equal(ok_fast, ok_ref)
    assert np.array_equal(u_fast[ok_fast], u_ref[ok_fast])
    assert iters[ok_fast].mean() < 15 and np.all(iters[~ok_fast] == 20)  # early stop on success


def test_crc24b_matches_sionna_and_detects_bursts() -> None:
    from sionna.phy.fec.crc import CRCEncoder

    data = np.random.default_rng(4).integers(0, 256, (8, 61), dtype=np.uint8)
    bits = np.unpackbits(data, axis=1)
    ref = CRCEncoder("CRC24B")(torch.tensor(bits, dtype=torch.float32)).numpy()[:, -24:]
    crc = crc24b(data)
    ours = ((crc[:, None] >> np.arange(23, -1, -1)) & 1).astype(np.float32)
    assert np.array_equal(ours, ref)
    layout = BlockLayout(8 * 64)
    blocks = layout.segment(data.reshape(-1)[: 61 * 8])
    assert layout.crc_ok(blocks).all()
    rng = np.random.default_rng(5)
    for _ in range(200):  # every burst of <= 24 bits is detected (cyclic code property)
        b = blocks[0].copy()
        bitsb = np.unpackbits(b)
        start, length = rng.integers(0, bitsb.size - 24), rng.integers(1, 25)
        pattern = rng.integers(0, 2, length)
        pattern[0] = pattern[-1] = 1
        bitsb[start: start + length] ^= pattern.astype(np.uint8)
        assert not layout.crc_ok(np.packbits(bitsb)[None])[0]


def test_segmentation_layout_and_lost_ranges() -> None:
    layout = BlockLayout(8 * 13)  # 10 payload bytes per block
    payload = np.arange(37, dtype=np.uint8)
    blocks = layout.segment(payload)
    assert blocks.shape == (4, 13)
    assert np.array_equal(blocks[:, :10].reshape(-1)[:37], payload)
    assert not blocks[3, 7:10].any()  # zero padding of the last block
    failed = np.array([True, True, False, True])
    assert layout.lost_ranges(failed, 37) == ((0, 20), (30, 37))
    assert layout.lost_ranges(np.zeros(4, bool), 37) == ()
    assert layout.lost_ranges(np.array([False, True, True, True]), 37) == ((10, 37),)
    assert layout.num_blocks(0) == 0 and layout.num_blocks(30) == 3 and layout.num_blocks(31) == 4


@pytest.mark.parametrize("m", [2, 4, 6, 8])
def test_modem_matches_sionna_mapper_and_demapper(m: int) -> None:
    from sionna.phy.mapping import Demapper, Mapper, qam

    assert np.allclose(qam_points(m), qam(m), atol=1e-6)
    modem = QamModem(m)
    rng = np.random.default_rng(m)
    bits = rng.integers(0, 2, (4, 64 * m), dtype=np.uint8)
    x = modem.map(bits)
    assert np.allclose(x, Mapper("qam", m)(torch.tensor(bits)).numpy(), atol=1e-6)
    assert np.mean(np.abs(qam_points(m)) ** 2) == pytest.approx(1.0, abs=1e-6)
    no = rng.uniform(0.02, 1.0, x.shape).astype(np.float32)  # per-symbol noise variance
    y = (x + np.sqrt(no / 2) * (rng.standard_normal(x.shape)
                                + 1j * rng.standard_normal(x.shape))).astype(np.complex64)
    for method in ("app", "maxlog"):
        ours = modem.demap(y, no, method)
        ref = Demapper(method, "qam", m)(torch.tensor(y), torch.tensor(no)).numpy()
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-3)
    hard = modem.demap(y, no, "maxlog") > 0  # max-log sign = nearest point's label
    nearest = np.argmin(np.abs(y[..., None] - qam_points(m)) ** 2, axis=-1)
    labels = (nearest[..., None] >> np.arange(m - 1, -1, -1)) & 1
    assert np.array_equal(hard, labels.reshape(hard.shape).astype(bool))


def test_channel_statistics_and_seeding() -> None:
    sym = 4096
    x = np.ones((3, sym), dtype=np.complex64)
    awgn = FlatChannel("awgn", sym)
    y, nv = awgn.apply(x, 0.5, seed=7, first_block=0)
    noise = y - x
    assert np.var(noise.real) == pytest.approx(0.25, rel=0.1)  # no / 2 per dimension
    assert np.all(nv == np.float32(0.5))
    y2, _ = awgn.apply(x[1:], 0.5, seed=7, first_block=1)  # per-block seeding
    assert np.array_equal(y[1:], y2)
    fast = FlatChannel("rayleigh-fast", sym)
    y, nv = fast.apply(x, 1e-6, seed=1, first_block=0)
    gain = 1e-6 / nv  # |h|^2 ~ Exp(1)
    assert np.mean(gain) == pytest.approx(1.0, rel=0.05)
    assert np.mean(gain < 0.5) == pytest.approx(1 - np.exp(-0.5), abs=0.02)
    block = FlatChannel("rayleigh-block", sym)
    _, nv = block.apply(x, 1.0, seed=1, first_block=0)
    assert np.all(nv == nv[:, :1]) and len(set(nv[:, 0])) == 3  # one gain per codeword
    coh = FlatChannel("rayleigh-block", 100, block_symbols=30)
    _, nv_all = coh.apply(np.ones((4, 100), np.complex64), 1.0, seed=3, first_block=0)
    _, nv_tail = coh.apply(np.ones((2, 100), np.complex64), 1.0, seed=3, first_block=2)
    assert np.array_equal(nv_all[2:], nv_tail)  # gains are a prefix of one stream
    flat = nv_all.reshape(-1)
    assert np.all(flat[:30] == flat[0]) and flat[30] != flat[29] and flat[59] == flat[30]
