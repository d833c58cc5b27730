"""Evaluate the bundled segmenter on held-out StreetScenes images, clean and JPEG-compressed.

    python scripts/eval_segmenter.py [--checkpoint semcomm/assets/segmenter.pt]
        [--split test] [--count 200] [--size 128 256] [--bpp 0.1 0.3 1.0] [--flip]

Prints per-class IoU and mIoU on ``count`` images of the held-out ``split`` ("test" by
default: never seen in training, which uses "train" and monitors on "val"), then mIoU
on the same images after JPEG compression at each target bpp. Rate control: for each
image, bisection on Pillow's integer JPEG quality (1..95, optimised Huffman tables,
4:2:0) for the highest quality whose file is <= the target bpp; when even quality 1
exceeds the target, quality 1 is used and the table says so (the achieved mean bpp is
printed beside each target).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import io  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from semcomm.data import CLASS_NAMES, NUM_CLASSES, StreetScenes  # noqa: E402
from semcomm.segmentation import BUNDLED_PATH, confusion, iou_from_confusion  # noqa: E402
from semcomm.segmentation.model import SegNet  # noqa: E402
from semcomm.segmentation.segmenters import BundledSegmenter  # noqa: E402
from semcomm.segmentation.train import export_weights, load_config  # noqa: E402


def jpeg_bytes(image: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def jpeg_at_bpp(image: np.ndarray, bpp: float) -> tuple[np.ndarray, float, int]:
    """(decoded [H,W,3] uint8, achieved bpp, quality): highest quality with bpp <= target."""
    pixels = image.shape[0] * image.shape[1]
    lo, hi = 1, 95
    best = jpeg_bytes(image, 1)
    q_best = 1
    while lo <= hi:
        q = (lo + hi) // 2
        data = jpeg_bytes(image, q)
        if 8 * len(data) / pixels <= bpp:
            best, q_best, lo = data, q, q + 1
        else:
            hi = q - 1
    decoded = np.asarray(Image.open(io.BytesIO(best)).convert("RGB"))
    return decoded, 8 * len(best) / pixels, q_best


def load_segmenter(path: str, flip: bool) -> BundledSegmenter:
    """A bundled export, or a training checkpoint (runs/.../checkpoint.pt) exported on the fly
    with the architecture of configs/segmenter.yaml."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    if "model" not in ck:
        return BundledSegmenter(path, flip=flip)
    arch = load_config(Path(__file__).resolve().parent.parent / "configs" / "segmenter.yaml")
    model = SegNet(arch.model.net_config())
    model.load_state_dict(ck["model"])
    with tempfile.TemporaryDirectory() as tmp:
        export_weights(model, Path(tmp) / "seg.pt", {"from": path})
        return BundledSegmenter(Path(tmp) / "seg.pt", flip=flip)


def score(
    seg: BundledSegmenter, images: list[np.ndarray], labels: list[np.ndarray]
) -> tuple[np.ndarray, float]:
    """Per-class IoU and mIoU over all images (one accumulated confusion matrix)."""
    conf = torch.zeros(NUM_CLASSES, NUM_CLASSES + 1, dtype=torch.int64)
    for i in range(0, len(images), 16):
        pred = seg.segment_uint8(np.stack(images[i : i + 16]))
        conf += confusion(pred, np.stack(labels[i : i + 16]))
    return iou_from_confusion(conf)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--checkpoint", default=str(BUNDLED_PATH))
    ap.add_argument("--split", default="test")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--size", type=int, nargs=2, default=[128, 256])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    ap.add_argument("--bpp", type=float, nargs="*", default=[0.1, 0.3, 1.0])
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_segmenter(args.checkpoint, args.flip)
    ds = StreetScenes(args.split, args.count, (args.size[0], args.size[1]), args.seed)
    samples = [ds[i] for i in range(len(ds))]
    images = [s.image for s in samples]
    labels = [s.labels for s in samples if s.labels is not None]
    iou, miou = score(model, images, labels)
    print(
        f"{args.checkpoint} on StreetScenes {args.split} seed={args.seed}, {len(ds)} images "
        f"{args.size[0]}x{args.size[1]}"
    )
    for name, v in zip(CLASS_NAMES, iou, strict=True):
        print(f"  {name:<14} IoU {v:.4f}")
    print(f"  mIoU (clean) = {miou:.4f}\n")
    print(f"{'target bpp':>10} {'mean bpp':>9} {'mean q':>7} {'at q=1':>7} {'mIoU':>7}")
    for bpp in args.bpp:
        coded = [jpeg_at_bpp(im, bpp) for im in images]
        _, m = score(model, [c[0] for c in coded], labels)
        floor = sum(c[2] == 1 and c[1] > bpp for c in coded)
        print(
            f"{bpp:>10.3f} {np.mean([c[1] for c in coded]):>9.3f} "
            f"{np.mean([c[2] for c in coded]):>7.1f} {floor:>7d} {m:>7.4f}"
        )
    print("(at q=1: images where even quality 1 exceeds the target; they are sent at q=1)")


if __name__ == "__main__":
    main()
