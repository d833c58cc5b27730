"""``semcomm train sqgan``: the three training stages of SQ-GAN.

::

    semcomm train sqgan --stage ssm --config configs/sqgan_compact.yaml
    semcomm train sqgan --stage img --config ... --init results/train/sqgan/ssm/model.pt
    semcomm train sqgan --stage all --config ... --init results/train/sqgan/img/model.pt

    stage ssm : G_s alone (class-weighted CE + adversarial on class maps + VQ)
    stage img : G_x with its decoder on the ground-truth map
                (class-weighted L1 + perceptual + adaptive adversarial + VQ)
    stage all : G_x fine-tuned with its decoder on G_s's decoded map (G_s frozen)

Every step draws the kept fraction m (log-normal, snapped to the configured set),
augments the batch, takes one generator and one discriminator step. All randomness of
step t derives from (seed, stage, t), so a run resumed from ``<out>/<stage>/last.pt``
continues with exactly the numbers of an uninterrupted run. Outputs per stage:

    <out>/<stage>/last.pt         resumable: weights, optimisers, discriminator, step
    <out>/<stage>/loss_log.jsonl  one JSON line per logged step
    <out>/<stage>/model.pt        weights of both branches + config + index counts
                                  (the file the codec loads; weights_only=True)
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from semcomm.codecs.config_schema import config_to_dict
from semcomm.codecs.sqgan.augment import augment_batch
from semcomm.codecs.sqgan.config import SQGANConfig, config_from_dict, load_config
from semcomm.codecs.sqgan.losses import SQGANLoss, build_perceptual
from semcomm.codecs.sqgan.model import SQGAN, STAGES, labels_from_logits, one_hot_labels
from semcomm.codecs.training import atomic_save, lr_at, truncate_log
from semcomm.data.types import Sample

#: Stage -> stream id mixed into every seed of that stage.
_STAGE_ID = {"ssm": 1, "img": 2, "all": 3}
TRAIN_FORMAT = "semcomm.sqgan.train/1"
MODEL_FORMAT = "semcomm.sqgan.model/1"


def sample_mask_fraction(rng: np.random.Generator, fractions: Sequence[float], mu: float,
                         sigma: float) -> float:
    """m ~ LogNormal(mu, sigma), snapped to the nearest of ``fractions`` (public config)."""
    value = rng.lognormal(mean=mu, sigma=sigma)
    return float(min(fractions, key=lambda f: abs(f - value)))


def batch_indices(n: int, batch: int, step: int, seed: int, stage: str) -> list[int]:
    """Dataset indices of batch ``step``: walks a per-epoch permutation, resumable."""
    out = []
    for j in range(batch):
        epoch, pos = divmod(step * batch + j, n)
        perm = np.random.default_rng([seed, _STAGE_ID[stage], 0, epoch]).permutation(n)
        out.append(int(perm[pos]))
    return out


def make_batch(dataset: Sequence[Sample], indices: Sequence[int]) -> tuple[torch.Tensor,
                                                                          torch.Tensor]:
    """Samples -> x [B, 3, H, W] float32 in [0, 1], s [B, H, W] int64 trainIds."""
    samples = [dataset[i] for i in indices]
    if any(smp.labels is None for smp in samples):
        raise ValueError("SQ-GAN training needs labelled samples (labels is None)")
    x = torch.from_numpy(np.stack([smp.image for smp in samples])).permute(0, 3, 1, 2)
    s = torch.from_numpy(np.stack([np.asarray(smp.labels) for smp in samples]))
    return x.float().div_(255.0), s.long()


@dataclass(frozen=True)
class StepResult:
    """Scalars of one training step, one line of the loss log."""

    step: int
    m_x: float
    m_s: float
    lr: float
    logs: dict[str, float]


class Trainer:
    """One training stage of SQ-GAN.

    Parameters
    ----------
    cfg : SQGANConfig
    stage : {"ssm", "img", "all"}
    dataset : sequence of :class:`Sample` with labels, at ``cfg.model.image_size``
    seed : int >= 0
    device : torch.device
    perceptual : module (x, x_hat) -> scalar, or None (image stages only)
    """

    def __init__(self, cfg: SQGANConfig, stage: str, dataset: Sequence[Sample], seed: int = 0,
                 device: torch.device | str = "cpu",
                 perceptual: torch.nn.Module | None = None) -> None:
        if stage not in STAGES:
            raise ValueError(f"stage {stage!r} not in {STAGES}")
        if seed is None or seed < 0:
            raise ValueError(f"seed {seed!r} must be a non-negative int")
        if len(dataset) < 1:
            raise ValueError("training dataset is empty")
        self.cfg, self.stage, self.dataset, self.seed = cfg, stage, dataset, seed
        self.device = torch.device(device)
        torch.manual_seed(_derived_seed(seed, stage, -1))  # weight initialisation
        self.model = SQGAN(cfg.model).to(self.device)
        self.branch = self.model.semantic if stage == "ssm" else self.model.image
        self.loss = SQGANLoss(cfg.train, stage, perceptual).to(self.device)
        t = cfg.train
        self.opt_g = torch.optim.Adam(self.branch.parameters(), lr=t.lr, betas=t.betas)
        self.opt_d = torch.optim.Adam(self.loss.disc.parameters(), lr=t.lr, betas=t.betas)
        self.step = 0

    @property
    def total_steps(self) -> int:
        return self.cfg.train.steps.get(self.stage, 0)

    def _set_modes(self) -> None:
        # Only the trained branch is in training mode: in stage "all" the frozen G_s
        # must neither update its EMA codebook nor use straight-through estimates.
        self.model.eval()
        self.branch.train()
        self.loss.train()

    def _forward(self, x: torch.Tensor, s: torch.Tensor, m_x: float, m_s: float) -> Any:
        if self.stage == "ssm":
            return self.model.forward_semantic(s, m_s)
        s_dec = None
        if self.stage == "all":
            with torch.no_grad():
                s_dec = labels_from_logits(self.model.forward_semantic(s, m_s).output)
        return self.model.forward_image(x, s, m_x, s_dec)

    def train_step(self) -> StepResult:
        """One generator and one discriminator update; returns the step's scalars."""
        t, step = self.cfg.train, self.step
        rng = np.random.default_rng([self.seed, _STAGE_ID[self.stage], 1, step])
        torch.manual_seed(_derived_seed(self.seed, self.stage, step))  # VQ restarts
        m_x = sample_mask_fraction(rng, t.mask_fractions, t.mask_lognormal_mu,
                                   t.mask_lognormal_sigma)
        m_s = sample_mask_fraction(rng, t.mask_fractions, t.mask_lognormal_mu,
                                   t.mask_lognormal_sigma)
        x, s = make_batch(self.dataset, batch_indices(len(self.dataset), t.batch_size, step,
                                                       self.seed, self.stage))
        x, s = augment_batch(x, s, t.augment, rng)
        x, s = x.to(self.device), s.to(self.device)
        lr = lr_at(step, self.total_steps, t.lr, t.min_lr, t.warmup_steps)
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr
        self._set_modes()
        out = self._forward(x, s, m_x, m_s)
        onehot = one_hot_labels(s)
        self.loss.disc.requires_grad_(False)
        gen = self.loss.generator(x, onehot, out, self.branch.decoder.last_layer, step)
        self.opt_g.zero_grad(set_to_none=True)
        gen.loss.backward()
        self.opt_g.step()
        self.loss.disc.requires_grad_(True)
        logs = dict(gen.logs)
        if step >= t.disc_start:
            dis = self.loss.discriminator(x, onehot, out)
            self.opt_d.zero_grad(set_to_none=True)
            dis.loss.backward()
            self.opt_d.step()
            logs.update(dis.logs)
        self.step += 1
        return StepResult(step, m_x, m_s, lr, logs)

    # ----------------------------------------------------------------- checkpoints

    def state(self) -> dict[str, Any]:
        """Resumable state (loads with ``weights_only=True``)."""
        return {"format": TRAIN_FORMAT, "stage": self.stage, "step": self.step,
                "seed": self.seed, "config": config_to_dict(self.cfg),
                "model": self.model.state_dict(), "disc": self.loss.disc.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}

    def save(self, path: str | Path) -> None:
        """Write the resumable checkpoint atomically."""
        atomic_save(self.state(), Path(path))

    def resume(self, path: str | Path) -> None:
        """Restore a checkpoint written by :meth:`save` for the same stage and config."""
        ckpt = torch.load(Path(path), map_location=self.device, weights_only=True)
        if ckpt.get("format") != TRAIN_FORMAT or ckpt.get("stage") != self.stage:
            raise ValueError(f"{path}: not a {self.stage!r} training checkpoint "
                             f"(format {ckpt.get('format')!r}, stage {ckpt.get('stage')!r})")
        if config_from_dict(ckpt["config"]).model != self.cfg.model:
            raise ValueError(f"{path}: model config differs from the current config")
        self.model.load_state_dict(ckpt["model"])
        self.loss.disc.load_state_dict(ckpt["disc"])
        self.opt_g.load_state_dict(ckpt["opt_g"])
        self.opt_d.load_state_dict(ckpt["opt_d"])
        self.step = int(ckpt["step"])

    def init_from(self, path: str | Path, branch: str | None = None) -> None:
        """Load model weights from a ``model.pt`` or a ``last.pt``: both branches, or
        only ``branch`` ("semantic" | "image"; e.g. G_s from a longer ``ssm`` run)."""
        if branch not in (None, "semantic", "image"):
            raise ValueError(f"branch {branch!r} not in (None, 'semantic', 'image')")
        ckpt = torch.load(Path(path), map_location=self.device, weights_only=True)
        state = ckpt.get("state_dict", ckpt.get("model"))
        if ckpt.get("format") not in (MODEL_FORMAT, TRAIN_FORMAT) or state is None:
            raise ValueError(f"{path}: neither a model.pt nor a training checkpoint")
        stored = config_from_dict({"model": ckpt["config"]["model"]}, source=str(path)).model
        if stored != self.cfg.model:
            raise ValueError(f"{path}: its model config differs from the current config")
        if branch is not None:
            ours = self.model.state_dict()
            state = {**ours, **{k: v for k, v in state.items() if k.startswith(branch + ".")}}
        self.model.load_state_dict(state)

    def fit(self, out_dir: str | Path, progress: bool = True,
            table_images: int = 100, stop_at: int | None = None) -> Path:
        """Train to ``total_steps`` (resuming from ``out_dir/last.pt`` if present), or only
        to step ``stop_at`` of that schedule (the learning rate still follows
        ``total_steps``, so a later run without ``stop_at`` continues it exactly).

        Returns the path of the written ``model.pt``.
        """
        if stop_at is not None and stop_at < 0:
            raise ValueError(f"stop_at {stop_at} must be >= 0")
        end = self.total_steps if stop_at is None else min(stop_at, self.total_steps)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        last, log_path = out / "last.pt", out / "loss_log.jsonl"
        if last.is_file():
            self.resume(last)
            warnings.warn(f"resuming {self.stage} from step {self.step} ({last})", stacklevel=2)
        truncate_log(log_path, self.step)
        t = self.cfg.train
        bar = tqdm(total=end, initial=min(self.step, end), disable=not progress,
                   desc=f"sqgan {self.stage}")
        with log_path.open("a") as log:
            while self.step < end:
                tic = time.perf_counter()
                res = self.train_step()
                bar.update(1)
                if res.step % t.log_every == 0 or self.step == end:
                    log.write(json.dumps(_log_line(res, self.stage,
                                                   time.perf_counter() - tic)) + "\n")
                    log.flush()
                    bar.set_postfix({k: f"{v:.3g}" for k, v in res.logs.items()
                                     if k in ("rec", "g", "d", "perplexity")})
                if self.step % t.save_every == 0 or self.step == end:
                    self.save(last)
        bar.close()
        counts = collect_index_counts(self.model, self.dataset, t.mask_fractions,
                                      min(table_images, len(self.dataset)))
        return export_model(self.model, out / "model.pt", counts,
                            {"stage": self.stage, "step": self.step, "seed": self.seed})


def _derived_seed(seed: int, stage: str, step: int) -> int:
    seq = np.random.SeedSequence([seed, _STAGE_ID[stage], 2, step + 1])
    return int(seq.generate_state(1, dtype=np.uint64)[0] % (2**63))


def _log_line(res: StepResult, stage: str, seconds: float) -> dict[str, Any]:
    return {"stage": stage, "step": res.step, "lr": res.lr, "m_x": res.m_x, "m_s": res.m_s,
            "sec_per_step": round(seconds, 4), **res.logs}


# --------------------------------------------------------------------------- model file


@torch.no_grad()
def collect_index_counts(model: SQGAN, dataset: Sequence[Sample], fractions: Sequence[float],
                         count: int, batch: int = 8) -> dict[str, torch.Tensor]:
    """Histogram of the transmitted code indices per branch, for the entropy coder.

    Encodes the first ``count`` images at every kept fraction in ``fractions`` (both
    branches at the same m) and counts the kept indices: ``{"image": [K_x] int64,
    "semantic": [K_s] int64}``. Raw counts, zeros included; smoothing is the coder's job.
    """
    k_x, k_s = model.config.image.codebook_size, model.config.semantic.codebook_size
    counts = {"image": torch.zeros(k_x, dtype=torch.long),
              "semantic": torch.zeros(k_s, dtype=torch.long)}
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    for start in range(0, count, batch):
        x, s = make_batch(dataset, range(start, min(start + batch, count)))
        for m in fractions:
            tok = model.encode_tokens(x.to(device), s.to(device), m, m)
            for name, k, br in (("image", k_x, tok.image), ("semantic", k_s, tok.semantic)):
                counts[name] += torch.bincount(br.indices[br.kept].cpu(), minlength=k)
    model.train(was_training)
    return counts


def export_model(model: SQGAN, path: str | Path, index_counts: dict[str, torch.Tensor],
                 meta: dict[str, Any]) -> Path:
    """Write the codec's model file: weights of both branches, config, index counts."""
    path = Path(path)
    atomic_save({"format": MODEL_FORMAT, "config": {"model": config_to_dict(model.config)},
                  "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                  "index_counts": index_counts, "meta": meta}, path)
    return path


@dataclass(frozen=True)
class SQGANBundle:
    """A loaded model file: the model (eval mode), index counts and training metadata."""

    model: SQGAN
    index_counts: dict[str, torch.Tensor]
    meta: dict[str, Any]


def load_model(path: str | Path, device: torch.device | str = "cpu") -> SQGANBundle:
    """Load a ``model.pt`` written by :func:`export_model` (``weights_only=True``)."""
    ckpt = torch.load(Path(path), map_location=device, weights_only=True)
    if ckpt.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path}: format {ckpt.get('format')!r}, expected {MODEL_FORMAT!r}")
    cfg = config_from_dict(ckpt["config"], source=str(path)).model
    model = SQGAN(cfg).to(device)
    model.load_state_dict(ckpt["state_dict"])
    return SQGANBundle(model.eval(), dict(ckpt["index_counts"]), dict(ckpt["meta"]))


# --------------------------------------------------------------------------- CLI


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``semcomm train sqgan``."""
    parser.add_argument("--stage", required=True, choices=STAGES,
                        help="ssm: G_s; img: G_x on true maps; all: G_x on G_s's maps")
    parser.add_argument("--config", default="configs/sqgan_compact.yaml", help="YAML config")
    parser.add_argument("--out", default="results/train/sqgan",
                        help="run folder; the stage writes <out>/<stage>/")
    parser.add_argument("--init", default=None,
                        help="model.pt (or last.pt) to start from, e.g. the previous stage's")
    parser.add_argument("--semantic-from", default=None,
                        help="model.pt whose G_s replaces --init's (e.g. a longer ssm run)")
    parser.add_argument("--steps", type=int, default=None, help="override train.steps[stage]")
    parser.add_argument("--batch-size", type=int, default=None, help="override train.batch_size")
    parser.add_argument("--lr", type=float, default=None, help="override train.lr")
    parser.add_argument("--disc-start", type=int, default=None,
                        help="override train.disc_start (first step with the adversarial term)")
    parser.add_argument("--stop-at", type=int, default=None,
                        help="stop at this step of the schedule (resume later to continue)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--perceptual", choices=("segmenter", "lpips", "none"), default=None,
                        help="override train.perceptual")
    parser.add_argument("--lpips-vgg", default=None, help="torchvision VGG16 weights (.pth)")
    parser.add_argument("--lpips-lin", default=None, help="LPIPS v0.1 linear heads (vgg.pth)")
    parser.add_argument("--data-root", default=None, help="dataset root (cityscapes, folders)")
    parser.add_argument("--table-images", type=int, default=100,
                        help="images for the index frequency tables in model.pt")
    parser.add_argument("--fresh", action="store_true",
                        help="ignore <out>/<stage>/last.pt instead of resuming from it")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _overridden(cfg: SQGANConfig, args: argparse.Namespace) -> SQGANConfig:
    data = config_to_dict(cfg)
    if args.steps is not None:
        data["train"]["steps"][args.stage] = args.steps
    if args.batch_size is not None:
        data["train"]["batch_size"] = args.batch_size
    if args.perceptual is not None:
        data["train"]["perceptual"] = args.perceptual
    if args.lr is not None:
        data["train"]["lr"] = args.lr
    if args.disc_start is not None:
        data["train"]["disc_start"] = args.disc_start
    return config_from_dict(data, source=f"{args.config} (with command-line overrides)")


def run(args: argparse.Namespace) -> int:
    """Train one stage; returns 0 on success."""
    cfg = _overridden(load_config(args.config), args)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else "cpu" if args.device == "auto" else args.device)
    from semcomm.data import build_dataset

    kwargs: dict[str, Any] = {"split": "train", "count": cfg.train.train_count,
                              "size": cfg.model.image_size, "seed": args.seed}
    if args.data_root is not None:
        kwargs = {"split": "train", "size": cfg.model.image_size, "root": args.data_root}
    dataset = build_dataset(cfg.train.dataset, **kwargs)
    perceptual = None
    if args.stage != "ssm":
        perceptual = build_perceptual(cfg.train.perceptual, cfg.train.perceptual_layers,
                                      args.lpips_vgg, args.lpips_lin)
    trainer = Trainer(cfg, args.stage, dataset, args.seed, device, perceptual)
    if args.init is not None:
        trainer.init_from(args.init)
    if args.semantic_from is not None:
        trainer.init_from(args.semantic_from, branch="semantic")
    out = Path(args.out) / args.stage
    if args.fresh and (out / "last.pt").is_file():
        (out / "last.pt").unlink()
    path = trainer.fit(out, progress=not args.no_progress, table_images=args.table_images,
                       stop_at=args.stop_at)
    print(f"sqgan {args.stage}: {trainer.step} steps, perceptual={cfg.train.perceptual}; "
          f"model written to {path}")
    return 0
