"""Inference speed of the bundled segmenter on the CPU.

    python benchmarks/segmenter_speed.py [--checkpoint ...] [--batch 16] [--size 128 256]
        [--threads 1 2] [--repeats 10] [--flip]

Prints images/s (median over ``repeats`` timed batches after 2 warm-up batches) for each
thread count, through ``BundledSegmenter.segment`` (argmax included, no autograd). The
issue's bar: >= 50 images/s at 128 x 256 on a 2-core CPU.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from semcomm.segmentation import BUNDLED_PATH, BundledSegmenter  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--checkpoint", default=str(BUNDLED_PATH))
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, nargs=2, default=[128, 256])
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--flip", action="store_true", help="with flip test-time augmentation")
    args = ap.parse_args()
    seg = BundledSegmenter(args.checkpoint, flip=args.flip)
    n_params = sum(p.numel() for p in seg.model.parameters())
    print(
        f"{args.checkpoint}: {n_params / 1e6:.2f} M parameters, "
        f"{os.path.getsize(args.checkpoint) / 1e6:.2f} MB; torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs visible"
    )
    x = torch.rand(
        args.batch, 3, args.size[0], args.size[1], generator=torch.Generator().manual_seed(0)
    )
    for threads in args.threads:
        torch.set_num_threads(threads)
        for _ in range(2):
            seg.segment(x)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            seg.segment(x)
            times.append(time.perf_counter() - t0)
        rate = args.batch / float(np.median(times))
        print(
            f"threads={threads} batch={args.batch} {args.size[0]}x{args.size[1]}: "
            f"{rate:.1f} images/s (median of {args.repeats}, best {args.batch / min(times):.1f})"
        )


if __name__ == "__main__":
    main()
