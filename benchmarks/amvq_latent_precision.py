"""How much does an AM-VQ model's decoder use latent precision beyond its codebook?

    python benchmarks/amvq_latent_precision.py [--checkpoint semcomm/assets/amvq.pt]
        [--images 16] [--projection pinhole|equirectangular] [--threads 1]

AM-VQ's rate knob tau only buys quality if the decoder renders detail from the
unquantized vectors that the code vectors lack. This script decodes the same encoder
output four ways, on built-in test images at the model's size, and prints mean PSNR:

* ``codes``: every position replaced by its nearest code vector (plain VQ, tau = 0);
* ``floats``: every position sent exactly (no quantization at all: the upper bound of
  any tau, above the codec's tau = 1, which sends only positions with map > 0);
* ``floats, SQ``: every position scalar-quantized as the codec sends floats
  (``float_bits`` of the model);
* ``shuffled residual``: code vectors plus the residuals z - e of other positions of
  the same image (same statistics, no information): the decoder's sensitivity to
  noise of the residual's size.

With the relative quantization error ||z - e|| / ||z|| beside it. If ``floats`` is
barely above ``codes``, no threshold can make tau matter: the decoder, not the
quantizer, limits quality.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from semcomm.codecs.amvq import DEFAULT_CHECKPOINT, AMVQCodec  # noqa: E402
from semcomm.data import build_dataset  # noqa: E402
from semcomm.metrics import psnr  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--projection", default="pinhole", choices=("pinhole", "equirectangular"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    codec = AMVQCodec(args.checkpoint)
    model = codec.model
    size = tuple(model.config.image_size)
    data = build_dataset("streetscenes", split="test", count=args.images, size=size,
                         seed=args.seed, projection=args.projection)
    gen = torch.Generator().manual_seed(args.seed)
    out: dict[str, list[float]] = {"codes": [], "floats": [], "floats, SQ": [],
                                   "shuffled residual": []}
    rel: list[float] = []
    for i in range(len(data)):
        img = data[i].image
        analysis = codec.analyze(img)
        zs = [a.z for a in analysis]
        es = [model.lookup(s, a.indices) for s, a in enumerate(analysis)]
        sq = []
        for s, z in enumerate(zs):
            q = model.scalar_quantizer(s)
            sq.append(torch.from_numpy(q.dequantize(q.quantize(z.numpy()))))
        shuffled = []
        for z, e in zip(zs, es, strict=True):
            r = (z - e).flatten(2)
            shuffled.append(e + r[:, :, torch.randperm(r.shape[2], generator=gen)].view_as(e))
        rel.extend(float((z - e).norm() / z.norm()) for z, e in zip(zs, es, strict=True))
        for name, latents in (("codes", es), ("floats", zs), ("floats, SQ", sq),
                              ("shuffled residual", shuffled)):
            x_hat = (model.decode(latents)[0].clamp(0.0, 1.0) * 255.0).round()
            out[name].append(psnr(img, x_hat.to(torch.uint8).permute(1, 2, 0).numpy()))
    print(f"{args.checkpoint}: {len(data)} {args.projection} test images "
          f"{size[0]}x{size[1]}, relative quantization error ||z - e|| / ||z|| = "
          f"{np.mean(rel):.3f} (mean over images and scales)")
    for name, values in out.items():
        print(f"{name:>18}: PSNR {np.mean(values):6.2f} dB")


if __name__ == "__main__":
    main()
