"""Speed and efficiency of ``semcomm.bitstream`` on the CPU.

    python benchmarks/bitstream_speed.py [--sizes 16x32 256x512 1024x1024] [--ks 1024 16384]
        [--kept 1.0 0.3] [--packet-bytes 509] [--seed 0]

For each grid size, alphabet K and kept fraction m it draws indices from a skewed known
distribution (p_k ~ (k+1)^-1.1; the prior is that distribution) and an i.i.d. mask, and
prints

* encode / decode speed in grid positions per second (single-packet mode; median of
  repeats, small grids repeated to ~0.2 s), and in packet mode;
* bits per kept token: coded (all bytes of the single-packet payload, header and mask
  included) against the ideal (n h2(m) + sum -log2 p(x)) / kept and log2 K;
* packet-mode overhead at ``--packet-bytes``: bytes in packet mode / bytes in single mode.

One thread (constriction is single-threaded; OMP pinned for the NumPy parts).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from semcomm.bitstream import (  # noqa: E402
    PayloadSpec,
    Prior,
    TokenGrid,
    decode_payload,
    encode_payload,
)


def _rate(fn: Callable[[], object], items: int, budget_s: float = 0.2) -> float:
    """Items per second: median over repeats of ``fn`` (at least 3, about budget_s total)."""
    times: list[float] = []
    t_end = time.perf_counter() + budget_s
    while len(times) < 3 or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return items / float(np.median(times))


def _h2(m: float) -> float:
    return 0.0 if m in (0.0, 1.0) else float(-m * np.log2(m) - (1 - m) * np.log2(1 - m))


def _row(rng: np.random.Generator, shape: tuple[int, int], k: int, kept: float, pb: int) -> str:
    p = 1.0 / np.arange(1, k + 1) ** 1.1
    prior = Prior(p / p.sum())
    idx = rng.choice(k, size=shape, p=prior.probs)
    mask = None if kept >= 1.0 else rng.random(shape) < kept
    grid = TokenGrid(name="x", indices=idx, prior=prior, mask=mask)
    n = idx.size
    n_kept = n if mask is None else int(mask.sum())
    ideal = prior.information_bits(idx if mask is None else idx[mask])
    if mask is not None:
        ideal += n * _h2(float(mask.mean()))
    single, packets = encode_payload([grid]), encode_payload([grid], pb)
    spec1, spec_p = PayloadSpec.of([grid]), PayloadSpec.of([grid], pb)
    assert decode_payload(single, spec1).ok and decode_payload(packets, spec_p).ok
    enc1 = _rate(lambda: encode_payload([grid]), n)
    dec1 = _rate(lambda: decode_payload(single, spec1), n)
    encp = _rate(lambda: encode_payload([grid], pb), n)
    decp = _rate(lambda: decode_payload(packets, spec_p), n)
    coded = 8 * len(single) / max(n_kept, 1)
    return (f"{shape[0]:>4}x{shape[1]:<5} {k:>6} {kept:>5.2f} | "
            f"{enc1 / 1e6:7.2f} {dec1 / 1e6:7.2f} | {encp / 1e6:7.2f} {decp / 1e6:7.2f} | "
            f"{coded:8.3f} {ideal / max(n_kept, 1):8.3f} "
            f"{np.log2(k):5.1f} | {len(single):>8} {len(packets):>8} "
            f"{100 * (len(packets) / len(single) - 1):6.1f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="*", default=["16x32", "256x512", "1024x1024"])
    ap.add_argument("--ks", type=int, nargs="*", default=[1024, 16384])
    ap.add_argument("--kept", type=float, nargs="*", default=[1.0, 0.3])
    ap.add_argument("--packet-bytes", type=int, default=509)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    pb = args.packet_bytes
    print("positions/s in millions; bits per kept token: coded (whole payload) vs ideal "
          "(entropy under the model, mask included) vs log2 K; bytes single vs "
          f"packets of {pb} B")
    print(f"{'grid':>10} {'K':>6} {'kept':>5} | {'enc1':>7} {'dec1':>7} | {'encP':>7} "
          f"{'decP':>7} | {'coded':>8} {'ideal':>8} {'log2K':>5} | {'single':>8} "
          f"{'packets':>8} {'ovh':>7}")
    for size in args.sizes:
        h, w = (int(v) for v in size.lower().split("x"))
        for k in args.ks:
            for kept in args.kept:
                print(_row(rng, (h, w), k, kept, pb), flush=True)


if __name__ == "__main__":
    main()
