"""``semcomm train amvq``: train AM-VQ, resumable, and export the codec's model file.

::

    semcomm train amvq --config configs/amvq_compact.yaml [--out results/train/amvq]

Every step draws tau uniformly from ``train.tau_choices`` (one model serves every
tau, plain VQ included), flips images horizontally with probability ``hflip_p``, takes
one generator step (L1 + perceptual + adaptive BCE adversarial + commitment) and, from
``disc_start``, one discriminator step. All randomness of step t derives from
(seed, t), so a run resumed from ``<out>/last.pt`` continues with exactly the numbers of
an uninterrupted run. Outputs:

    <out>/last.pt         resumable: weights, optimisers, discriminator, step
    <out>/loss_log.jsonl  one JSON line per logged step
    <out>/model.pt        weights + config + float ranges + index and value histograms
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
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from semcomm.codecs.amvq.activation import unquantized_mask
from semcomm.codecs.amvq.config import (
    AMVQConfig,
    config_from_dict,
    load_config,
)
from semcomm.codecs.amvq.losses import AMVQLoss
from semcomm.codecs.amvq.model import AMVQ, to_rows
from semcomm.codecs.config_schema import config_to_dict
from semcomm.codecs.training import atomic_save, lr_at, truncate_log
from semcomm.data.types import Sample

TRAIN_FORMAT = "semcomm.amvq.train/1"
MODEL_FORMAT = "semcomm.amvq.model/1"
#: Stream id of AM-VQ in every derived seed (distinct from SQ-GAN's stages 1-3).
_STREAM = 7
#: Bins of the value histograms in the model file (levels of any bit depth derive from them).
VALUE_BINS = 4096
#: Values per scale and batch kept for the float-range quantiles at export.
_RANGE_SAMPLES = 2**20


def sample_tau(rng: np.random.Generator, choices: Sequence[float]) -> float:
    """tau drawn uniformly from ``choices``."""
    return float(choices[int(rng.integers(len(choices)))])


def batch_indices(n: int, batch: int, step: int, seed: int) -> list[int]:
    """Dataset indices of batch ``step``: walks a per-epoch permutation, resumable."""
    out = []
    for j in range(batch):
        epoch, pos = divmod(step * batch + j, n)
        perm = np.random.default_rng([seed, _STREAM, 0, epoch]).permutation(n)
        out.append(int(perm[pos]))
    return out


def make_batch(dataset: Sequence[Sample], indices: Iterable[int]) -> torch.Tensor:
    """Samples -> x [B, 3, H, W] float32 in [0, 1] (labels are not used by AM-VQ)."""
    images = np.stack([dataset[i].image for i in indices])
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)


class ConcatDataset(Sequence[Sample]):
    """The training sources one after the other."""

    def __init__(self, parts: Sequence[Sequence[Sample]]) -> None:
        self.parts = list(parts)
        self.ends = np.cumsum([len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    def __getitem__(self, index: int) -> Sample:  # type: ignore[override]
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} outside [0, {len(self)})")
        k = int(np.searchsorted(self.ends, index, side="right"))
        start = int(self.ends[k - 1]) if k else 0
        return self.parts[k][index - start]


@dataclass(frozen=True)
class StepResult:
    """Scalars of one training step, one line of the loss log."""

    step: int
    tau: float
    lr: float
    logs: dict[str, float]


class Trainer:
    """AM-VQ training loop.

    Parameters
    ----------
    cfg : AMVQConfig
    dataset : sequence of :class:`Sample` at ``cfg.model.image_size``
    seed : int >= 0
    device : torch.device
    perceptual : module (x, x_hat) -> scalar, or None
    """

    def __init__(self, cfg: AMVQConfig, dataset: Sequence[Sample], seed: int = 0,
                 device: torch.device | str = "cpu",
                 perceptual: torch.nn.Module | None = None) -> None:
        if seed is None or seed < 0:
            raise ValueError(f"seed {seed!r} must be a non-negative int")
        if len(dataset) < 1:
            raise ValueError("training dataset is empty")
        self.cfg, self.dataset, self.seed = cfg, dataset, seed
        self.device = torch.device(device)
        torch.manual_seed(_derived_seed(seed, -1))  # weight initialisation
        self.model = AMVQ(cfg.model).to(self.device)
        self.loss = AMVQLoss(cfg.train, perceptual).to(self.device)
        t = cfg.train
        gen_params = [*self.model.encoder.parameters(), *self.model.decoder.parameters()]
        self.opt_g = torch.optim.Adam(gen_params, lr=t.lr, betas=t.betas)
        self.opt_d = torch.optim.Adam(self.loss.disc.parameters(), lr=t.lr, betas=t.betas)
        self.step = 0

    @property
    def total_steps(self) -> int:
        return self.cfg.train.steps

    def _batch(self, rng: np.random.Generator) -> torch.Tensor:
        t = self.cfg.train
        x = make_batch(self.dataset, batch_indices(len(self.dataset), t.batch_size,
                                                   self.step, self.seed))
        flip = torch.from_numpy(rng.random(x.shape[0]) < t.hflip_p)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x.to(self.device)

    def train_step(self) -> StepResult:
        """One generator and (from disc_start) one discriminator update."""
        t, step = self.cfg.train, self.step
        rng = np.random.default_rng([self.seed, _STREAM, 1, step])
        torch.manual_seed(_derived_seed(self.seed, step))  # VQ restarts
        tau = sample_tau(rng, t.tau_choices)
        x = self._batch(rng)
        lr = lr_at(step, self.total_steps, t.lr, t.min_lr, t.warmup_steps)
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr
        self.model.train()
        self.loss.train()
        out = self.model(x, tau, commit_floats=t.commit_floats)
        self.loss.disc.requires_grad_(False)
        gen = self.loss.generator(x, out, self.model.decoder.last_layer, step)
        self.opt_g.zero_grad(set_to_none=True)
        gen.loss.backward()
        self.opt_g.step()
        self.loss.disc.requires_grad_(True)
        logs = dict(gen.logs)
        if step >= t.disc_start:
            dis = self.loss.discriminator(x, out)
            self.opt_d.zero_grad(set_to_none=True)
            dis.loss.backward()
            self.opt_d.step()
            logs.update(dis.logs)
        self.step += 1
        return StepResult(step, tau, lr, logs)

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
            raise ValueError(f"{path}: not an AM-VQ training checkpoint "
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
            raise ValueError(f"{path}: neither an AM-VQ model.pt nor a training checkpoint")
        stored = config_from_dict({"model": ckpt["config"]["model"]}, source=str(path)).model
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
            warnings.warn(f"resuming amvq from step {self.step} ({last})", stacklevel=2)
        truncate_log(log_path, self.step)
        t = self.cfg.train
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not progress, desc="amvq")
        with log_path.open("a") as log:
            while self.step < self.total_steps:
                tic = time.perf_counter()
                res = self.train_step()
                bar.update(1)
                if res.step % t.log_every == 0 or self.step == self.total_steps:
                    line = {"step": res.step, "lr": res.lr, "tau": res.tau,
                            "sec_per_step": round(time.perf_counter() - tic, 4), **res.logs}
                    log.write(json.dumps(line) + "\n")
                    log.flush()
                    bar.set_postfix({k: f"{v:.3g}" for k, v in res.logs.items()
                                     if k in ("l1", "g", "d", "unquantized")})
                if self.step % t.save_every == 0 or self.step == self.total_steps:
                    self.save(last)
        bar.close()
        stats = collect_statistics(self.model, self.dataset, t.tau_choices,
                                   min(table_images, len(self.dataset)))
        return export_model(self.model, out / "model.pt", stats,
                            {"step": self.step, "seed": self.seed,
                             "tau_choices": list(t.tau_choices)})


def _derived_seed(seed: int, step: int) -> int:
    seq = np.random.SeedSequence([seed, _STREAM, 2, step + 1])
    return int(seq.generate_state(1, dtype=np.uint64)[0] % (2**63))


# --------------------------------------------------------------------------- model file


@dataclass(frozen=True)
class Statistics:
    """Training statistics the entropy coder needs, stored in the model file.

    Attributes
    ----------
    float_range : [S, 2] float32   [lo, hi] of the unquantized vectors' scalar quantizer
    index_counts : [S, K] int64    transmitted code indices (positions with A <= 1 - tau)
    value_counts : [S, VALUE_BINS] int64
        Histogram of unquantized values (positions with A > 1 - tau), clipped to the range,
        in VALUE_BINS equal bins over [lo, hi]; the level prior of any bit depth is
        derived from it (``codec.level_prior``).
    """

    float_range: torch.Tensor
    index_counts: torch.Tensor
    value_counts: torch.Tensor


@torch.no_grad()
def collect_statistics(model: AMVQ, dataset: Sequence[Sample], taus: Sequence[float],
                       count: int, batch: int = 8) -> Statistics:
    """Float ranges and index / value histograms over the first ``count`` images.

    Pass 1 sets ``model.float_range`` to the [q, 1 - q] quantiles (q =
    ``range_quantile``) of the latent values at positions with A > 0 (the positions
    sent unquantized at some tau). Pass 2 counts, at every tau in ``taus``, the indices
    of quantized positions and the (clipped) values of unquantized ones.
    """
    if count < 1:
        raise ValueError(f"statistics need at least one image, got count={count}")
    was_training = model.training
    model.eval()
    cfg = model.config
    device = next(model.parameters()).device
    chunks = [range(i, min(i + batch, count)) for i in range(0, count, batch)]
    samples: list[list[torch.Tensor]] = [[] for _ in range(cfg.scales)]
    fallback: list[list[torch.Tensor]] = [[] for _ in range(cfg.scales)]
    for chunk in chunks:
        for s, an in enumerate(model.analyze(make_batch(dataset, chunk).to(device))):
            rows = to_rows(an.z).cpu()
            samples[s].append(_thin(rows[(an.a > 0).reshape(-1).cpu()].reshape(-1)))
            fallback[s].append(_thin(rows.reshape(-1)))
    q = cfg.range_quantile
    for s in range(cfg.scales):
        vals = torch.cat(samples[s]) if sum(v.numel() for v in samples[s]) else torch.cat(
            fallback[s])
        vals = _thin(vals, 2**24)
        lo_hi = torch.stack([vals.min(), vals.max()]) if q == 0 else torch.quantile(
            vals, torch.tensor([q, 1.0 - q]))
        model.float_range[s] = lo_hi.to(model.float_range)
    idx_counts = torch.zeros(cfg.scales, cfg.codebook_size, dtype=torch.long)
    val_counts = torch.zeros(cfg.scales, VALUE_BINS, dtype=torch.long)
    for chunk in chunks:
        analysis = model.analyze(make_batch(dataset, chunk).to(device))
        for s, an in enumerate(analysis):
            lo, hi = (float(v) for v in model.float_range[s])
            rows = to_rows(an.z).cpu()
            for tau in taus:
                sent = unquantized_mask(an.a, tau).reshape(-1).cpu()
                idx_counts[s] += torch.bincount(an.indices.reshape(-1).cpu()[~sent],
                                                minlength=cfg.codebook_size)
                v = rows[sent].reshape(-1).clamp(lo, hi)
                val_counts[s] += torch.histc(v, VALUE_BINS, lo, max(hi, lo + 1e-6)).long()
    model.train(was_training)
    return Statistics(model.float_range.detach().cpu().clone(), idx_counts, val_counts)


def _thin(v: torch.Tensor, limit: int = _RANGE_SAMPLES) -> torch.Tensor:
    """Every k-th element so that at most ``limit`` remain (deterministic)."""
    return v[:: -(-v.numel() // limit)] if v.numel() > limit else v


def export_model(model: AMVQ, path: str | Path, stats: Statistics,
                 meta: dict[str, Any]) -> Path:
    """Write the codec's model file: weights (float ranges included), config, histograms."""
    path = Path(path)
    model.float_range.copy_(stats.float_range.to(model.float_range))
    atomic_save({"format": MODEL_FORMAT, "config": {"model": config_to_dict(model.config)},
                  "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                  "index_counts": stats.index_counts.cpu(),
                  "value_counts": stats.value_counts.cpu(), "meta": meta}, path)
    return path


@dataclass(frozen=True)
class AMVQBundle:
    """A loaded model file: the model (eval mode), its statistics and training metadata."""

    model: AMVQ
    index_counts: torch.Tensor
    value_counts: torch.Tensor
    meta: dict[str, Any]


def load_model(path: str | Path, device: torch.device | str = "cpu") -> AMVQBundle:
    """Load a ``model.pt`` written by :func:`export_model` (``weights_only=True``)."""
    ckpt = torch.load(Path(path), map_location=device, weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != MODEL_FORMAT:
        got = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path}: format {got!r}, expected {MODEL_FORMAT!r}")
    cfg = config_from_dict(ckpt["config"], source=str(path)).model
    model = AMVQ(cfg).to(device)
    model.load_state_dict(ckpt["state_dict"])
    s, k = cfg.scales, cfg.codebook_size
    idx, val = ckpt["index_counts"], ckpt["value_counts"]
    if tuple(idx.shape) != (s, k) or tuple(val.shape) != (s, VALUE_BINS):
        raise ValueError(f"{path}: histograms {tuple(idx.shape)} / {tuple(val.shape)}, "
                         f"expected {(s, k)} / {(s, VALUE_BINS)}")
    return AMVQBundle(model.eval(), idx.cpu(), val.cpu(), dict(ckpt["meta"]))


# --------------------------------------------------------------------------- CLI


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``semcomm train amvq``."""
    parser.add_argument("--config", default="configs/amvq_compact.yaml", help="YAML config")
    parser.add_argument("--out", default="results/train/amvq", help="run folder")
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
    parser.add_argument("--table-images", type=int, default=100,
                        help="images for the float ranges and histograms in model.pt")
    parser.add_argument("--fresh", action="store_true",
                        help="ignore <out>/last.pt instead of resuming from it")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _overridden(cfg: AMVQConfig, args: argparse.Namespace) -> AMVQConfig:
    data = config_to_dict(cfg)
    if args.steps is not None:
        data["train"]["steps"] = args.steps
    if args.batch_size is not None:
        data["train"]["batch_size"] = args.batch_size
    if args.perceptual is not None:
        data["train"]["perceptual"] = args.perceptual
    return config_from_dict(data, source=f"{args.config} (with command-line overrides)")


def build_training_data(cfg: AMVQConfig, seed: int, root: str | None = None
                        ) -> Sequence[Sample]:
    """The concatenated ``train.data`` sources at the model's image size.

    Each source gets those of split="train", count, seed, size and root (``--data-root``)
    that its dataset class takes, plus its own ``params``.
    """
    import inspect

    from semcomm.data import DATASETS, build_dataset

    parts = []
    for src in cfg.train.data:
        if src.name not in DATASETS:
            raise ValueError(f"train.data: dataset {src.name!r} unknown; choose one of "
                             f"{sorted(DATASETS)}")
        accepted = inspect.signature(DATASETS[src.name]).parameters
        offered: dict[str, Any] = {"split": "train", "count": src.count, "seed": seed,
                                   "size": cfg.model.image_size, "root": root}
        kwargs = {k: v for k, v in offered.items() if k in accepted}
        parts.append(build_dataset(src.name, **{**kwargs, **src.params}))
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


def run(args: argparse.Namespace) -> int:
    """Train (or resume) and export the model file; returns 0 on success."""
    from semcomm.codecs.sqgan.losses import build_perceptual

    cfg = _overridden(load_config(args.config), args)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else "cpu" if args.device == "auto" else args.device)
    dataset = build_training_data(cfg, args.seed, args.data_root)
    perceptual = build_perceptual(cfg.train.perceptual, cfg.train.perceptual_layers,
                                  args.lpips_vgg, args.lpips_lin)
    trainer = Trainer(cfg, dataset, args.seed, device, perceptual)
    if args.init is not None:
        trainer.init_from(args.init)
    out = Path(args.out)
    if args.fresh and (out / "last.pt").is_file():
        (out / "last.pt").unlink()
    path = trainer.fit(out, progress=not args.no_progress, table_images=args.table_images)
    print(f"amvq: {trainer.step} steps, perceptual={cfg.train.perceptual}; model written to "
          f"{path} (copy it to semcomm/assets/amvq.pt to ship it)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m semcomm.codecs.amvq.train`` (same arguments as ``semcomm train amvq``)."""
    parser = argparse.ArgumentParser(prog="semcomm train amvq")
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
