"""The arguments and steps every ``semcomm train <codec>`` shares.

::

    semcomm train <codec> --config FILE [--out DIR] [overrides] [machine options]
      overrides:  --steps --batch-size --lr --disc-start --perceptual --dataset --count
                  --set KEY.PATH=YAML (any key, e.g. --set model.image_size=[64,128])
      machine:    --device --threads --workers --prefetch --precision --channels-last
                  --compile (how the run uses the machine; never stored in the model)

The overridden config is validated like the file (errors name the file, the key and the
nearest valid key) and stored in every checkpoint; a run resumes from ``<out>/last.pt``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml

from semcomm.codecs.config_schema import config_to_dict
from semcomm.codecs.learned.trainer import PRECISIONS, GANTrainer, RunOptions

__all__ = ["bad_input", "check_files", "configure", "device_of", "finish", "load_overridden",
           "options_of", "run_single"]

#: What a bad command line, config or input file raises during a run's set-up (before
#: any step): reported as one line with exit status 2, not as a traceback.
INPUT_ERRORS = (ValueError, OSError)


def configure(parser: argparse.ArgumentParser, name: str, table_images: int = 100) -> None:
    """The shared arguments of ``semcomm train <name>``."""
    add = parser.add_argument
    parser.set_defaults(train_model=name)  # names the command in one-line errors
    add("--config", default=f"configs/{name}_compact.yaml", help="YAML config")
    add("--out", default=f"results/train/{name}", help="run folder")
    add("--init", default=None, help="model.pt (or last.pt) to start from")
    add("--init-except", action="append", default=[], metavar="PREFIX",
        help="with --init: keep the fresh weights under this prefix, e.g. quantizers "
        "for a resized codebook (repeatable; the model configs may then differ)")
    add("--steps", type=int, default=None, help="override train.steps")
    add("--batch-size", type=int, default=None, help="override train.batch_size")
    add("--lr", type=float, default=None, help="override train.lr")
    add("--disc-start", type=int, default=None,
        help="override train.disc_start (first step with the adversarial term)")
    add("--perceptual", choices=("segmenter", "lpips", "none"), default=None,
        help="override train.perceptual")
    add("--dataset", default=None, help="override the name of every training data source "
        "(e.g. cityscapes with --data-root)")
    add("--count", type=int, default=None, help="override the image count of every source")
    add("--set", action="append", default=[], metavar="KEY.PATH=YAML",
        help="override any config key, e.g. --set train.augment.paste_p=0.5 (repeatable)")
    add("--stop-at", type=int, default=None,
        help="stop at this step of the schedule (resume later to continue)")
    add("--seed", type=int, default=0)
    add("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    add("--threads", type=int, default=None, help="torch CPU threads")
    add("--workers", type=int, default=0,
        help="DataLoader processes building batches (0: in the training process)")
    add("--prefetch", type=int, default=4, help="batches each worker prepares ahead")
    add("--precision", choices=PRECISIONS, default="fp32",
        help="bf16: autocast forward and losses to bfloat16 (for CUDA)")
    add("--channels-last", action="store_true", help="NHWC memory format")
    add("--compile", action="store_true", help="torch.compile the networks")
    add("--lpips-vgg", default=None, help="torchvision VGG16 weights (.pth)")
    add("--lpips-lin", default=None, help="LPIPS v0.1 linear heads (vgg.pth)")
    add("--data-root", default=None, help="dataset root (cityscapes, image folders)")
    add("--table-images", type=int, default=table_images,
        help="images for the entropy coder's histograms in model.pt")
    add("--fresh", action="store_true", help="ignore <out>/last.pt instead of resuming")
    add("--no-progress", action="store_true", help="no progress bar")


def load_overridden(args: argparse.Namespace, load: Callable[[str], Any],
                    from_dict: Callable[..., Any],
                    set_steps: Callable[[dict[str, Any], int], None] | None = None) -> Any:
    """The config of ``args.config`` with the command-line overrides, validated."""
    if getattr(args, "stop_at", None) is not None and args.stop_at < 0:
        raise ValueError(f"--stop-at {args.stop_at}: must be >= 0")
    data = config_to_dict(load(args.config))
    train = data["train"]
    if args.steps is not None:
        if set_steps is None:
            train["steps"] = args.steps
        else:
            set_steps(data, args.steps)
    for key, value in (("batch_size", args.batch_size), ("lr", args.lr),
                       ("disc_start", args.disc_start), ("perceptual", args.perceptual)):
        if value is not None:
            train[key] = value
    _override_data(train, args.dataset, args.count)
    for item in args.set:
        _set_key(data, item)
    return from_dict(data, source=f"{args.config} (with command-line overrides)")


def _override_data(train: dict[str, Any], name: str | None, count: int | None) -> None:
    if "data" in train:  # a list of sources
        for src in train["data"]:
            src["name"] = name or src["name"]
            src["count"] = count or src["count"]
    else:  # one source as train.dataset / train.train_count
        train["dataset"] = name or train["dataset"]
        train["train_count"] = count or train["train_count"]


def _set_key(data: dict[str, Any], item: str) -> None:
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise ValueError(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. train.lr=1e-4")
    *parents, leaf = key.split(".")
    node = data
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise ValueError(f"--set {item!r}: {part!r} is not a section; sections: "
                             f"{sorted(k for k, v in node.items() if isinstance(v, dict))}")
        node = node[part]
    node[leaf] = _yaml_value(text)


def _yaml_value(text: str) -> Any:
    """``text`` as YAML, with a float in exponent notation read as a float even without
    a dot (YAML 1.1 reads ``1e-4`` as a string)."""
    value = yaml.safe_load(text)
    if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+",
                                               value.strip()):
        return float(value)
    return value


def check_files(args: argparse.Namespace, *names: str) -> None:
    """ValueError (one line) unless each file argument in ``names`` (e.g. ``init``) that
    was given exists: checked before the training data are built."""
    for name in names:
        path = getattr(args, name, None)
        if path is not None and not Path(path).is_file():
            raise ValueError(f"--{name.replace('_', '-')} {str(path)!r}: no such file")


def bad_input(prog: str, err: BaseException) -> int:
    """Print ``err`` as one line (``<prog>: error: ...``) and return exit status 2."""
    text = " ".join(str(err).split())
    print(f"{prog}: error: {text}", file=sys.stderr)
    return 2


def device_of(args: argparse.Namespace) -> torch.device:
    """``--device`` (auto = CUDA when available), after ``--threads``."""
    from semcomm.runner.config import resolve_device

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:  # cpu | cuda | cuda:N | auto, checked against this host
        return torch.device(resolve_device(args.device))
    except ValueError as err:
        raise ValueError(f"--device: {err}") from None


def options_of(args: argparse.Namespace) -> RunOptions:
    return RunOptions(workers=args.workers, prefetch=args.prefetch, precision=args.precision,
                      channels_last=args.channels_last, compile=args.compile)


def finish(trainer: GANTrainer, args: argparse.Namespace, out: Path) -> Path:
    """``--fresh``, then train (or resume) to the end or ``--stop-at``; model file path."""
    if args.fresh and (out / "last.pt").is_file():
        (out / "last.pt").unlink()
    return trainer.fit(out, progress=not args.no_progress, table_images=args.table_images,
                       stop_at=args.stop_at)


def run_single(args: argparse.Namespace, trainer_class: Any, load: Callable[[str], Any],
               from_dict: Callable[..., Any]) -> int:
    """``semcomm train <codec>`` for a codec trained in one stage (AM-VQ, ISC): config
    with overrides, training data, perceptual term, trainer, ``--init``, fit; 0 on success."""
    from semcomm.codecs.learned.data import training_data
    from semcomm.codecs.learned.perceptual import build_perceptual

    try:  # set-up: a bad option, config or input file is one line, exit status 2
        check_files(args, "init", "lpips_vgg", "lpips_lin")
        cfg = load_overridden(args, load, from_dict)
        device = device_of(args)
        dataset = training_data(cfg.train.data, cfg.model.image_size, args.seed,
                                args.data_root)
        perceptual = build_perceptual(cfg.train.perceptual, cfg.train.perceptual_layers,
                                      args.lpips_vgg, args.lpips_lin)
        trainer = trainer_class(cfg, dataset, args.seed, device, perceptual, options_of(args))
        if args.init is not None:
            trainer.init_from(args.init, exclude=args.init_except)
    except INPUT_ERRORS as err:
        return bad_input(f"semcomm train {args.train_model}", err)
    path = finish(trainer, args, Path(args.out))
    print(f"{trainer.name}: {trainer.step} steps, perceptual={cfg.train.perceptual}; model "
          f"written to {path} (copy it to semcomm/assets/{trainer.name}.pt to ship it)")
    return 0
