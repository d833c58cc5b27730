"""``semcomm data``: prepare training data once, for reuse across runs and machines.

::

    semcomm data render --out runs/ss_256x512 --count 20000 --size 256 512 [--split train]
        [--seed 0] [--projection pinhole|equirectangular] [--shard-size 256] [--workers N]

Then train from it: ``semcomm train amvq ... --dataset shards --data-root runs/ss_256x512``.
"""

from __future__ import annotations

import argparse
import time


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``semcomm data``."""
    verbs = parser.add_subparsers(dest="verb", required=True)
    render = verbs.add_parser("render", help="render StreetScenes (or panorama) shards")
    render.add_argument("--out", required=True, help="folder for the manifest and shards")
    render.add_argument("--count", type=int, required=True, help="number of images")
    render.add_argument("--size", type=int, nargs=2, default=[128, 256], metavar=("H", "W"))
    render.add_argument("--split", default="train", choices=("train", "val", "test"))
    render.add_argument("--seed", type=int, default=0)
    render.add_argument("--projection", default="pinhole",
                        choices=("pinhole", "equirectangular"))
    render.add_argument("--shard-size", type=int, default=256, help="images per shard file")
    render.add_argument("--workers", type=int, default=None,
                        help="rendering processes (default: every CPU core)")


def run(args: argparse.Namespace) -> int:
    """Render the shards; 0 on success (bad arguments raise ValueError -> exit 2)."""
    import sys

    from semcomm.data.shards import render_shards

    tic = time.perf_counter()
    try:
        path = render_shards(args.out, args.count, args.size, args.split, args.seed,
                             args.projection, args.shard_size, args.workers)
    except ValueError as err:
        print(f"semcomm data render: {err}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - tic
    print(f"{args.count} images ({args.projection}, {args.size[0]}x{args.size[1]}) in "
          f"{seconds:.1f} s -> {path}")
    return 0
