"""Full-chain link throughput: fast decoder vs Sionna's eager LDPC5GDecoder.

Rate-1/2 16-QAM, k = 4096 (LDPC information bits incl. the 24 CRC bits), AWGN at the
waterfall (Es/N0 6.3 dB: BLER about 0.1 for the fast decoder), at most 20 iterations.
Each run times ``Link.transmit`` end to end (segmentation, CRC, LDPC encoding, mapping,
channel, demapping, decoding, CRC check) after a warm-up call (numba compilation), and
prints throughput in payload Mbit/s (4072 bits per block) and in LDPC information
Mbit/s (4096 bits per block).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/link_throughput.py [--blocks 2000]
        [--sionna-blocks 64] [--esno-db 6.3] [--device cuda] [--torch-threads 1]

``--device cuda`` runs the Sionna chain on the GPU, then ``benchmarks/_gpu_link.py``: the
GPU chain (``decoder="gpu"``) with its stage split, Sionna eager and compiled, the numba
chain at 1 and all threads, and the ratios (at Es/N0 8 dB).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from channels import Link, LinkConfig  # noqa: E402

BASE = dict(modulation="16qam", code_rate=0.5, k=4096, channel="awgn", bp_iterations=20)


def measure(cfg: LinkConfig, blocks: int, esno_db: float, chunk: int,
            threads: int | None = None) -> dict[str, float]:
    """Time one ``transmit`` of ``blocks`` random full blocks (after a warm-up)."""
    link = Link(cfg, chunk_blocks=chunk, num_threads=threads)
    rng = np.random.default_rng(0)
    link.transmit([rng.integers(0, 256, link.block_payload_bytes, dtype=np.uint8)], esno_db, [0])
    data = rng.integers(0, 256, blocks * link.block_payload_bytes, dtype=np.uint8)
    start = time.perf_counter()
    r = link.transmit([data], esno_db, [1])[0]
    seconds = time.perf_counter() - start
    assert cfg.k is not None
    return {
        "blocks": r.num_blocks,
        "bler": r.block_errors / r.num_blocks,
        "iterations": r.decoder_iterations / r.num_blocks,
        "seconds": seconds,
        "payload_mbps": r.num_bits / seconds / 1e6,
        "info_mbps": r.num_blocks * cfg.k / seconds / 1e6,
    }


def report(name: str, m: dict[str, float]) -> None:
    print(f"{name:<34} blocks {m['blocks']:6.0f}  BLER {m['bler']:.3f}  "
          f"iter/block {m['iterations']:5.2f}  {m['seconds']:7.2f} s  "
          f"payload {m['payload_mbps']:8.3f} Mbit/s  info {m['info_mbps']:8.3f} Mbit/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--esno-db", type=float, default=6.3)
    parser.add_argument("--blocks", type=int, default=2000, help="blocks for the fast chain")
    parser.add_argument("--sionna-blocks", type=int, default=64)
    parser.add_argument("--device", default="cpu", help="device of the Sionna chain")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--threads", type=int, nargs="*", default=None,
                        help="worker threads of the fast chain to try (default: 1 and all CPUs)")
    parser.add_argument("--skip-layered", action="store_true",
                        help="skip Sionna's layered offset min-sum (very slow in eager mode)")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    cpus = len(os.sched_getaffinity(0))
    print(f"rate-1/2 16-QAM k=4096 AWGN Es/N0={args.esno_db} dB, 20 iterations; "
          f"torch threads {torch.get_num_threads()}, usable cpus {cpus}, "
          f"sionna device {args.device}")
    fast = {}
    for threads in args.threads or sorted({1, cpus}):
        m = measure(LinkConfig(**BASE), args.blocks, args.esno_db, chunk=64, threads=threads)
        report(f"fast (layered offset-ms, {threads} thr)", m)
        if not fast or m["info_mbps"] > fast["info_mbps"]:
            fast = m
    sionna_chunk = 1024 if args.device.startswith("cuda") else 64  # Link's defaults
    ref = measure(LinkConfig(**BASE, decoder="sionna", cn_update="boxplus-phi",
                             cn_schedule="flooding", device=args.device),
                  args.sionna_blocks, args.esno_db, chunk=sionna_chunk)
    report("sionna eager (boxplus-phi, flood)", ref)
    print(f"speed-up fast (best) / sionna default: {fast['info_mbps'] / ref['info_mbps']:.0f}x")
    if not args.skip_layered:
        same = measure(LinkConfig(**BASE, decoder="sionna", device=args.device),
                       max(8, args.sionna_blocks // 8), args.esno_db, chunk=sionna_chunk)
        report("sionna eager (layered offset-ms)", same)
        print(f"speed-up fast (best) / sionna same algorithm: "
              f"{fast['info_mbps'] / same['info_mbps']:.0f}x")
    if args.device.startswith("cuda"):  # issue 23: GPU chain, Sionna eager/compiled, ratios
        from _gpu_link import run as run_gpu_link  # benchmarks/ is sys.path[0]

        run_gpu_link(args.device)


if __name__ == "__main__":
    main()
