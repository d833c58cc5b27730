"""Speed of the AM-VQ codec (model + activation map + entropy coder) on the CPU.

    python benchmarks/amvq_speed.py [--checkpoint semcomm/assets/amvq.pt]
        [--config configs/amvq_compact.yaml] [--threads 1 2] [--images 8]
        [--taus 0 0.3 1.0] [--bpp 0.5] [--packet-bytes 509] [--device cpu] [--processes 2]

Times ``AMVQCodec.encode`` (image -> features, activation map with its gradient,
entropy-coded bytes) and ``decode`` (bytes -> x_hat), one image per call as the codec
works, on built-in street scenes at the config's size (128 x 256 for the compact config),
for each thread count. Rows: fixed thresholds (``RatePoint(knob=tau)``), a bpp target
(bisection over the tau grid: several entropy encodes, one network pass), and packet mode
at ``--packet-bytes``. Times are medians over the images after one warm-up image;
images/s counts encode + decode. The issue's bar: >= 10 images/s at 128 x 256 on the
2-core CPU.

Without the shipped checkpoint a RANDOMLY INITIALISED model of the config is used, after
two training-mode passes over the benchmark images (data-driven codebooks and float
ranges) and with its own histograms: the speed is that of a trained model, the bytes and
the quality are not.

``--processes N`` adds the machine's throughput: N single-threaded processes code
their own images at once at the middle knob (``_throughput.py``), as a runner with
``--workers N`` does; on the 2-core CPU, N = 2.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _throughput import throughput  # noqa: E402

from semcomm.codecs.amvq import AMVQ, DEFAULT_CHECKPOINT, AMVQCodec, load_config  # noqa: E402
from semcomm.codecs.amvq.activation import unquantized_mask  # noqa: E402
from semcomm.codecs.amvq.model import count_parameters  # noqa: E402
from semcomm.codecs.amvq.train import (  # noqa: E402
    collect_statistics,
    export_model,
    make_batch,
)
from semcomm.codecs.base import RatePoint, ReceivedPayload  # noqa: E402
from semcomm.data import Sample, build_dataset  # noqa: E402
from semcomm.metrics import psnr  # noqa: E402


def _random_model_file(config: str, samples: list[Sample], seed: int, folder: Path) -> Path:
    """Export a randomly initialised model of ``config`` with data-driven codebooks."""
    torch.manual_seed(seed)
    cfg = load_config(config)
    model = AMVQ(cfg.model).train()
    x = make_batch(samples, range(len(samples)))
    with torch.no_grad():
        for tau in (0.3, 1.0):
            model(x, tau)
    model.eval()
    stats = collect_statistics(model, samples, cfg.train.tau_choices, len(samples), batch=4)
    return export_model(model, folder / "random_amvq.pt", stats,
                        {"note": "randomly initialised (benchmark only)"})


def _row(codec: AMVQCodec, samples: list[Sample], rate: RatePoint, label: str) -> str:
    enc_t, dec_t, sizes, sent, quality = [], [], [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an unreachable bpp target is shown by its bpp
        for i, smp in enumerate(samples):
            t0 = time.perf_counter()
            payload = codec.encode(smp.image, None, rate)
            t1 = time.perf_counter()
            rec = codec.decode(ReceivedPayload(payload.data, payload.shape))
            t2 = time.perf_counter()
            if not rec.ok:
                raise RuntimeError(f"error-free decode failed: {rec.error}")
            if i:  # the first image warms up
                enc_t.append(t1 - t0)
                dec_t.append(t2 - t1)
            sizes.append(payload.bpp)
            quality.append(psnr(smp.image, rec.image))
            tau = payload.knob if payload.knob is not None else 0.0
            an = codec.analyze(smp.image)
            kept = sum(int(unquantized_mask(a.a, tau).sum()) for a in an)
            sent.append(kept / sum(a.a.numel() for a in an))
    enc, dec = float(np.median(enc_t)), float(np.median(dec_t))
    return (f"{label:>24} | {1e3 * enc:7.1f} {1e3 * dec:7.1f} | {1.0 / (enc + dec):8.2f} | "
            f"{np.mean(sizes):7.4f} {np.mean(sent):6.3f} {np.mean(quality):7.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    ap.add_argument("--config", default="configs/amvq_compact.yaml",
                    help="architecture of the random model used without a checkpoint")
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--images", type=int, default=8, help="timed images + 1 warm-up")
    ap.add_argument("--taus", type=float, nargs="*", default=[0.0, 0.3, 1.0])
    ap.add_argument("--bpp", type=float, nargs="*", default=[0.5])
    ap.add_argument("--packet-bytes", type=int, default=509)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--processes", type=int, default=0,
                    help="also measure throughput with N single-threaded processes coding "
                         "images at once at the middle knob (0: skip)")
    args = ap.parse_args()

    size = tuple(load_config(args.config).model.image_size)
    data = build_dataset("streetscenes", split="val", count=args.images + 1, size=size,
                         seed=args.seed)
    samples = [data[i] for i in range(len(data))]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.checkpoint)
        if path.is_file():
            print(f"model: {path} (trained checkpoint)")
        else:
            print(f"model: no checkpoint at {path}; RANDOMLY INITIALISED {args.config} "
                  "(speed is representative, bytes and quality are not)")
            path = _random_model_file(args.config, samples, args.seed, Path(tmp))
        single = AMVQCodec(path, device=args.device)
        packets = AMVQCodec(path, packet_bytes=args.packet_bytes, device=args.device)
        counts = count_parameters(single.model)
        print(f"{counts['total'] / 1e6:.2f} M parameters (encoder {counts['encoder'] / 1e6:.2f}"
              f" M, decoder {counts['decoder'] / 1e6:.2f} M), model file "
              f"{path.stat().st_size / 1e6:.2f} MB, float_bits {single.float_bits}")
        print(f"{size[0]}x{size[1]} street scenes, {args.images} timed images, device "
              f"{args.device}, torch {torch.__version__}, {os.cpu_count()} CPUs visible")
        for threads in args.threads:
            torch.set_num_threads(threads)
            print(f"\nthreads={threads}\n{'rate':>24} |  enc ms  dec ms | images/s |"
                  "     bpp  unq.fr    PSNR")
            for tau in args.taus:
                print(_row(single, samples, RatePoint(knob=tau), f"tau={tau:g}"))
            for bpp in args.bpp:
                print(_row(single, samples, RatePoint(bpp=bpp), f"bpp<={bpp:g} (search)"))
            tau = args.taus[len(args.taus) // 2]
            print(_row(packets, samples, RatePoint(knob=tau),
                       f"tau={tau:g}, {args.packet_bytes} B pkts"))
        if args.processes:
            tau = args.taus[len(args.taus) // 2]
            print(f"\nthroughput at tau={tau:g}, one packet: " + str(throughput(
                "amvq", {"checkpoint": str(path), "device": args.device},
                {"name": "streetscenes", "split": "val", "size": size, "seed": args.seed},
                {"knob": tau}, args.processes, args.images)))


if __name__ == "__main__":
    main()
