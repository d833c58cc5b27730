"""Per-class pixel shares of StreetScenes, generator speed, and the triviality check.

    python scripts/class_shares.py [--count 1000] [--size 128 256] [--seed 0] [--trivial]
                                   [--projection pinhole|equirectangular]

Prints images/s of the generator, the share of pixels of each trainId over ``count``
images, and the number of images each class occurs in. With ``--trivial`` it also fits
the best per-pixel colour classifier (majority class per RGB cell of a 32^3 histogram,
i.e. the Bayes rule on quantised colour, stronger than Gaussian naive Bayes) on
``--fit-count`` train images and prints its mIoU on as many val images: if colour alone
segmented the scenes this would be high; the dataset is designed to keep it < 0.6.
``--projection equirectangular`` measures the 360 x 180 degree panoramas instead (size
H x 2H; shares are per pixel, not weighted by solid angle).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from semcomm.data import CLASS_NAMES, NUM_CLASSES, VOID, StreetScenes  # noqa: E402
from semcomm.data.streetscenes import PROJECTIONS  # noqa: E402
from semcomm.segmentation import confusion, iou_from_confusion  # noqa: E402

BINS = 32  # colour cells per channel


def shares(ds: StreetScenes) -> tuple[np.ndarray, np.ndarray, int, float]:
    """(pixel counts [20] with void last, images containing each class [19], total, img/s)."""
    counts = np.zeros(NUM_CLASSES + 1, np.int64)
    present = np.zeros(NUM_CLASSES, np.int64)
    t0 = time.perf_counter()
    for i in range(len(ds)):
        lab = ds[i].labels
        assert lab is not None
        c = np.bincount(np.where(lab == VOID, NUM_CLASSES, lab).ravel(), minlength=NUM_CLASSES + 1)
        counts += c
        present += c[:NUM_CLASSES] > 0
    rate = len(ds) / (time.perf_counter() - t0)
    return counts, present, int(counts.sum()), rate


def colour_cells(image: np.ndarray) -> np.ndarray:
    q = image.astype(np.int64) * BINS // 256
    return (q[..., 0] * BINS + q[..., 1]) * BINS + q[..., 2]


def trivial_miou(
    seed: int, count: int, size: tuple[int, int], projection: str = "pinhole"
) -> tuple[np.ndarray, float]:
    """Fit the per-colour majority classifier on train, score on val."""
    hist = np.zeros((BINS**3, NUM_CLASSES), np.int64)
    fit = StreetScenes("train", count, size, seed, projection=projection)
    for i in range(count):
        s = fit[i]
        assert s.labels is not None
        keep = s.labels != VOID
        np.add.at(hist, (colour_cells(s.image)[keep], s.labels[keep].astype(np.int64)), 1)
    rule = hist.argmax(1)
    conf = torch.zeros(NUM_CLASSES, NUM_CLASSES + 1, dtype=torch.int64)
    val = StreetScenes("val", count, size, seed, projection=projection)
    for i in range(count):
        s = val[i]
        assert s.labels is not None
        conf += confusion(rule[colour_cells(s.image)], s.labels)
    return iou_from_confusion(conf)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--size", type=int, nargs=2, default=[128, 256])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="train")
    ap.add_argument("--trivial", action="store_true")
    ap.add_argument("--fit-count", type=int, default=200)
    ap.add_argument("--projection", choices=list(PROJECTIONS), default="pinhole")
    args = ap.parse_args()
    torch.set_num_threads(1)
    size = (args.size[0], args.size[1])
    ds = StreetScenes(args.split, args.count, size, args.seed, projection=args.projection)
    counts, present, total, rate = shares(ds)
    print(
        f"StreetScenes {args.split} seed={args.seed} {size[0]}x{size[1]} {args.projection}: "
        f"{args.count} images, generator {rate:.1f} images/s (1 thread)"
    )
    print(f"{'id':>3} {'class':<14} {'share %':>8} {'in images':>10}")
    for c, name in enumerate(CLASS_NAMES):
        print(f"{c:>3} {name:<14} {100 * counts[c] / total:8.3f} {present[c]:>10}")
    print(f"255 {'void':<14} {100 * counts[-1] / total:8.3f}")
    if args.trivial:
        iou, miou = trivial_miou(args.seed, args.fit_count, size, args.projection)
        print(
            f"\ntriviality check: per-pixel colour classifier ({BINS}^3 RGB cells, fit on "
            f"{args.fit_count} train, scored on {args.fit_count} val images)"
        )
        print("  " + " ".join(f"{n}={v:.2f}" for n, v in zip(CLASS_NAMES, iou, strict=True)))
        print(f"  mIoU = {miou:.4f} (designed to stay < 0.6)")


if __name__ == "__main__":
    main()
