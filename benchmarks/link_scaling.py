"""Fast-link throughput against worker threads, and the speed-up over one thread.

Rate-1/2 16-QAM, k = 4096, AWGN at Es/N0 6.3 dB (BLER ~0.15), at most 20 iterations.
Each measurement times one ``Link.transmit`` end to end (segmentation, CRC, LDPC encode,
QAM map, channel, demap, decode, CRC check) of ``blocks-per-thread x T`` code blocks on
``T`` worker threads, after a warm-up, and reports information bits (k = 4096 per block)
per second: the figure of issue 23 (5.3 Mbit/s on 1 thread, 33.6 on 16 of an H200 host).
Each number is the median of ``--repeats`` runs. "CPU us/block" is the process CPU time
per block (all threads): the work per block, which machine load disturbs less than the
wall-clock rate.

``--reference DIR`` also measures another checkout (e.g. main before a change) in the same
run: one worker process per checkout, interleaved repeat by repeat, so both see the same
machine load. Usage::

    python benchmarks/link_scaling.py                      # 1..all CPUs
    python benchmarks/link_scaling.py --threads 1 16       # the 16-core GPU host, < 60 s
    git worktree add /tmp/ref <commit>
    python benchmarks/link_scaling.py --reference /tmp/ref # before/after, same run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Runs inside a worker process whose sys.path starts with one checkout.
WORKER = r"""
import json, os, sys, time
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
from channels import Link, LinkConfig
cfg = LinkConfig(modulation="16qam", code_rate=0.5, k=4096, channel="awgn", bp_iterations=20)
links = {}
for line in sys.stdin:
    cmd = json.loads(line)
    key = (cmd["threads"], cmd["chunk"])
    if key not in links:
        links[key] = Link(cfg, chunk_blocks=cmd["chunk"], num_threads=cmd["threads"])
        warm = np.random.default_rng(0).integers(0, 256, 509 * 2 * cmd["threads"], np.uint8)
        links[key].transmit([warm], cmd["esno_db"], [0])  # compile/load kernels, start pool
    link = links[key]
    data = np.random.default_rng(1).integers(
        0, 256, cmd["blocks"] * link.block_payload_bytes, np.uint8)
    start, cpu = time.perf_counter(), time.process_time()
    r = link.transmit([data], cmd["esno_db"], [1])[0]
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "blocks": r.num_blocks,
                      "chunk": link.chunk_blocks,
                      "bler": r.block_errors / r.num_blocks,
                      "iterations": r.decoder_iterations / r.num_blocks}), flush=True)
"""


class Worker:
    """One process importing ``channels`` from ``tree``; answers one JSON line per command."""

    def __init__(self, tree: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER], cwd=tree, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, **cmd: object) -> dict[str, float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark worker exited with code {self.proc.wait()}")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()


def _physical_cores(cpus: set[int]) -> int:
    """Physical cores among ``cpus`` (SMT siblings counted once; len(cpus) if unknown)."""
    cores = set()
    for cpu in cpus:
        path = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        try:
            cores.add(path.read_text().strip())
        except OSError:
            return len(cpus)
    return len(cores)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else \
        set(range(os.cpu_count() or 1))
    cpus = len(usable)
    parser.add_argument("--threads", type=_positive, nargs="+",
                        default=list(range(1, cpus + 1)),
                        help="worker-thread counts to measure (default 1..all CPUs)")
    parser.add_argument("--repeats", type=_positive, default=5)
    parser.add_argument("--blocks-per-thread", type=_positive, default=400,
                        help="code blocks per measurement and thread")
    parser.add_argument("--chunk", type=_positive, default=None,
                        help="Link chunk_blocks (default: each checkout's own default)")
    parser.add_argument("--esno-db", type=float, default=6.3)
    parser.add_argument("--reference", type=Path, default=None,
                        help="another checkout to measure in the same run (before/after)")
    args = parser.parse_args()
    trees = {"this": ROOT}
    if args.reference is not None:
        if not (args.reference / "channels" / "link.py").is_file():
            print(f"--reference {args.reference}: no channels/link.py there", file=sys.stderr)
            return 2
        trees["reference"] = args.reference.resolve()
    print(f"rate-1/2 16-QAM k=4096 AWGN {args.esno_db} dB, <= 20 iterations; usable CPUs {cpus} "
          f"on {_physical_cores(usable)} physical cores; "
          f"load average {os.getloadavg()[0]:.1f}; {args.repeats} repeats, "
          f"{args.blocks_per_thread} blocks per thread")
    workers = {name: Worker(tree) for name, tree in trees.items()}
    runs: dict[tuple[str, int], list[dict[str, float]]] = {}
    t0 = time.perf_counter()
    try:
        for rep in range(args.repeats):
            order = list(workers) if rep % 2 == 0 else list(workers)[::-1]
            for name in order:
                for threads in args.threads:
                    m = workers[name].run(threads=threads, chunk=args.chunk,
                                          blocks=args.blocks_per_thread * threads,
                                          esno_db=args.esno_db)
                    runs.setdefault((name, threads), []).append(m)
    finally:
        for w in workers.values():
            w.close()
    _report(runs, trees, args.threads)
    print(f"load average at the end {os.getloadavg()[0]:.1f}; "
          f"wall time {time.perf_counter() - t0:.0f} s")
    return 0


def _mbps(m: dict[str, float]) -> float:
    return m["blocks"] * 4096 / m["seconds"] / 1e6


def _report(runs: dict[tuple[str, int], list[dict[str, float]]], trees: dict[str, Path],
            threads: list[int]) -> None:
    medians = {key: statistics.median(_mbps(m) for m in ms) for key, ms in runs.items()}
    for name, tree in trees.items():
        print(f"\n{name}: {tree}")
        one = medians.get((name, threads[0]))
        for t in threads:
            ms = runs[(name, t)]
            rates = sorted(_mbps(m) for m in ms)
            speedup = medians[(name, t)] / one if one else float("nan")
            print(f"  {t:3d} threads  chunk {ms[0]['chunk']:4.0f}  "
                  f"{medians[(name, t)]:8.2f} Mbit/s "
                  f"(min {rates[0]:7.2f}, max {rates[-1]:7.2f})  {medians[(name, t)] / t:6.2f} "
                  f"per thread  speed-up x{speedup:5.2f} vs {threads[0]} thread(s)  CPU "
                  f"{statistics.median(m['cpu_seconds'] / m['blocks'] for m in ms) * 1e6:4.0f} "
                  f"us/block  "
                  f"BLER {ms[0]['bler']:.3f}  iter/block {ms[0]['iterations']:.2f}")
    if "reference" in trees:
        print("\nthis / reference: " + ", ".join(
            f"{t} thr x{medians[('this', t)] / medians[('reference', t)]:.2f}" for t in threads))


if __name__ == "__main__":
    sys.exit(main())
