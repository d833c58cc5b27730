"""``semcomm train isc``: train the coarse-to-fine coder, resumable, and export its model file.

::

    semcomm train isc --config configs/isc_compact.yaml [--out results/train/isc]

Every step flips image and map together with probability ``hflip_p``, draws the
enhancement depth k uniformly from ``train.depth_choices`` (the base image is trained
at every step, the enhanced one at depth k: one model serves every depth), takes one
generator step (L1/MSE + perceptual + adaptive hinge adversarial per layer + commitment)
and, from ``disc_start``, one discriminator step. All randomness of step t derives from
(seed, t), so a run resumed from ``<out>/last.pt`` continues with exactly the numbers of
an uninterrupted run. Outputs:

    <out>/last.pt         resumable: weights, optimisers, discriminator, step
    <out>/loss_log.jsonl  one JSON line per logged step
    <out>/model.pt        weights + config + symbol histograms (map, latent, each stage)
                          (the file the codec loads; weights_only=True)
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from tqdm import tqdm

from semcomm.codecs.amvq.train import batch_indices, build_training_data
from semcomm.codecs.config_schema import config_to_dict
from semcomm.codecs.isc.config import (
    ISCConfig,
    config_from_dict,
    load_config,
    model_config_from_dict,
)
from semcomm.codecs.isc.losses import ISCLoss
from semcomm.codecs.isc.model import ISC, map_onehot
from semcomm.codecs.isc.semmap import MAP_SYMBOLS, majority_downsample, map_symbols, to_classes
from semcomm.codecs.training import atomic_save, lr_at, truncate_log
from semcomm.data.types import Sample

TRAIN_FORMAT = "semcomm.isc.train/1"
MODEL_FORMAT = "semcomm.isc.model/1"
#: Stream id of ISC in every derived seed (SQ-GAN uses 1-3, AM-VQ 7).
_STREAM = 8


def make_batch(dataset: Sequence[Sample], indices: Iterable[int], map_factor: int,
               flips: Sequence[bool] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples -> x [B, 3, H, W] float32 in [0, 1] and coded maps m [B, h_m, w_m] int64.

    ``flips[i]`` mirrors image i and its map horizontally (before the majority vote).
    ValueError when a sample has no labels (ISC needs the semantic map).
    """
    images, maps = [], []
    for j, i in enumerate(indices):
        smp = dataset[i]
        if smp.labels is None:
            raise ValueError(f"sample {smp.name!r} has no labels; ISC trains on labelled data")
        img, lab = smp.image, smp.labels
        if flips is not None and flips[j]:
            img, lab = img[:, ::-1], lab[:, ::-1]
        images.append(img)
        maps.append(majority_downsample(to_classes(lab), map_factor))
    x = torch.from_numpy(np.ascontiguousarray(np.stack(images))).permute(0, 3, 1, 2)
    return x.float().div_(255.0), torch.from_numpy(np.stack(maps).astype(np.int64))


def sample_depth(rng: np.random.Generator, choices: Sequence[int]) -> int:
    """Enhancement depth drawn uniformly from ``choices``."""
    return int(choices[int(rng.integers(len(choices)))])


@dataclass(frozen=True)
class StepResult:
    """Scalars of one training step, one line of the loss log."""

    step: int
    depth: int
    lr: float
    logs: dict[str, float]


class Trainer:
    """ISC training loop.

    Parameters
    ----------
    cfg : ISCConfig
    dataset : sequence of labelled :class:`Sample` at ``cfg.model.image_size``
    seed : int >= 0
    device : torch.device
    perceptual : module (x, x_hat) -> scalar, or None
    """

    def __init__(self, cfg: ISCConfig, dataset: Sequence[Sample], seed: int = 0,
                 device: torch.device | str = "cpu",
                 perceptual: torch.nn.Module | None = None) -> None:
        if seed is None or seed < 0:
            raise ValueError(f"seed {seed!r} must be a non-negative int")
        if len(dataset) < 1:
            raise ValueError("training dataset is empty")
        self.cfg, self.dataset, self.seed = cfg, dataset, seed
        self.device = torch.device(device)
        torch.manual_seed(_derived_seed(seed, -1))  # weight initialisation
        self.model = ISC(cfg.model).to(self.device)
        self.loss = ISCLoss(cfg.train, perceptual).to(self.device)
        t = cfg.train
        self.opt_g = torch.optim.Adam(self.model.parameters(), lr=t.lr, betas=t.betas)
        self.opt_d = torch.optim.Adam(self.loss.disc.parameters(), lr=t.lr, betas=t.betas)
        self.step = 0

    @property
    def total_steps(self) -> int:
        return self.cfg.train.steps

    def _batch(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.cfg.train
        idx = batch_indices(len(self.dataset), t.batch_size, self.step, self.seed)
        flips = list(rng.random(len(idx)) < t.hflip_p)
        x, m = make_batch(self.dataset, idx, self.cfg.model.map_factor, flips)
        return x.to(self.device), map_onehot(m.to(self.device))

    def train_step(self) -> StepResult:
        """One generator and (from disc_start) one discriminator update."""
        t, step = self.cfg.train, self.step
        rng = np.random.default_rng([self.seed, _STREAM, 1, step])
        torch.manual_seed(_derived_seed(self.seed, step))  # VQ restarts
        depth = sample_depth(rng, t.depth_choices)
        x, s = self._batch(rng)
        lr = lr_at(step, self.total_steps, t.lr, t.min_lr, t.warmup_steps)
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr
        self.model.train()
        self.loss.train()
        out = self.model(x, s, depth)
        self.loss.disc.requires_grad_(False)
        gen = self.loss.generator(x, out, self.model.generator.last_layer,
                                  self.model.res_decoder.last_layer, step)
        self.opt_g.zero_grad(set_to_none=True)
        gen.loss.backward()
        self.opt_g.step()
        self.loss.disc.requires_grad_(True)
        logs = dict(gen.logs)
        if step >= t.disc_start and t.adv_weight > 0:
            dis = self.loss.discriminator(x, out)
            self.opt_d.zero_grad(set_to_none=True)
            dis.loss.backward()
            self.opt_d.step()
            logs.update(dis.logs)
        self.step += 1
        return StepResult(step, depth, lr, logs)

    # ----------------------------------------------------------------- checkpoints
    def state(self) -> dict[str, Any]:
        """Resumable state (loads with ``weights_only=True``)."""
        return {"format": TRAIN_FORMAT, "step": self.step, "seed": self.seed,
                "config": config_to_dict(self.cfg), "model": self.model.state_dict(),
                "disc": self.loss.disc.state_dict(), "opt_g": self.opt_g.state_dict(),
                "opt_d": self.opt_d.state_dict()}

    def save(self, path: str | Path) -> None:
        """Write the resumable checkpoint atomically."""
        atomic_save(self.state(), Path(path))

    def resume(self, path: str | Path) -> None:
        """Restore a checkpoint written by :meth:`save` for the same model config."""
        ckpt = torch.load(Path(path), map_location=self.device, weights_only=True)
        if ckpt.get("format") != TRAIN_FORMAT:
            raise ValueError(f"{path}: not an ISC training checkpoint "
                             f"(format {ckpt.get('format')!r}, expected {TRAIN_FORMAT!r})")
        if config_from_dict(ckpt["config"], source=str(path)).model != self.cfg.model:
            raise ValueError(f"{path}: model config differs from the current config")
        self.model.load_state_dict(ckpt["model"])
        self.loss.disc.load_state_dict(ckpt["disc"])
        self.opt_g.load_state_dict(ckpt["opt_g"])
        self.opt_d.load_state_dict(ckpt["opt_d"])
        self.step = int(ckpt["step"])

    def init_from(self, path: str | Path) -> None:
        """Load model weights from a ``model.pt`` or a ``last.pt`` (fine-tuning)."""
        ckpt = torch.load(Path(path), map_location=self.device, weights_only=True)
        state = ckpt.get("state_dict", ckpt.get("model"))
        if ckpt.get("format") not in (MODEL_FORMAT, TRAIN_FORMAT) or state is None:
            raise ValueError(f"{path}: neither an ISC model.pt nor a training checkpoint")
        stored = model_config_from_dict(ckpt["config"]["model"], source=str(path))
        if stored != self.cfg.model:
            raise ValueError(f"{path}: its model config differs from the current config")
        self.model.load_state_dict(state)

    def fit(self, out_dir: str | Path, progress: bool = True, table_images: int = 100) -> Path:
        """Train to ``total_steps`` (resuming from ``out_dir/last.pt`` if present) and
        write ``out_dir/model.pt``; returns its path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        last, log_path = out / "last.pt", out / "loss_log.jsonl"
        if last.is_file():
            self.resume(last)
            warnings.warn(f"resuming isc from step {self.step} ({last})", stacklevel=2)
        truncate_log(log_path, self.step)
        t = self.cfg.train
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not progress, desc="isc")
        with log_path.open("a") as log:
            while self.step < self.total_steps:
                tic = time.perf_counter()
                res = self.train_step()
                bar.update(1)
                if res.step % t.log_every == 0 or self.step == self.total_steps:
                    line = {"step": res.step, "lr": res.lr, "depth": res.depth,
                            "sec_per_step": round(time.perf_counter() - tic, 4), **res.logs}
                    log.write(json.dumps(line) + "\n")
                    log.flush()
                    bar.set_postfix({k: f"{v:.3g}" for k, v in res.logs.items()
                                     if k in ("base_l1", "enh_l1", "d")})
                if self.step % t.save_every == 0 or self.step == self.total_steps:
                    self.save(last)
        bar.close()
        stats = collect_statistics(self.model, self.dataset, min(table_images, len(self.dataset)))
        return export_model(self.model, out / "model.pt", stats,
                            {"step": self.step, "seed": self.seed})


def _derived_seed(seed: int, step: int) -> int:
    seq = np.random.SeedSequence([seed, _STREAM, 2, step + 1])
    return int(seq.generate_state(1, dtype=np.uint64)[0] % (2**63))


# --------------------------------------------------------------------------- model file
@dataclass(frozen=True)
class Statistics:
    """Symbol histograms the entropy coder's static priors come from (model file).

    Attributes
    ----------
    map_counts : [22] int64          map prediction symbols (semmap.map_symbols)
    latent_counts : [K] int64        base latent indices (zeros without a latent)
    stage_counts : [S, K_e] int64    enhancement indices per stage
    """

    map_counts: torch.Tensor
    latent_counts: torch.Tensor
    stage_counts: torch.Tensor


@torch.no_grad()
def collect_statistics(model: ISC, dataset: Sequence[Sample], count: int,
                       batch: int = 8) -> Statistics:
    """Histograms over the first ``count`` images, computed exactly as the codec codes
    them (eval mode, base image from the quantized latent and the coded map)."""
    if count < 1:
        raise ValueError(f"statistics need at least one image, got count={count}")
    was_training = model.training
    model.eval()
    cfg = model.config
    device = next(model.parameters()).device
    map_c = torch.zeros(MAP_SYMBOLS, dtype=torch.long)
    lat_c = torch.zeros(cfg.latent_codes, dtype=torch.long)
    stage_c = torch.zeros(cfg.enh_stages, cfg.enh_codes, dtype=torch.long)
    for start in range(0, count, batch):
        x, m = make_batch(dataset, range(start, min(start + batch, count)), cfg.map_factor)
        x, m = x.to(device), m.to(device)
        for mi in m.cpu().numpy():
            map_c += torch.bincount(torch.from_numpy(map_symbols(mi)).reshape(-1),
                                    minlength=MAP_SYMBOLS)
        idx = None
        if cfg.base_latent:
            idx = model.latent_indices(x)
            lat_c += torch.bincount(idx.reshape(-1).cpu(), minlength=cfg.latent_codes)
        x_base = model.base_image(idx, map_onehot(m), (x.shape[-2], x.shape[-1]))
        stages = model.stage_indices(x, x_base).cpu()
        for k in range(cfg.enh_stages):
            stage_c[k] += torch.bincount(stages[:, k].reshape(-1), minlength=cfg.enh_codes)
    model.train(was_training)
    return Statistics(map_c, lat_c, stage_c)


def export_model(model: ISC, path: str | Path, stats: Statistics, meta: dict[str, Any]) -> Path:
    """Write the codec's model file: weights, config, histograms (``weights_only``-safe)."""
    path = Path(path)
    atomic_save({"format": MODEL_FORMAT, "config": {"model": config_to_dict(model.config)},
                 "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                 "map_counts": stats.map_counts.cpu(), "latent_counts": stats.latent_counts.cpu(),
                 "stage_counts": stats.stage_counts.cpu(), "meta": meta}, path)
    return path


@dataclass(frozen=True)
class ISCBundle:
    """A loaded model file: the model (eval mode), its histograms and training metadata."""

    model: ISC
    map_counts: torch.Tensor
    latent_counts: torch.Tensor
    stage_counts: torch.Tensor
    meta: dict[str, Any]


def load_model(path: str | Path, device: torch.device | str = "cpu") -> ISCBundle:
    """Load a ``model.pt`` written by :func:`export_model` (``weights_only=True``)."""
    ckpt = torch.load(Path(path), map_location=device, weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != MODEL_FORMAT:
        got = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path}: format {got!r}, expected {MODEL_FORMAT!r}")
    cfg = model_config_from_dict(ckpt["config"]["model"], source=str(path))
    model = ISC(cfg).to(device)
    model.load_state_dict(ckpt["state_dict"])
    shapes = {"map_counts": (MAP_SYMBOLS,), "latent_counts": (cfg.latent_codes,),
              "stage_counts": (cfg.enh_stages, cfg.enh_codes)}
    for key, shape in shapes.items():
        if tuple(ckpt[key].shape) != shape:
            raise ValueError(f"{path}: {key} has shape {tuple(ckpt[key].shape)}, expected "
                             f"{shape}")
    return ISCBundle(model.eval(), ckpt["map_counts"].cpu(), ckpt["latent_counts"].cpu(),
                     ckpt["stage_counts"].cpu(), dict(ckpt["meta"]))


# --------------------------------------------------------------------------- CLI
def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``semcomm train isc``."""
    parser.add_argument("--config", default="configs/isc_compact.yaml", help="YAML config")
    parser.add_argument("--out", default="results/train/isc", help="run folder")
    parser.add_argument("--init", default=None, help="model.pt (or last.pt) to start from")
    parser.add_argument("--steps", type=int, default=None, help="override train.steps")
    parser.add_argument("--batch-size", type=int, default=None, help="override train.batch_size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--perceptual", choices=("segmenter", "lpips", "none"), default=None,
                        help="override train.perceptual")
    parser.add_argument("--lpips-vgg", default=None, help="torchvision VGG16 weights (.pth)")
    parser.add_argument("--lpips-lin", default=None, help="LPIPS v0.1 linear heads (vgg.pth)")
    parser.add_argument("--data-root", default=None,
                        help="dataset root for every train.data source (cityscapes, folders)")
    parser.add_argument("--table-images", type=int, default=200,
                        help="images for the symbol histograms in model.pt")
    parser.add_argument("--fresh", action="store_true",
                        help="ignore <out>/last.pt instead of resuming from it")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _overridden(cfg: ISCConfig, args: argparse.Namespace) -> ISCConfig:
    data = config_to_dict(cfg)
    if args.steps is not None:
        data["train"]["steps"] = args.steps
    if args.batch_size is not None:
        data["train"]["batch_size"] = args.batch_size
    if args.perceptual is not None:
        data["train"]["perceptual"] = args.perceptual
    return config_from_dict(data, source=f"{args.config} (with command-line overrides)")


def run(args: argparse.Namespace) -> int:
    """Train (or resume) and export the model file; returns 0 on success."""
    from semcomm.codecs.sqgan.losses import build_perceptual

    cfg = _overridden(load_config(args.config), args)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else "cpu" if args.device == "auto" else args.device)
    # AM-VQ's builder reads only train.data and model.image_size (duck-typed).
    dataset = build_training_data(cast(Any, cfg), args.seed, args.data_root)
    perceptual = build_perceptual(cfg.train.perceptual, cfg.train.perceptual_layers,
                                  args.lpips_vgg, args.lpips_lin)
    trainer = Trainer(cfg, dataset, args.seed, device, perceptual)
    if args.init is not None:
        trainer.init_from(args.init)
    out = Path(args.out)
    if args.fresh and (out / "last.pt").is_file():
        (out / "last.pt").unlink()
    path = trainer.fit(out, progress=not args.no_progress, table_images=args.table_images)
    print(f"isc: {trainer.step} steps, perceptual={cfg.train.perceptual}; model written to "
          f"{path} (copy it to semcomm/assets/isc.pt to ship it)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m semcomm.codecs.isc.train`` (same arguments as ``semcomm train isc``)."""
    parser = argparse.ArgumentParser(prog="semcomm train isc")
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
