"""Speed of the ISC codec (map coder + networks + entropy coder) on the CPU, and its
rate / quality table per enhancement depth.

    python benchmarks/isc_speed.py [--checkpoint semcomm/assets/isc.pt]
        [--config configs/isc_compact.yaml] [--threads 1 2] [--images 8]
        [--packet-bytes 509] [--table 200] [--device cpu]

Times ``ISCCodec.encode`` (map majority vote + symbols, base encoder, SPADE generator,
residual encoder, residual VQ, range coding of every layer) and ``decode`` (layers ->
map, base image, enhancement) one image per call, on built-in street scenes (val split)
at the config's size (128 x 256 for the compact config), for each thread count and
each depth k (0 = base only). Times are medians after one warm-up image; images/s
counts encode + decode. The issue's bar: >= 10 images/s at 128 x 256 on the 2-core CPU.

``--table N`` adds the quality table of the issue: mean bpp (from the bytes), base and
enhancement bytes, PSNR and MS-SSIM per depth on N held-out images.

Without the shipped checkpoint a RANDOMLY INITIALISED model of the config is used, after
two training-mode passes over the benchmark images (data-driven codebooks) and with its
own histograms: the speed is that of a trained model, the bytes and quality are not.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from semcomm.codecs.base import RatePoint, ReceivedPayload  # noqa: E402
from semcomm.codecs.isc import DEFAULT_CHECKPOINT, ISC, ISCCodec, load_config  # noqa: E402
from semcomm.codecs.isc.model import count_parameters, map_onehot  # noqa: E402
from semcomm.codecs.isc.train import (  # noqa: E402
    collect_statistics,
    export_model,
    make_batch,
)
from semcomm.data import Sample, build_dataset  # noqa: E402
from semcomm.metrics import psnr  # noqa: E402


def _random_model_file(config: str, samples: list[Sample], seed: int, folder: Path) -> Path:
    """Export a randomly initialised model of ``config`` with data-driven codebooks."""
    torch.manual_seed(seed)
    cfg = load_config(config)
    model = ISC(cfg.model).train()
    x, m = make_batch(samples, range(len(samples)), cfg.model.map_factor)
    with torch.no_grad():
        for depth in (1, cfg.model.enh_stages):
            model(x, map_onehot(m), depth)
    model.eval()
    stats = collect_statistics(model, samples, len(samples), batch=4)
    return export_model(model, folder / "random_isc.pt", stats,
                        {"note": "randomly initialised (benchmark only)"})


def _row(codec: ISCCodec, samples: list[Sample], depth: int, label: str) -> str:
    enc_t, dec_t, sizes, base = [], [], [], []
    for i, smp in enumerate(samples):
        t0 = time.perf_counter()
        payload = codec.encode(smp.image, smp.labels, RatePoint(knob=depth))
        t1 = time.perf_counter()
        rec = codec.decode(ReceivedPayload(payload.data, payload.shape))
        t2 = time.perf_counter()
        if i:  # the first image warms up (and is checked for an exact decode)
            enc_t.append(t1 - t0)
            dec_t.append(t2 - t1)
        else:
            enc = codec.encode_detailed(smp.image, smp.labels, RatePoint(knob=depth))
            if not rec.ok or not np.array_equal(rec.image, enc.x_hat):
                raise RuntimeError(f"error-free decode failed or differs: {rec.error}")
            base.append(enc.layer_bytes[0])
        sizes.append(payload.bpp)
    enc_s, dec_s = float(np.median(enc_t)), float(np.median(dec_t))
    return (f"{label:>22} | {1e3 * enc_s:7.1f} {1e3 * dec_s:7.1f} | {1.0 / (enc_s + dec_s):8.2f}"
            f" | {np.mean(sizes):7.4f} {np.mean(base):7.1f}")


def _table(codec: ISCCodec, samples: list[Sample]) -> None:
    from semcomm.metrics import ms_ssim

    print(f"\nquality on {len(samples)} held-out images (single mode)\n"
          f"{'depth':>5} | {'bpp':>7} {'base B':>7} {'enh B':>7} | {'PSNR':>6} {'MS-SSIM':>7}")
    for depth in range(codec.stages + 1):
        bpp, base, enh, p, s = [], [], [], [], []
        for smp in samples:
            enc = codec.encode_detailed(smp.image, smp.labels, RatePoint(knob=depth))
            bpp.append(enc.payload.bpp)
            base.append(enc.layer_bytes[0])
            enh.append(sum(enc.layer_bytes[1:]))
            p.append(psnr(smp.image, enc.x_hat))
            s.append(ms_ssim(smp.image, enc.x_hat))
        print(f"{depth:>5} | {np.mean(bpp):7.4f} {np.mean(base):7.1f} {np.mean(enh):7.1f} | "
              f"{np.mean(p):6.2f} {np.mean(s):7.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    ap.add_argument("--config", default="configs/isc_compact.yaml",
                    help="architecture of the random model used without a checkpoint")
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--images", type=int, default=8, help="timed images + 1 warm-up")
    ap.add_argument("--packet-bytes", type=int, default=509)
    ap.add_argument("--table", type=int, default=0, help="held-out images for the table")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    size = tuple(load_config(args.config).model.image_size)
    data = build_dataset("streetscenes", split="val", count=max(args.images + 1, args.table),
                         size=size, seed=args.seed)
    samples = [data[i] for i in range(args.images + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.checkpoint)
        if path.is_file():
            print(f"model: {path} (trained checkpoint)")
        else:
            print(f"model: no checkpoint at {path}; RANDOMLY INITIALISED {args.config} "
                  "(speed is representative, bytes and quality are not)")
            path = _random_model_file(args.config, samples, args.seed, Path(tmp))
        single = ISCCodec(path, device=args.device)
        packets = ISCCodec(path, packet_bytes=args.packet_bytes, device=args.device)
        counts = count_parameters(single.model)
        print(f"{counts['total'] / 1e6:.2f} M parameters ("
              + ", ".join(f"{k} {v / 1e6:.2f} M" for k, v in counts.items() if k != "total")
              + f"), model file {path.stat().st_size / 1e6:.2f} MB")
        print(f"{size[0]}x{size[1]} street scenes, {args.images} timed images, device "
              f"{args.device}, torch {torch.__version__}, {os.cpu_count()} CPUs visible")
        for threads in args.threads:
            torch.set_num_threads(threads)
            print(f"\nthreads={threads}\n{'rate':>22} |  enc ms  dec ms | images/s |"
                  "     bpp  base B (1st image)")
            for depth in range(single.stages + 1):
                print(_row(single, samples, depth, f"k={depth}"))
            print(_row(packets, samples, single.stages,
                       f"k={single.stages}, {args.packet_bytes} B pkts"))
        if args.table:
            torch.set_num_threads(max(args.threads))
            _table(single, [data[i] for i in range(args.table)])


if __name__ == "__main__":
    main()
