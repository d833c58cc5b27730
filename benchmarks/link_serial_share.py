"""How much of ``Link.transmit`` holds the GIL: the serial share that caps thread scaling.

Worker threads only run in parallel while they are inside code that releases the GIL (the
numba kernels, NumPy's inner loops). This script runs the fast link on one thread and
splits its CPU time by instrumenting the kernels:

* ``numba``: the compiled kernels (encode, map, channel draws, demap, decode, CRC), which
  release the GIL;
* ``numpy bulk``: NumPy work that releases the GIL in its inner loop (the rate-recovery
  scatter, and in old checkouts the ``Generator`` fill of the noise), and the whole-array
  NumPy functions the link calls per batch (``concatenate``, ``unpackbits``, ``packbits``,
  ``full``, ``zeros``, ``clip``; their argument handling holds the GIL, so the share
  without them is a lower bound);
* ``glue``: everything else, i.e. Python, small NumPy calls, ``SeedSequence`` and
  ``Generator`` construction, numba's argument unboxing. It holds the GIL (an upper
  bound: part of the NumPy calls in it release the GIL inside).

With a serial share f, T threads gain at most ``1 / (f + (1 - f) / T)`` (Amdahl). Usage::

    python benchmarks/link_serial_share.py [--tree DIR] [--chunk 16 64] [--blocks 1024]

``--tree`` measures another checkout (e.g. main before a change).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

#: (module, attribute, category) of the timed callables; missing ones are skipped.
TIMED = (
    ("channels.ldpc", "_encode_batch", "numba"),
    ("channels.ldpc", "_decode_batch", "numba"),
    ("channels.modulation", "_map", "numba"),
    ("channels.modulation", "_demap", "numba"),
    ("channels.segmentation", "_crc24_rows", "numba"),
    ("channels.channel", "_block_draws", "numba"),
    ("channels.channel", "_complex_normal", "numpy bulk"),
)


def _instrument(acc: dict[str, float]) -> None:
    """Wrap the TIMED callables (and FastLdpcDecoder.recover) to add CPU time to acc."""
    import importlib

    depth = [0]

    def wrap(owner: Any, name: str, cat: str) -> None:
        inner = getattr(owner, name)

        @functools.wraps(inner)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if depth[0]:
                return inner(*args, **kwargs)
            depth[0] += 1
            start = time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                acc[cat] += time.thread_time() - start
                depth[0] -= 1

        setattr(owner, name, timed)

    for module, name, cat in TIMED:
        mod = importlib.import_module(module)
        if hasattr(mod, name):
            wrap(mod, name, cat)
    from channels.ldpc import FastLdpcDecoder

    wrap(FastLdpcDecoder, "recover", "numpy bulk")
    import numpy as np

    for name in ("concatenate", "unpackbits", "packbits", "full", "zeros", "clip"):
        wrap(np, name, "numpy bulk")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--chunk", type=int, nargs="+", default=[0],
                        help="chunk_blocks to try (0: the checkout's default)")
    parser.add_argument("--blocks", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not (args.tree / "channels" / "link.py").is_file():
        print(f"--tree {args.tree}: no channels/link.py there", file=sys.stderr)
        return 2
    sys.path.insert(0, str(args.tree))
    import numpy as np

    from channels import Link, LinkConfig

    acc = {"numba": 0.0, "numpy bulk": 0.0}
    _instrument(acc)
    cfg = LinkConfig(modulation="16qam", code_rate=0.5, k=4096, channel="awgn", bp_iterations=20)
    print(f"{args.tree}: rate-1/2 16-QAM k=4096 AWGN 6.3 dB, 1 thread, {args.blocks} blocks, "
          f"median of {args.repeats} (CPU time)")
    for chunk in args.chunk:
        link = Link(cfg, chunk_blocks=chunk or None, num_threads=1)
        data = np.random.default_rng(1).integers(0, 256, args.blocks * 509, np.uint8)
        link.transmit([data[: 509 * 4]], 6.3, [0])  # warm-up
        rows = []
        for _ in range(args.repeats):
            acc.update({k: 0.0 for k in acc})
            start = time.thread_time()
            link.transmit([data], 6.3, [1])
            total = time.thread_time() - start
            rows.append((total, acc["numba"], acc["numpy bulk"]))
        total, kern, bulk = (statistics.median(r[i] for r in rows) for i in range(3))
        glue = max(total - kern - bulk, 0.0)
        f = glue / total
        print(f"  chunk {link.chunk_blocks:4d}: {total / args.blocks * 1e6:5.0f} us/block; numba "
              f"{100 * kern / total:4.1f}%, numpy bulk {100 * bulk / total:4.1f}%, GIL-held glue "
              f"{100 * f:4.1f}% -> Amdahl bound x{1 / (f + (1 - f) / 16):4.1f} on 16 threads, "
              f"x{1 / (f + (1 - f) / 2):4.2f} on 2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
