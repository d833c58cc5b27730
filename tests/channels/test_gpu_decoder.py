"""The GPU link (channels.gpu): same verdicts as the numba decoder, same stages as the CPU chain.

Without CUDA the Triton kernels run in Triton's interpreter on CPU tensors (the same
kernel source as on the GPU); with CUDA they compile and the ``gpu``-marked tests compare
>= 1,000 blocks. Skipped only when triton is not importable.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from channels.gpu import _triton  # noqa: E402  (switches the interpreter on without CUDA)

if _triton.triton is None:
    pytest.skip("triton is not installed (pip install triton==3.6.0)", allow_module_level=True)

from channels import Link, LinkConfig  # noqa: E402
from channels.gpu.chain import (  # noqa: E402
    GpuEncoder,
    GpuModem,
    channel_template,
    demap_recover,
    flat_channel,
    map_channel,
    recover,
)
from channels.gpu.decoder import DecoderTables, decode_llrs, decode_llrs_torch  # noqa: E402
from channels.ldpc import (  # noqa: E402
    FastLdpcDecoder,
    FastLdpcEncoder,
    build_code,
    rate_match_positions,
)
from channels.modulation import QamModem  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"


def _waterfall_llrs(k: int, n: int, m: int, esno_db: float, num: int, seed: int = 0):
    """(code, info bits [num, k], internal LLRs l_ch [num, n_dec]) of a NumPy AWGN chain."""
    code = build_code(k, n, m)
    rng = np.random.default_rng(seed)
    u = rng.integers(0, 2, (num, k), dtype=np.uint8)
    x = QamModem(m).map(FastLdpcEncoder(code)(u))
    no = 10 ** (-esno_db / 10)
    noise = rng.standard_normal((*x.shape, 2), dtype=np.float32).view(np.complex64)[..., 0]
    y = (x + noise * np.float32(np.sqrt(no / 2))).astype(np.complex64)
    return code, u, FastLdpcDecoder(code).recover(QamModem(m).demap(y, no, "app"))


def _check_same_verdicts(u, ref, got, bpp=None) -> None:
    """Same decisions and iterations as numba, on a non-vacuous sample (some blocks fail,
    some succeed, iteration counts vary)."""
    (u1, i1), (u2, i2) = ref, got
    u2, i2 = u2.cpu().numpy(), i2.cpu().numpy()
    ok = (u1 == u).all(axis=1)
    assert 0 < ok.sum() < ok.size, f"vacuous sample: {ok.sum()} of {ok.size} blocks decoded"
    assert len(np.unique(i1)) > 2, "early termination never varied"
    np.testing.assert_array_equal(i2, i1)
    np.testing.assert_array_equal(u2, u1)


def test_triton_decoder_matches_numba_block_for_block() -> None:
    """300 blocks of a small BG2 code at the waterfall: identical u_hat and iterations."""
    code, u, l_ch = _waterfall_llrs(96, 192, 4, 6.0, 300)
    ref = FastLdpcDecoder(code, 20).decode_llrs(l_ch)
    tables = DecoderTables.build(code, DEV)
    got = decode_llrs(tables, torch.from_numpy(l_ch).to(DEV), 20,
                      codewords_per_program=1 if DEV == "cuda" else 512)
    _check_same_verdicts(u, ref, got)


def test_triton_decoder_small_programs_and_minsum() -> None:
    """Several programs of 2 codewords each stop at different iterations; plain min-sum
    (offset 0) and a small iteration cap match too."""
    code, u, l_ch = _waterfall_llrs(96, 192, 4, 6.5, 4, seed=3)
    got = decode_llrs(DecoderTables.build(code, DEV), torch.from_numpy(l_ch).to(DEV), 6,
                      offset=0.0, codewords_per_program=2)
    ref = FastLdpcDecoder(code, 6, offset=0.0).decode_llrs(l_ch)
    np.testing.assert_array_equal(got[1].cpu().numpy(), ref[1])
    np.testing.assert_array_equal(got[0].cpu().numpy(), ref[0])
    assert len(np.unique(ref[1])) > 1


def test_torch_decoder_matches_numba_on_a_bg1_code() -> None:
    """The pure-torch schedule on a rate-0.69 BG1 code (Z = 64)."""
    code, u, l_ch = _waterfall_llrs(1408, 2048, 4, 9.0, 200, seed=1)
    assert code.base_graph == "bg1"
    ref = FastLdpcDecoder(code, 20).decode_llrs(l_ch)
    _check_same_verdicts(u, ref, decode_llrs_torch(code, torch.from_numpy(l_ch)))


@pytest.mark.parametrize(("k", "n", "m"), [(200, 400, 4), (1408, 2112, 6), (64, 320, 2)])
def test_encoder_and_recovery_match_the_numba_chain(k: int, n: int, m: int) -> None:
    code = build_code(k, n, m)
    rng = np.random.default_rng(k)
    u = rng.integers(0, 2, (20, k), dtype=np.uint8)
    got = GpuEncoder(code, DEV)(torch.from_numpy(u).to(DEV)).cpu().numpy()
    np.testing.assert_array_equal(got, FastLdpcEncoder(code)(u))
    llr = (rng.standard_normal((5, n)) * 15).astype(np.float32)
    pos = torch.from_numpy(rate_match_positions(code)).long().to(DEV)
    l_ch = recover(code, pos, torch.from_numpy(llr).to(DEV)).cpu().numpy()
    np.testing.assert_array_equal(l_ch, FastLdpcDecoder(code).recover(llr))


@pytest.mark.parametrize("m", [2, 4, 6, 8])
def test_map_and_demap_match_the_numpy_modem(m: int) -> None:
    rng = np.random.default_rng(m)
    bits = rng.integers(0, 2, (4, 256 * m), dtype=np.uint8)
    cpu, gpu = QamModem(m), GpuModem(m, DEV)
    x = cpu.map(bits)
    np.testing.assert_array_equal(gpu.map(torch.from_numpy(bits).to(DEV)).cpu().numpy(), x)
    y = (x + 0.3 * rng.standard_normal(x.shape) + 0.3j * rng.standard_normal(x.shape))
    y = y.astype(np.complex64)
    nv = rng.uniform(0.01, 1.0, x.shape).astype(np.float32)
    for method in ("app", "maxlog"):
        want = cpu.demap(y, nv, method)
        got = gpu.demap(torch.from_numpy(y).to(DEV), torch.from_numpy(nv).to(DEV), method)
        np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-5, atol=1e-3)


def _channel(kind: str, num: int, sym: int, seed: int = 7, first: int = 0, no: float = 0.5,
             block_symbols: int | None = None):
    x = torch.ones((num, sym), dtype=torch.complex64, device=DEV)
    x_eq, nv = flat_channel(x, torch.full((num,), no, device=DEV),
                            torch.full((num,), seed, device=DEV),
                            torch.arange(first, first + num, device=DEV), kind, block_symbols)
    return (x_eq - 1).cpu().numpy(), nv.cpu().numpy()


@pytest.mark.parametrize("kind", ["awgn", "rayleigh-block", "rayleigh-fast"])
def test_channel_statistics(kind: str) -> None:
    """Equalised noise n/h: (n/h) / sqrt(noise_var) is CN(0, 1) (mean 0, variance 1/2 per
    dimension, uncorrelated), and E[1/noise_var] = E|h|^2 / no = 1 / no. Tolerances are 5
    standard errors of the estimates over the 64 x 4000 samples (fewer independent gains
    for rayleigh-block: 64)."""
    no = 0.5
    noise, nv = _channel(kind, 64, 4000, no=no)  # 64 interpreted programs on the CPU
    w = noise / np.sqrt(nv)
    count = w.size
    for part in (w.real, w.imag):
        assert abs(part.mean()) < 5 * np.sqrt(0.5 / count)
        assert abs(part.var() - 0.5) < 5 * np.sqrt(0.5 / count)  # var of x^2: 2 sigma^4
    assert abs(np.mean(w.real * w.imag)) < 5 * 0.5 / np.sqrt(count)
    gains = no / nv
    if kind == "awgn":
        assert np.all(nv == np.float32(no))
    else:
        independent = 64 if kind == "rayleigh-block" else gains.size
        assert abs(gains.mean() - 1) < 5 / np.sqrt(independent)  # |h|^2 ~ Exp(1)
        if kind == "rayleigh-block":
            assert np.all(gains == gains[:, :1])


def test_channel_noise_is_a_function_of_seed_block_and_symbol() -> None:
    """Same (seed, block) -> same samples however blocks are batched; other seeds differ;
    block_symbols intervals span block boundaries."""
    whole, _ = _channel("rayleigh-fast", 12, 300)
    part, _ = _channel("rayleigh-fast", 4, 300, first=5)
    np.testing.assert_array_equal(part, whole[5:9])
    other, _ = _channel("rayleigh-fast", 12, 300, seed=8)
    assert not np.any(other == whole)
    _, nv = _channel("rayleigh-block", 3, 300, block_symbols=450)
    assert np.all(nv[0] == nv[0, 0]) and np.all(nv[1, :150] == nv[0, 0])
    assert nv[1, 150] != nv[0, 0] and np.all(nv[1, 150:] == nv[1, 150])


@pytest.mark.slow
@pytest.mark.skipif(DEV == "cuda", reason="CPU interpreter variant (the gpu tests cover CUDA)")
def test_link_with_gpu_decoder_on_cpu_interpreter() -> None:
    """Link(decoder='gpu', device='cpu'): round trip at high SNR; at the waterfall the
    results do not depend on how blocks are batched."""
    cfg = LinkConfig(modulation="16qam", k=96, n=192, decoder="gpu", device="cpu")
    rng = np.random.default_rng(0)
    payload = rng.integers(0, 256, 4 * 9, dtype=np.uint8)
    r = Link(cfg).transmit([payload], 30.0, [1])[0]
    assert np.array_equal(r.data, payload) and r.block_errors == 0
    a = Link(cfg, chunk_blocks=2).transmit([payload], 5.0, [2])[0]
    b = Link(cfg, chunk_blocks=64).transmit([payload], 5.0, [2])[0]
    np.testing.assert_array_equal(a.block_ok, b.block_ok)
    np.testing.assert_array_equal(a.data, b.data)
    assert a.block_errors > 0 and a.bit_errors > 0


def test_config_rejects_gpu_only_options() -> None:
    with pytest.raises(ValueError, match="cn_schedule"):
        LinkConfig(decoder="gpu", cn_schedule="flooding", device="cuda")
    with pytest.raises(ValueError, match="cn_update"):
        LinkConfig(decoder="gpu", cn_update="boxplus-phi", device="cuda")


@pytest.mark.gpu
def test_gpu_decoder_matches_numba_on_2048_blocks() -> None:
    """The issue's code (rate-1/2 16-QAM, k = 4096) at the waterfall, on CUDA, in two
    launch shapes."""
    assert torch.cuda.is_available()
    code, u, l_ch = _waterfall_llrs(4096, 8192, 4, 6.3, 2048, seed=5)
    ref = FastLdpcDecoder(code, 20).decode_llrs(l_ch)
    tables = DecoderTables.build(code, "cuda")
    for bw, warps in ((1, 4), (2, 8)):
        got = decode_llrs(tables, torch.from_numpy(l_ch).cuda(), 20,
                          codewords_per_program=bw, num_warps=warps)
        _check_same_verdicts(u, ref, got)
    _check_same_verdicts(u, ref, decode_llrs_torch(code, torch.from_numpy(l_ch).cuda()))


@pytest.mark.gpu
def test_gpu_link_bler_matches_the_fast_link() -> None:
    """Same BLER (within 5 standard errors) as the numba link at the waterfall, 4000 blocks
    each (different noise streams, same statistics)."""
    assert torch.cuda.is_available()
    base = dict(modulation="16qam", code_rate=0.5, k=4096)
    rng = np.random.default_rng(0)
    payload = rng.integers(0, 256, 4000 * 509, dtype=np.uint8)
    gpu = Link(LinkConfig(**base, decoder="gpu", device="cuda")).transmit([payload], 6.3, [1])[0]
    cpu = Link(LinkConfig(**base)).transmit([payload], 6.3, [1])[0]
    p1, p2 = gpu.block_errors / gpu.num_blocks, cpu.block_errors / cpu.num_blocks
    pooled = (gpu.block_errors + cpu.block_errors) / (2 * gpu.num_blocks)
    assert 0 < pooled < 1
    assert abs(p1 - p2) < 5 * np.sqrt(2 * pooled * (1 - pooled) / gpu.num_blocks)
    assert gpu.undetected_block_errors == 0


@pytest.mark.parametrize(("k", "n", "m", "kind", "block_symbols"), [
    (200, 400, 4, "awgn", None), (64, 320, 2, "rayleigh-fast", None),
    (1408, 2112, 6, "rayleigh-block", None), (120, 256, 8, "rayleigh-block", 50)])
def test_fused_map_channel_equals_the_stage_functions(k, n, m, kind, block_symbols) -> None:
    """map_channel (parity GEMM + one kernel) gives the x_eq / noise_var of encoder ->
    GpuModem.map -> flat_channel (same Philox draws, same arithmetic: bit-identical when
    interpreted, within an FMA rounding when compiled)."""
    code = build_code(k, n, m)
    enc, modem = GpuEncoder(code, DEV), GpuModem(m, DEV)
    rng = np.random.default_rng(k + m)
    num = 6
    u = torch.from_numpy(rng.integers(0, 2, (num, k), dtype=np.uint8)).to(DEV)
    no = torch.from_numpy(rng.uniform(0.1, 1.0, num).astype(np.float32)).to(DEV)
    seeds = torch.tensor([3, 3, 3, 9, 9, 9], device=DEV)
    blocks = torch.tensor([0, 1, 2, 0, 5, 7], device=DEV)
    want = flat_channel(modem.map(enc(u)), no, seeds, blocks, kind, block_symbols)
    got = map_channel(enc, u, modem.levels, no, seeds, blocks, kind, block_symbols)
    for g, w in zip(got, want, strict=True):
        if DEV == "cpu":
            np.testing.assert_array_equal(g.cpu().numpy(), w.cpu().numpy())
        else:  # two compiled kernels: the compiler may contract a*b+c into FMAs differently
            np.testing.assert_allclose(g.cpu().numpy(), w.cpu().numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("k", "n", "m"), [(200, 400, 4), (64, 320, 2), (1408, 2112, 6),
                                           (120, 256, 8)])
def test_fused_demap_recover_matches_the_numpy_chain(k: int, n: int, m: int) -> None:
    """demap_recover == FastLdpcDecoder.recover(QamModem.demap(..)) to float tolerance for
    app and max-log; untransmitted bits 0 and fillers +llr_max exactly; the pre-filled
    output buffer is reused (stale values overwritten)."""
    code = build_code(k, n, m)
    pos = rate_match_positions(code)
    assert len(np.unique(pos)) == len(pos)
    rng = np.random.default_rng(n + m)
    cpu, modem = QamModem(m), GpuModem(m, DEV)
    x = cpu.map(FastLdpcEncoder(code)(rng.integers(0, 2, (5, k), dtype=np.uint8)))
    y = (x + 0.4 * rng.standard_normal(x.shape) + 0.4j * rng.standard_normal(x.shape))
    y = y.astype(np.complex64)
    nv = rng.uniform(0.01, 1.0, x.shape).astype(np.float32)
    template = channel_template(code, DEV)
    buf = torch.full((5, code.n_dec), 7.0, device=DEV)
    ref_dec = FastLdpcDecoder(code)
    for method in ("app", "maxlog"):
        want = ref_dec.recover(cpu.demap(y, nv, method))
        got = demap_recover(code, torch.from_numpy(pos).to(DEV), modem.levels,
                            torch.from_numpy(y).to(DEV), torch.from_numpy(nv).to(DEV), method,
                            template, out=buf).cpu().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
        fixed = np.ones(code.n_dec, bool)
        fixed[pos] = False
        np.testing.assert_array_equal(got[:, fixed], want[:, fixed])
        assert np.abs(got).max() == np.float32(20.0)  # clipped at llr_max somewhere


def test_backend_fused_chain_equals_the_stage_by_stage_chain() -> None:
    """GpuBackend.run_blocks: the fused launches and the stage functions (forced by
    fused=False) give the same decisions and iterations at the waterfall (max-log: the
    fused demapper does the torch demapper's arithmetic), and the stage clock reports
    every stage."""
    from channels.gpu.backend import GpuBackend

    be = GpuBackend(LinkConfig(modulation="16qam", k=96, n=192, decoder="gpu", device=DEV,
                               demapping="maxlog", bp_iterations=8))
    assert be.fused
    rng = np.random.default_rng(4)
    num = 64
    u = torch.from_numpy(rng.integers(0, 2, (num, 96), dtype=np.uint8)).to(DEV)
    no = torch.full((num,), 10 ** (-5.5 / 10), device=DEV)
    seeds, blocks = torch.full((num,), 11, device=DEV), torch.arange(num, device=DEV)
    times: dict[str, float] = {}
    fused = be.run_blocks(u, no, seeds, blocks, timings=times)
    assert set(times) == {"encode+map+channel", "demap+recover", "decode"}
    be.fused = False
    staged = be.run_blocks(u, no, seeds, blocks)
    ok = (fused[0] == u).all(dim=1).cpu().numpy()
    assert 0 < ok.sum() < num and len(np.unique(fused[1].cpu().numpy())) > 2
    np.testing.assert_array_equal(fused[1].cpu().numpy(), staged[1].cpu().numpy())
    np.testing.assert_array_equal(fused[0].cpu().numpy(), staged[0].cpu().numpy())


@pytest.mark.parametrize("k", [4096, 96])
def test_gpu_crc_check_and_packing_match_the_block_layout(k: int) -> None:
    """GpuCrc.ok == BlockLayout.crc_ok and GpuCrc.pack == np.packbits, on valid blocks,
    blocks with one or two flipped bits (anywhere, CRC bits included) and random ones."""
    from channels.gpu.chain import GpuCrc
    from channels.segmentation import BlockLayout

    layout = BlockLayout(k)
    rng = np.random.default_rng(k)
    payload = rng.integers(0, 256, 40 * layout.payload_bytes, dtype=np.uint8)
    bits = np.unpackbits(layout.segment(payload), axis=1)  # [40, k], CRC valid
    for row in range(10, 30):
        bits[row, rng.choice(k, 1 + row % 2, replace=False)] ^= 1
    bits[30:] = rng.integers(0, 2, (10, k), dtype=np.uint8)
    crc = GpuCrc(k, DEV)
    u = torch.from_numpy(bits).to(DEV)
    want = layout.crc_ok(np.packbits(bits, axis=1))
    assert want[:10].all() and not want[10:].any()
    np.testing.assert_array_equal(crc.ok(u).cpu().numpy(), want)
    np.testing.assert_array_equal(crc.pack(u).cpu().numpy(), np.packbits(bits, axis=1))


@pytest.mark.parametrize(("k", "n", "m", "kind"), [(200, 400, 4, "awgn"),
                                                   (120, 256, 8, "rayleigh-block")])
def test_fused_kernels_scramble_as_the_numpy_scrambler(k, n, m, kind) -> None:
    """map_channel with the flat Gold sequence == Scrambler.scramble -> map -> flat_channel
    (padding bits scrambled too); demap_recover with it == FastLdpcDecoder.recover of
    Scrambler.descramble_llr(QamModem.demap(..)), to the unscrambled test's tolerances."""
    from channels.scrambling import Scrambler, c_init

    code = build_code(k, n, m)
    enc, modem, cpu = GpuEncoder(code, DEV), GpuModem(m, DEV), QamModem(m)
    coded_bits = m * -(-n // m)
    scr = Scrambler(c_init(0x1234, 7), coded_bits)
    rng = np.random.default_rng(k)
    num = 6
    u_np = rng.integers(0, 2, (num, k), dtype=np.uint8)
    blocks_np = np.array([0, 1, 2, 0, 5, 7])
    seq = torch.from_numpy(np.array(scr.covering(blocks_np))).to(DEV)
    u, blocks = torch.from_numpy(u_np).to(DEV), torch.from_numpy(blocks_np).to(DEV)
    no = torch.from_numpy(rng.uniform(0.1, 1.0, num).astype(np.float32)).to(DEV)
    seeds = torch.tensor([3, 3, 3, 9, 9, 9], device=DEV)
    coded = np.zeros((num, coded_bits), np.uint8)
    coded[:, :n] = FastLdpcEncoder(code)(u_np)
    x = torch.from_numpy(cpu.map(scr.scramble(coded, blocks_np))).to(DEV)
    want = flat_channel(x, no, seeds, blocks, kind)
    got = map_channel(enc, u, modem.levels, no, seeds, blocks, kind, scramble=seq)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.cpu().numpy(), w.cpu().numpy(), rtol=1e-6, atol=1e-6)
    y, nv = got[0].cpu().numpy(), got[1].cpu().numpy()
    full = np.ascontiguousarray(cpu.demap(y, nv, "app"))  # padded width, as the Link
    llr = np.ascontiguousarray(scr.descramble_llr(full, blocks_np)[:, :n])
    ref = FastLdpcDecoder(code).recover(llr)
    pos = torch.from_numpy(rate_match_positions(code)).to(DEV)
    l_ch = demap_recover(code, pos, modem.levels, got[0], got[1], "app",
                         channel_template(code, DEV), blocks=blocks, scramble=seq)
    np.testing.assert_allclose(l_ch.cpu().numpy(), ref, rtol=1e-5, atol=1e-3)
    plain = demap_recover(code, pos, modem.levels, got[0], got[1], "app",
                          channel_template(code, DEV))
    assert (np.sign(plain.cpu().numpy()) != np.sign(l_ch.cpu().numpy())).any()


def test_backend_scrambled_fused_chain_equals_the_stage_chain_and_detects_erasures() -> None:
    """run_blocks with scrambling: fused kernels and the torch stage functions give the same
    decisions and iterations at the waterfall; ``heard`` is True for received blocks and
    False at an absurd SNR, where transmit_blocks reports every block lost."""
    from channels.gpu.backend import GpuBackend
    from channels.scrambling import Scrambler, c_init
    from channels.segmentation import BlockLayout

    cfg = LinkConfig(modulation="16qam", k=96, n=192, decoder="gpu", device=DEV,
                     demapping="maxlog", bp_iterations=8)
    be = GpuBackend(cfg)
    scr = Scrambler(c_init(1, 2), be.coded_bits)
    num = 64
    rng = np.random.default_rng(5)
    u = torch.from_numpy(rng.integers(0, 2, (num, 96), dtype=np.uint8)).to(DEV)
    no = torch.full((num,), 10 ** (-5.5 / 10), device=DEV)
    seeds, blocks = torch.full((num,), 11, device=DEV), torch.arange(num, device=DEV)
    seq = be.scramble_sequence(scr, blocks.cpu().numpy())
    heard = torch.zeros(num, dtype=torch.bool, device=DEV)
    fused = be.run_blocks(u, no, seeds, blocks, scramble=seq, heard=heard)
    assert heard.all()
    be.fused = False
    staged = be.run_blocks(u, no, seeds, blocks, scramble=seq)
    be.fused = True
    ok = (fused[0] == u).all(dim=1).cpu().numpy()
    assert 0 < ok.sum() < num
    np.testing.assert_array_equal(fused[1].cpu().numpy(), staged[1].cpu().numpy())
    np.testing.assert_array_equal(fused[0].cpu().numpy(), staged[0].cpu().numpy())
    layout = BlockLayout(96)
    info = layout.segment(np.zeros(4 * layout.payload_bytes, np.uint8))  # CRC of zeros: 0
    for fused_path in (True, False):
        be.fused = fused_path
        dec, ok_b, _ = be.transmit_blocks(info, [(1e30, 3, 0, 4)], scr)  # -300 dB
        assert not ok_b.any(), fused_path


def test_gpu_backend_harq_stages_match_the_fast_backend() -> None:
    """The Backend protocol for HARQ: encode(bits, rv) bit-exact for every rv,
    combine (index_add_ over repeated positions) equal, and decode of the combined sums
    gives the numba decoder's decisions and iterations (after transmissions 1 and 4)."""
    from channels.backends import FastBackend
    from channels.gpu.backend import GpuBackend

    base = dict(modulation="qpsk", k=96, n=288, bp_iterations=8,
                harq={"max_transmissions": 4, "combining": "ir"})
    fast = FastBackend(LinkConfig(**base))
    gpu = GpuBackend(LinkConfig(**base, decoder="gpu", device=DEV))
    rng = np.random.default_rng(9)
    bits = rng.integers(0, 2, (40, 96), dtype=np.uint8)
    soft_f = soft_g = None
    failed = []
    for rv in (0, 2, 3, 1):
        np.testing.assert_array_equal(gpu.encode(bits, rv), fast.encode(bits, rv))
        x = fast.modulate(fast.encode(bits, rv))
        y = (x + 1.1 * (rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape)))
        llr = fast.demodulate(y.astype(np.complex64), np.full(x.shape, 2.4, np.float32))
        soft_f = fast.combine(llr, rv, None if soft_f is None else soft_f.copy())
        soft_g = gpu.combine(llr, rv, soft_g)
        np.testing.assert_allclose(soft_g, soft_f, rtol=1e-6, atol=1e-5)
        if rv in (2, 3):  # decode after the first and the last transmission (interpreter time)
            continue
        want, got = fast.decode(soft_f.copy(), last=False), gpu.decode(soft_g, last=False)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])
        failed.append(int((~(want[0] == bits).all(axis=1)).sum()))
    assert failed[0] > 0 and failed[-1] < failed[0], failed  # combining helped, not vacuous


@pytest.mark.slow
@pytest.mark.skipif(DEV == "cuda", reason="CPU interpreter variant (the gpu tests cover CUDA)")
def test_link_gpu_harq_and_erasures_on_cpu_interpreter() -> None:
    """Link(decoder='gpu') with HARQ (stage-by-stage path, NumPy channel) gives the fast
    link's verdicts and transmissions (max-log demapping: the same LLRs up to rounding);
    at -300 dB every block is lost."""
    base = dict(modulation="16qam", k=96, n=192, demapping="maxlog",
                harq={"max_transmissions": 3, "combining": "chase"})
    payload = np.random.default_rng(1).integers(0, 256, 9 * 20, dtype=np.uint8)
    g = Link(LinkConfig(**base, decoder="gpu", device="cpu")).transmit([payload], 3.5, [4])[0]
    f = Link(LinkConfig(**base), num_threads=1).transmit([payload], 3.5, [4])[0]
    np.testing.assert_array_equal(g.transmissions, f.transmissions)
    np.testing.assert_array_equal(g.block_ok, f.block_ok)
    assert g.transmissions.max() > 1
    lost = Link(LinkConfig(modulation="16qam", k=96, n=192, decoder="gpu", device="cpu"))
    assert lost.transmit([payload], -300.0, [1])[0].block_errors == 20


@pytest.mark.gpu
def test_gpu_link_harq_bler_matches_the_fast_link() -> None:
    """HARQ chase (2 transmissions) on CUDA: same retransmission rate (5 standard errors)
    and a comparable residual block error count as the numba link at the top of the
    single-shot waterfall (6.0 dB), 1500 blocks each."""
    assert torch.cuda.is_available()
    base = dict(modulation="16qam", code_rate=0.5, k=4096,
                harq={"max_transmissions": 2, "combining": "chase"})
    payload = np.random.default_rng(2).integers(0, 256, 1500 * 509, dtype=np.uint8)
    gpu = Link(LinkConfig(**base, decoder="gpu", device="cuda")).transmit([payload], 6.0, [1])[0]
    cpu = Link(LinkConfig(**base)).transmit([payload], 6.0, [1])[0]
    t1, t2 = gpu.transmissions.mean() - 1, cpu.transmissions.mean() - 1
    assert 0.02 < t2 < 0.98, f"retransmission rate {t2} not informative"
    assert abs(t1 - t2) < 5 * np.sqrt(2 * t2 * (1 - t2) / 1500)
    assert abs(gpu.block_errors - cpu.block_errors) <= 5 * np.sqrt(
        2 * max(cpu.block_errors, 1)) + 2
