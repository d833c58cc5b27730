"""GPU link throughput (issue 23): this project's GPU chain vs Sionna 2.2 vs the numba link.

Rate-1/2 16-QAM, k = 4096, AWGN, at most 20 iterations, Es/N0 8 dB by default (BLER
low: the chains that stop early do few iterations; Sionna always runs all 20). Every
figure is **LDPC information Mbit/s end to end**: info bits drawn, encoded, mapped,
AWGN, demapped, decoded and compared with what was sent.

* ``gpu chain``: ``GpuBackend.run_blocks`` on device tensors (torch.randint bits, int8
  GEMM parity sums, one fused Triton kernel for codeword assembly + TS 38.211 scrambling +
  QAM map + Philox AWGN, one for APP demapping + descrambling + rate recovery into the
  decoder's buffer, the erasure check, the Triton decoder, block comparison), batches of
  16384 blocks, synchronised before the clock stops (also unscrambled: its cost); then
  its per-stage split (one batch synchronised after each stage) and the same chain run
  stage by stage (unfused torch ops, the previous version) for comparison.
* ``decoder only``: the Triton kernel in several launch shapes and the pure-torch
  layered decoder on the same LLRs (the kernel-technology comparison).
* Sionna 2.2 (``LDPC5GEncoder``, ``Mapper``, ``AWGN``, ``Demapper("app")``,
  ``LDPC5GDecoder(boxplus-phi, flooding)``), batch 8192, eager and ``torch.compile``d.
* The numba chain through ``channels.Link`` at 1 thread and at all threads (CPU).

``run(device)`` prints everything and the ratios; called by
``benchmarks/link_throughput.py --device cuda:0`` and runnable alone::

    python benchmarks/_gpu_link.py --device cuda:0 [--esno-db 8] [--skip-sionna-compile]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import torch

from channels import Link, LinkConfig
from channels.snr import noise_variance

BASE = dict(modulation="16qam", code_rate=0.5, k=4096, channel="awgn", bp_iterations=20)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], device: str) -> tuple[object, float]:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - start


def gpu_chain(device: str, esno_db: float, batch: int = 16384, batches: int = 8,
              fused: bool = True, scrambled: bool = True) -> dict[str, float]:
    """End-to-end Mbit/s of the GPU chain over up to ``batches`` batches (after a warm-up
    batch, in which Triton compiles, and a probe batch that caps the timed work at ~3 s),
    then one more batch with the device synchronised after every stage: its per-stage
    seconds (``t_<stage>``, scaled to the timed batches). ``fused=False``: the
    stage-by-stage torch/Triton functions instead of the fused kernels (for comparison).
    Batch i is blocks 0 .. batch-1 of payload seed i, scrambled (``scrambled``) with the
    Link's default ``c_init`` (its Gold sequence for ``batch`` blocks uploaded once)."""
    from channels.gpu.backend import GpuBackend
    from channels.scrambling import Scrambler, c_init

    cfg = LinkConfig(**BASE, decoder="gpu", device=device)
    be = GpuBackend(cfg)
    be.fused = be.fused and fused
    k = be.cfg.k
    assert k is not None
    gen = torch.Generator(device=device).manual_seed(0)
    no = torch.full((batch,), noise_variance(esno_db), device=device)
    block_idx = torch.arange(batch, device=device)
    scr = be.scramble_sequence(Scrambler(c_init(cfg.n_rnti, cfg.n_id), be.coded_bits),
                               np.arange(batch)) if scrambled else None
    heard = torch.empty(batch, dtype=torch.bool, device=device)

    def one(i: int, times: dict[str, float] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        t0 = time.perf_counter() if times is not None else 0.0
        u = torch.randint(0, 2, (batch, k), generator=gen, device=device, dtype=torch.uint8)
        seeds = torch.full((batch,), i, dtype=torch.int64, device=device)
        if times is not None:
            _sync(device)
            times["draw bits"] = time.perf_counter() - t0
        u_hat, iters = be.run_blocks(u, no, seeds, block_idx, timings=times, scramble=scr,
                                     heard=heard)
        t1 = time.perf_counter()
        out = ((u_hat != u).any(dim=1) | ~heard).sum(), iters.sum()
        if times is not None:
            _sync(device)
            times["compare"] = time.perf_counter() - t1
        return out

    one(0)  # Triton compiles
    _, first = _timed(lambda: one(1), device)
    batches = max(1, min(batches, int(3.0 / first)))  # at most ~3 s of timed work
    out, seconds = _timed(lambda: [one(i + 2) for i in range(batches)], device)
    errors = sum(int(e) for e, _ in out)  # type: ignore[union-attr]
    iters = sum(int(t) for _, t in out)  # type: ignore[union-attr]
    blocks = batch * batches
    res = {"blocks": blocks, "bler": errors / blocks, "iterations": iters / blocks,
           "seconds": seconds, "info_mbps": blocks * k / seconds / 1e6}
    times: dict[str, float] = {}
    one(batches + 2, times)
    res.update({f"t_{name}": sec * batches for name, sec in times.items()})
    return res


def _stage_split(name: str, m: dict[str, float]) -> None:
    """Print the per-stage seconds of a gpu_chain result (synchronised batch, scaled)."""
    stages = {key[2:]: sec for key, sec in m.items() if key.startswith("t_")}
    total = sum(stages.values())
    parts = "  ".join(f"{stage} {sec:.3f} s ({100 * sec / total:.0f}%)"
                      for stage, sec in stages.items())
    print(f"  stage split of {name} (synchronised per stage, sum {total:.3f} s): {parts}",
          flush=True)


def decoder_variants(device: str, esno_db: float, batch: int = 16384) -> dict[str, str]:
    """Decode-only info Mbit/s of the Triton kernel (launch shapes) and the torch decoder,
    each guarded (a failing variant is reported, the others still run)."""
    from channels.gpu.backend import GpuBackend
    from channels.gpu.chain import recover
    from channels.gpu.decoder import decode_llrs, decode_llrs_torch

    be = GpuBackend(LinkConfig(**BASE, decoder="gpu", device=device))
    code, tables = be.code, be.tables
    assert code is not None and tables is not None
    gen = torch.Generator(device=device).manual_seed(1)
    u = torch.randint(0, 2, (batch, code.k), generator=gen, device=device, dtype=torch.uint8)
    x = be.modem.map(be.encode_t(u))
    no = noise_variance(esno_db)
    noise = torch.randn(x.shape, generator=gen, device=device, dtype=torch.complex64)
    llr = be.modem.demap(x + noise * np.sqrt(no), torch.full(x.shape, no, device=device), "app")
    l_ch = recover(code, be.positions, llr)
    out: dict[str, str] = {}

    def variant(name: str, fn: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
                num: int) -> None:
        try:
            fn(l_ch[:64])  # compile / warm up
            (u_hat, iters), sec = _timed(lambda: fn(l_ch[:num]), device)  # type: ignore[misc]
            bler = float((u_hat != u[:num]).any(dim=1).float().mean())
            out[name] = (f"{num * code.k / sec / 1e6:9.1f} Mbit/s decode only  ({num} blocks, "
                         f"{sec * 1e3:.1f} ms, BLER {bler:.4f}, "
                         f"iter/block {float(iters.float().mean()):.2f})")
        except Exception as err:
            out[name] = f"FAILED {type(err).__name__}: {err}"

    for bw, warps in ((1, 2), (1, 4), (1, 8), (2, 4), (4, 8)):
        variant(f"triton BW={bw} warps={warps}", lambda t, bw=bw, warps=warps: decode_llrs(
            tables, t, codewords_per_program=bw, num_warps=warps), batch)
    variant("torch layered (eager)", lambda t: decode_llrs_torch(code, t), min(batch, 2048))
    return out


def sionna_chain(device: str, esno_db: float, compiled: bool, batch: int = 8192,
                 batches: int = 2) -> dict[str, float]:
    """Sionna 2.2 boxplus-phi flooding chain, eager or torch.compile'd (compile excluded)."""
    from sionna.phy.channel import AWGN
    from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
    from sionna.phy.mapping import Demapper, Mapper

    k, n = 4096, 8192
    enc = LDPC5GEncoder(k, n, num_bits_per_symbol=4, device=device)
    dec = LDPC5GDecoder(enc, cn_update="boxplus-phi", cn_schedule="flooding", num_iter=20,
                        hard_out=True, return_infobits=True, device=device)
    mapper, demapper = Mapper("qam", 4, device=device), Demapper("app", "qam", 4, device=device)
    awgn = AWGN(device=device)
    no = noise_variance(esno_db)

    def chain(u: torch.Tensor) -> torch.Tensor:
        x = mapper(enc(u))
        return (dec(demapper(awgn(x, no), no)) != u).any(dim=-1).sum()

    fn = torch.compile(chain) if compiled else chain
    gen = torch.Generator(device=device).manual_seed(2)
    with torch.no_grad():
        _, warm = _timed(lambda: fn(torch.randint(0, 2, (batch, k), generator=gen,
                                                  device=device).float()), device)
        errs, seconds = _timed(lambda: [fn(torch.randint(
            0, 2, (batch, k), generator=gen, device=device).float()) for _ in range(batches)],
            device)
    blocks = batch * batches
    return {"blocks": blocks, "bler": sum(int(e) for e in errs) / blocks,  # type: ignore[union-attr]
            "seconds": seconds, "warmup_s": warm, "info_mbps": blocks * k / seconds / 1e6}


def link_chain(cfg: LinkConfig, threads: int, blocks: int, esno_db: float
               ) -> dict[str, float]:
    """A chain through ``channels.Link`` (segmentation and CRC on the CPU included)."""
    link = Link(cfg, num_threads=threads)
    rng = np.random.default_rng(0)
    link.transmit([rng.integers(0, 256, link.block_payload_bytes, dtype=np.uint8)], esno_db, [0])
    data = rng.integers(0, 256, blocks * link.block_payload_bytes, dtype=np.uint8)
    if link.scrambler is not None:  # the Gold sequence for this payload length: once per Link
        link.scrambler.covering(np.arange(blocks))
    start = time.perf_counter()
    r = link.transmit([data], esno_db, [1])[0]
    seconds = time.perf_counter() - start
    return {"blocks": r.num_blocks, "bler": r.block_errors / r.num_blocks,
            "iterations": r.decoder_iterations / r.num_blocks, "seconds": seconds,
            "info_mbps": r.num_blocks * 4096 / seconds / 1e6}


def _line(name: str, m: dict[str, float]) -> None:
    extra = f"  iter/block {m['iterations']:5.2f}" if "iterations" in m else ""
    print(f"{name:<46} blocks {m['blocks']:7.0f}  BLER {m['bler']:.4f}{extra}  "
          f"{m['seconds']:7.2f} s  info {m['info_mbps']:9.1f} Mbit/s", flush=True)


GPU = "gpu chain (Triton layered offset-ms, scrambled)"


def _ratios(res: dict[str, dict[str, float]]) -> None:
    gpu = res.get(GPU)
    for name, m in res.items():
        if gpu and m is not gpu:
            print(f"ratio gpu chain / {name}: {gpu['info_mbps'] / m['info_mbps']:.1f}x",
                  flush=True)


def run(device: str = "cuda:0", esno_db: float = 8.0, sionna_compile: bool = True) -> None:
    """Print every chain's Mbit/s and the ratios (one run, ~2-3 minutes on an H200).

    Order: the GPU chain, the decoder alone, the numba and Link chains, Sionna eager, the
    ratios so far, then Sionna compiled (its ~1 minute compile last) and all ratios.
    """
    cpus = len(os.sched_getaffinity(0))
    print(f"rate-1/2 16-QAM k=4096 AWGN Es/N0={esno_db} dB, <= 20 iterations, device "
          f"{device} ({torch.cuda.get_device_name(device)}), {cpus} cpus", flush=True)
    res: dict[str, dict[str, float]] = {}

    def step(name: str, fn: Callable[[], dict[str, float]]) -> None:
        try:
            res[name] = fn()
            _line(name, res[name])
        except Exception as err:  # one failing chain must not hide the others
            print(f"{name}: FAILED {type(err).__name__}: {err}", flush=True)

    step(GPU, lambda: gpu_chain(device, esno_db))
    if GPU in res:
        _stage_split(GPU, res[GPU])
    plain = "gpu chain, unscrambled"
    step(plain, lambda: gpu_chain(device, esno_db, scrambled=False))
    if GPU in res and plain in res:
        cost = 1 - res[GPU]["info_mbps"] / res[plain]["info_mbps"]
        print(f"scrambling cost on gpu-chain throughput: {100 * cost:.1f} %", flush=True)
    staged = "gpu chain, stage by stage (unfused)"
    step(staged, lambda: gpu_chain(device, esno_db, batches=2, fused=False))
    if staged in res:
        _stage_split(staged, res[staged])
    try:
        for name, line in decoder_variants(device, esno_db).items():
            print(f"decoder only: {name:<24} {line}", flush=True)
    except Exception as err:
        print(f"decoder only: FAILED {type(err).__name__}: {err}", flush=True)
    step("numba chain (Link), 1 thread",
         lambda: link_chain(LinkConfig(**BASE), 1, 500, esno_db))
    step(f"numba chain (Link), {cpus} threads",
         lambda: link_chain(LinkConfig(**BASE), cpus, 300 * cpus, esno_db))
    step("gpu chain through Link (segmentation on the CPU)", lambda: link_chain(
        LinkConfig(**BASE, decoder="gpu", device=device), 1, 16384, esno_db))
    step("sionna eager (boxplus-phi, flooding)",
         lambda: sionna_chain(device, esno_db, compiled=False, batches=1))
    _ratios(res)
    if sionna_compile:
        name = "sionna torch.compile (boxplus-phi, flooding)"
        step(name, lambda: sionna_chain(device, esno_db, compiled=True))
        if name in res:
            print(f"(sionna compile + first batch: {res[name]['warmup_s']:.0f} s)")
            _ratios({GPU: res[GPU], name: res[name]} if GPU in res else {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--esno-db", type=float, default=8.0)
    parser.add_argument("--skip-sionna-compile", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():  # ``make bench`` runs every script, also on CPUs
        print("_gpu_link: no CUDA device, nothing to measure")
        return
    run(args.device, args.esno_db, not args.skip_sionna_compile)


if __name__ == "__main__":
    main()
