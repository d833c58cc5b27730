"""Speed of the SQ-GAN codec (model + entropy coder + packets) on the CPU.

    python benchmarks/sqgan_speed.py [--checkpoint semcomm/assets/sqgan.pt]
        [--config configs/sqgan_compact.yaml] [--threads 1 2] [--images 8]
        [--knobs 0.05 0.2875 1.0] [--bpp 0.05] [--packet-bytes 509] [--m-s-ratio 1]
        [--device cpu] [--processes 2]

Times ``SQGANCodec.encode`` (image + map -> bytes) and ``decode`` (bytes -> x_hat, s_hat),
one image per call as the codec works, on built-in street scenes at the config's size
(128 x 256 for the compact config), for each thread count. Rows: fixed kept fractions
(``RatePoint(knob=m)``), a bpp target (the rate control's bisection over the m grid),
and packet mode at ``--packet-bytes``. Times are medians over the images after one
warm-up image; images/s counts encode + decode.

Without the shipped checkpoint a RANDOMLY INITIALISED model of the config is used (its
priors from its own index histogram on the benchmark images): the speed is that of the
trained model, the bytes and the quality are not.

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

from semcomm.codecs.base import RatePoint, ReceivedPayload  # noqa: E402
from semcomm.codecs.sqgan import DEFAULT_CHECKPOINT, SQGAN, SQGANCodec, load_config  # noqa: E402
from semcomm.codecs.sqgan.train import collect_index_counts, export_model  # noqa: E402
from semcomm.data import Sample, build_dataset  # noqa: E402


def _random_model_file(config: str, samples: list[Sample], seed: int, folder: Path) -> Path:
    """Export a randomly initialised model of ``config`` with its own index histograms."""
    torch.manual_seed(seed)
    model = SQGAN(load_config(config).model).eval()
    counts = collect_index_counts(model, samples, (0.05, 0.2875, 0.525, 0.7625, 1.0),
                                  count=len(samples), batch=1)
    return export_model(model, folder / "random_sqgan.pt", counts,
                        {"note": "randomly initialised (benchmark only)"})


def _row(codec: SQGANCodec, samples: list[Sample], rate: RatePoint, label: str) -> str:
    enc_t, dec_t, sizes, analytic = [], [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an unreachable bpp target is shown by its bpp
        for i, smp in enumerate(samples):
            t0 = time.perf_counter()
            payload = codec.encode(smp.image, smp.labels, rate)
            t1 = time.perf_counter()
            rec = codec.decode(ReceivedPayload(payload.data, payload.shape))
            t2 = time.perf_counter()
            if not rec.ok:
                raise RuntimeError(f"error-free decode failed: {rec.error}")
            if i:  # the first image warms up
                enc_t.append(t1 - t0)
                dec_t.append(t2 - t1)
            sizes.append(payload.bpp)
            analytic.append(codec.analytic_rate(payload).bpp)
    enc, dec = float(np.median(enc_t)), float(np.median(dec_t))
    return (f"{label:>22} | {1e3 * enc:8.1f} {1e3 * dec:8.1f} | {1.0 / (enc + dec):9.2f} | "
            f"{np.mean(sizes):8.4f} {np.mean(analytic):8.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    ap.add_argument("--config", default="configs/sqgan_compact.yaml",
                    help="architecture of the random model used without a checkpoint")
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--images", type=int, default=8, help="timed images + 1 warm-up")
    ap.add_argument("--knobs", type=float, nargs="*", default=[0.05, 0.2875, 1.0])
    ap.add_argument("--bpp", type=float, nargs="*", default=[0.05])
    ap.add_argument("--packet-bytes", type=int, default=509)
    ap.add_argument("--m-s-ratio", type=float, default=1.0,
                    help="semantic kept fraction m_s = min(1, ratio * m) (the codec's m_s_ratio)")
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
        single = SQGANCodec(path, device=args.device, m_s_ratio=args.m_s_ratio)
        packets = SQGANCodec(path, packet_bytes=args.packet_bytes, device=args.device,
                             m_s_ratio=args.m_s_ratio)
        print(f"{size[0]}x{size[1]} street scenes, {args.images} timed images, device "
              f"{args.device}, torch {torch.__version__}, {os.cpu_count()} CPUs visible, "
              f"m_s = min(1, {args.m_s_ratio:g} m)")
        for threads in args.threads:
            torch.set_num_threads(threads)
            print(f"\nthreads={threads}\n{'rate':>22} |   enc ms   dec ms |  images/s |"
                  "      bpp analytic")
            for m in args.knobs:
                print(_row(single, samples, RatePoint(knob=m), f"m={m:g}"))
            for bpp in args.bpp:
                print(_row(single, samples, RatePoint(bpp=bpp), f"bpp<={bpp:g} (search)"))
            m = args.knobs[len(args.knobs) // 2]
            print(_row(packets, samples, RatePoint(knob=m),
                       f"m={m:g}, {args.packet_bytes} B pkts"))
        if args.processes:
            m = args.knobs[len(args.knobs) // 2]
            print(f"\nthroughput at m={m:g}, one packet: " + str(throughput(
                "sqgan",
                {"checkpoint": str(path), "device": args.device, "m_s_ratio": args.m_s_ratio},
                {"name": "streetscenes", "split": "val", "size": size, "seed": args.seed},
                {"knob": m}, args.processes, args.images)))


if __name__ == "__main__":
    main()
