"""Full-chain link throughput: the fast chain vs Sionna's, at equal thread counts.

Rate-1/2 16-QAM, k = 4096 (LDPC information bits incl. the 24 CRC bits), AWGN at the
waterfall (Es/N0 6.3 dB: BLER about 0.1), at most 20 iterations. Each measurement times
``Link.transmit`` end to end (segmentation, CRC, LDPC encoding, scrambling, mapping,
channel, demapping, descrambling, decoding, CRC check) after a warm-up call (numba
compilation), repeats it ``--repeats`` times (>= 5) and reports the **median**, in LDPC
information Mbit/s (4096 bits per block) and payload Mbit/s (4072).

Sections (each a function in ``SECTIONS``; add one for another chain or device):

* ``cpu``: for each thread count T of ``--threads`` (default 1): the fast chain with T
  worker threads, with and without scrambling (its cost, which must stay <= 10 %), and
  Sionna's chain (eager PyTorch on the CPU, ``torch.set_num_threads(T)``) with its
  default decoder (boxplus-phi, flooding) and with the fast decoder's algorithm
  (layered offset min-sum); lines ``... Sionna ...: <ratio>x``.
* ``gpu`` (issue 23; the default section with ``--device cuda:N``):
  ``benchmarks/_gpu_link.py``'s ``run``: the GPU chain (``decoder="gpu"``, scrambled,
  with its stage split; unscrambled for the scrambling cost; stage by stage), the
  decoder alone, the numba chain through ``Link`` at 1 thread and at all threads, the GPU
  chain through ``Link``, Sionna eager and ``torch.compile``d on the GPU, and the ratios
  (lines ``ratio gpu chain / sionna ...: <ratio>x``), at Es/N0 8 dB.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/link_throughput.py [--threads 1 2]
        [--blocks 400] [--sionna-blocks 16] [--repeats 5] [--skip-layered]
    python benchmarks/link_throughput.py --device cuda:0     # the GPU section, one run
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from channels import Link, LinkConfig  # noqa: E402

BASE = dict(modulation="16qam", code_rate=0.5, k=4096, channel="awgn", bp_iterations=20)


def measure(cfgs: list[LinkConfig], blocks: int, esno_db: float, repeats: int,
            threads: int | None = None) -> list[dict[str, float]]:
    """Median over ``repeats`` timed ``transmit`` calls of ``blocks`` random full blocks,
    per config; the configs' repeats are interleaved (A B A B ...) so that load from
    other processes hits them alike."""
    links = [Link(cfg, num_threads=threads) for cfg in cfgs]
    rng = np.random.default_rng(0)
    for link in links:  # warm-up (numba compilation, Sionna graph build)
        link.transmit([rng.integers(0, 256, link.block_payload_bytes, dtype=np.uint8)],
                      esno_db, [0])
    data = rng.integers(0, 256, blocks * links[0].block_payload_bytes, dtype=np.uint8)
    seconds: list[list[float]] = [[] for _ in links]
    errors, iters = [0] * len(links), [0] * len(links)
    for rep in range(repeats):
        for i, link in enumerate(links):
            start = time.perf_counter()
            r = link.transmit([data], esno_db, [1 + rep])[0]
            seconds[i].append(time.perf_counter() - start)
            errors[i] += r.block_errors
            iters[i] += r.decoder_iterations
    out = []
    for cfg, link, sec, err, it in zip(cfgs, links, seconds, errors, iters, strict=True):
        med = statistics.median(sec)
        assert cfg.k is not None
        out.append({
            "blocks": blocks, "bler": err / (blocks * repeats),
            "iterations": it / (blocks * repeats), "seconds": med,
            "spread": (max(sec) - min(sec)) / med,
            "payload_mbps": blocks * link.block_payload_bytes * 8 / med / 1e6,
            "info_mbps": blocks * cfg.k / med / 1e6,
        })
    return out


def report(name: str, m: dict[str, float]) -> None:
    print(f"{name:<46} blocks {m['blocks']:5.0f}  BLER {m['bler']:.3f}  "
          f"iter/block {m['iterations']:5.2f}  median {m['seconds']:7.3f} s "
          f"(range {100 * m['spread']:4.1f} %)  payload {m['payload_mbps']:8.3f} Mbit/s  "
          f"info {m['info_mbps']:8.3f} Mbit/s")


def section_cpu(args: argparse.Namespace) -> None:
    """Fast vs Sionna on the CPU at equal thread counts; the cost of scrambling."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"rate-1/2 16-QAM k=4096 AWGN Es/N0={args.esno_db} dB, 20 iterations, median of "
          f"{args.repeats}; usable cpus {cpus}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        fast, plain = measure([LinkConfig(**BASE), LinkConfig(**BASE, scrambling=False)],
                              args.blocks, args.esno_db, args.repeats, threads)
        report(f"fast, scrambled ({threads} thr)", fast)
        report(f"fast, unscrambled ({threads} thr)", plain)
        cost = 1 - fast["info_mbps"] / plain["info_mbps"]
        print(f"scrambling cost on fast-chain throughput ({threads} thr): {100 * cost:.1f} %")
        (ref,) = measure([LinkConfig(**BASE, decoder="sionna", cn_update="boxplus-phi",
                                     cn_schedule="flooding")],
                         args.sionna_blocks, args.esno_db, args.repeats)
        report(f"sionna eager, boxplus-phi flooding ({threads} thr)", ref)
        print(f"speed-up fast / Sionna default (boxplus-phi, flooding), {threads} thread(s) "
              f"each: {fast['info_mbps'] / ref['info_mbps']:.1f}x")
        if not args.skip_layered:
            (same,) = measure([LinkConfig(**BASE, decoder="sionna")],
                              max(4, args.sionna_blocks // 4), args.esno_db, args.repeats)
            report(f"sionna eager, layered offset-ms ({threads} thr)", same)
            print(f"speed-up fast / Sionna same algorithm (layered offset min-sum), "
                  f"{threads} thread(s) each: {fast['info_mbps'] / same['info_mbps']:.1f}x")


def section_gpu(args: argparse.Namespace) -> None:
    """The GPU chain vs Sionna (eager, compiled) vs numba at 1 and all threads, ratios."""
    if not args.device.startswith("cuda") or not torch.cuda.is_available():
        print(f"gpu section: device {args.device!r} is not an available CUDA device; skipped")
        return
    from _gpu_link import run as run_gpu_link  # benchmarks/ is sys.path[0]

    run_gpu_link(args.device, sionna_compile=not args.skip_sionna_compile)


#: name -> section; a device-specific section (e.g. a GPU decoder) is added here.
SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {"cpu": section_cpu,
                                                             "gpu": section_gpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--esno-db", type=float, default=6.3)
    parser.add_argument("--blocks", type=int, default=400, help="blocks per fast repeat")
    parser.add_argument("--sionna-blocks", type=int, default=16,
                        help="blocks per Sionna repeat (a quarter for the layered one)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (>= 5)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1],
                        help="thread counts, each used by both chains")
    parser.add_argument("--skip-layered", action="store_true",
                        help="skip Sionna's layered offset min-sum (very slow in eager mode)")
    parser.add_argument("--device", default="cpu",
                        help="cuda:N runs the gpu section (default sections: gpu)")
    parser.add_argument("--skip-sionna-compile", action="store_true",
                        help="gpu section: skip Sionna's torch.compile (about a minute)")
    parser.add_argument("--sections", nargs="+", default=None, choices=list(SECTIONS),
                        help="default: cpu, or gpu with --device cuda:N")
    args = parser.parse_args()
    if args.sections is None:
        args.sections = ["gpu"] if args.device.startswith("cuda") else ["cpu"]
    if args.repeats < 5:
        parser.error(f"--repeats {args.repeats} must be >= 5 (the median needs them)")
    if any(t < 1 for t in args.threads):
        parser.error(f"--threads {args.threads} must all be >= 1")
    for name in args.sections:
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
