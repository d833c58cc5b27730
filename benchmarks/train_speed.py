"""Training speed of the learned codecs: seconds per step, split into data wait and compute.

    python benchmarks/train_speed.py [--configs configs/sqgan_compact.yaml ...]
        [--device cpu|cuda:0] [--workers 0 8] [--precision fp32 bf16] [--steps 5]
        [--warmup 2] [--stage img] [--batch-size B] [--set KEY=YAML ...] [--threads T]
        [--dataset streetscenes|shards] [--data-root DIR] [--channels-last] [--json]

For every config x worker count x precision, builds that codec's trainer exactly as
``semcomm train`` does (the config's model, losses, perceptual term and batch size;
``train.data`` replaced by ``--dataset``, default the built-in generator at the config's
size; an LPIPS perceptual term is replaced by the segmenter-feature one), runs
``--warmup`` untimed steps, then ``--steps`` timed ones through the shared DataLoader.
Per step: data = time the loop waited for its batch (with 0 workers: the whole
generation and augmentation), compute = the rest of the step (device synchronised on
CUDA). Printed: medians over the timed steps, and the data share of the step.

One command for a GPU machine (paper configs, 256 x 512, batch 16; about 2-3 minutes)::

    python benchmarks/train_speed.py --device cuda:0 --workers 0 8 --steps 10 \\
        --configs configs/sqgan_paper.yaml configs/amvq_paper.yaml configs/isc_paper.yaml

A failing row (e.g. an option the device lacks) prints its error and the run goes on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from semcomm.codecs.learned import cli  # noqa: E402
from semcomm.codecs.learned.data import step_loader, training_data  # noqa: E402
from semcomm.codecs.learned.perceptual import build_perceptual  # noqa: E402

CODECS = ("sqgan", "amvq", "isc")


def _codec_of(config: str) -> str:
    name = Path(config).name
    for codec in CODECS:
        if name.startswith(codec):
            return codec
    raise ValueError(f"config {config}: name must start with one of {CODECS}")


def build_trainer(config: str, args: argparse.Namespace, workers: int, precision: str
                  ) -> Any:
    """The trainer ``semcomm train <codec> --config CONFIG`` would build, with overrides."""
    codec = _codec_of(config)
    module = __import__(f"semcomm.codecs.{codec}.train", fromlist=["Trainer"])
    parser = argparse.ArgumentParser()
    module.configure(parser)
    argv = ["--config", config, "--device", args.device, "--workers", str(workers),
            "--precision", precision, "--dataset", args.dataset,
            *(["--stage", args.stage] if codec == "sqgan" else []),
            *(["--batch-size", str(args.batch_size)] if args.batch_size else []),
            *(["--channels-last"] if args.channels_last else []),
            *[x for item in args.set for x in ("--set", item)]]
    if args.dataset != "streetscenes":
        argv += ["--data-root", args.data_root]
    a = parser.parse_args(argv)
    load, from_dict = module.load_config, module.config_from_dict
    if codec == "sqgan":
        cfg = module._overridden(load(config), a)
    else:
        cfg = cli.load_overridden(a, load, from_dict)
    device = cli.device_of(a)
    data = training_data(cfg.train.data, cfg.model.image_size, 0, a.data_root)
    # LPIPS needs VGG weight files: the segmenter's features stand in for it here.
    kind = "segmenter" if cfg.train.perceptual == "lpips" else cfg.train.perceptual
    needed = codec != "sqgan" or args.stage != "ssm"
    perceptual = build_perceptual(kind, cfg.train.perceptual_layers) if needed else None
    opts = cli.options_of(a)
    if codec == "sqgan":
        return module.Trainer(cfg, args.stage, data, 0, device, perceptual, opts)
    return module.Trainer(cfg, data, 0, device, perceptual, opts)


def time_steps(trainer: Any, warmup: int, steps: int) -> dict[str, float]:
    """Medians (s) of data wait, compute and whole step over ``steps`` timed steps."""
    o, cuda = trainer.options, trainer.device.type == "cuda"
    batches = step_loader(trainer.batch_maker(), 0, warmup + steps, o.workers, o.prefetch,
                          pin_memory=cuda)
    waits, computes = [], []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        data = next(batches)
        t1 = time.perf_counter()
        trainer.train_step(data)
        if cuda:
            torch.cuda.synchronize(trainer.device)
        t2 = time.perf_counter()
        if i >= warmup:
            waits.append(t1 - t0)
            computes.append(t2 - t1)
    totals = [w + c for w, c in zip(waits, computes, strict=True)]
    return {"data_s": statistics.median(waits), "compute_s": statistics.median(computes),
            "step_s": statistics.median(totals),
            "data_share": sum(waits) / max(sum(totals), 1e-12)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", nargs="+", default=["configs/sqgan_compact.yaml",
                                                    "configs/amvq_compact.yaml",
                                                    "configs/isc_compact.yaml"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, nargs="+", default=[0])
    p.add_argument("--precision", nargs="+", default=["fp32"], choices=("fp32", "bf16"))
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--stage", default="img", choices=("ssm", "img", "all"),
                   help="SQ-GAN stage")
    p.add_argument("--batch-size", type=int, default=None, help="override train.batch_size")
    p.add_argument("--set", action="append", default=[], help="config override KEY=YAML")
    p.add_argument("--dataset", default="streetscenes", help="streetscenes or shards")
    p.add_argument("--data-root", default=None, help="shards folder (semcomm data render)")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch threads of the step")
    p.add_argument("--json", action="store_true", help="also one JSON line per row")
    args = p.parse_args()
    if args.steps < 1 or args.warmup < 0:
        p.error(f"--steps {args.steps} must be >= 1 and --warmup {args.warmup} >= 0")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    dev = args.device
    name = torch.cuda.get_device_name(dev) if dev.startswith("cuda") else (
        f"CPU, {torch.get_num_threads()} threads")
    print(f"# train_speed: {name}, torch {torch.__version__}, steps {args.steps} "
          f"(+{args.warmup} warm-up), dataset {args.dataset}")
    print(f"{'config':<26} {'stage':<5} {'prec':<5} {'workers':>7} {'batch':>5} "
          f"{'s/step':>8} {'data s':>8} {'compute s':>9} {'data %':>7}")
    for config in args.configs:
        for precision in args.precision:
            for workers in args.workers:
                _row(config, args, workers, precision)
    return 0


def _row(config: str, args: argparse.Namespace, workers: int, precision: str) -> None:
    stage = args.stage if _codec_of(config) == "sqgan" else "-"
    head = f"{Path(config).name:<26} {stage:<5} {precision:<5} {workers:>7}"
    try:
        trainer = build_trainer(config, args, workers, precision)
        r = time_steps(trainer, args.warmup, args.steps)
    except Exception as err:  # one failing row must not hide the others
        print(f"{head}  error: {type(err).__name__}: {err}")
        traceback.print_exc(limit=3, file=sys.stderr)
        return
    batch = trainer.cfg.train.batch_size
    print(f"{head} {batch:>5} {r['step_s']:>8.3f} {r['data_s']:>8.3f} {r['compute_s']:>9.3f} "
          f"{100 * r['data_share']:>6.1f}%", flush=True)
    if args.json:
        print(json.dumps({"config": config, "stage": stage, "precision": precision,
                          "workers": workers, "batch": batch, "device": args.device, **r}))
    del trainer
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


if __name__ == "__main__":
    raise SystemExit(main())
