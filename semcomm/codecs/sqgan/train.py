"""``semcomm train sqgan``: the three training stages of SQ-GAN.

::

    semcomm train sqgan --stage ssm --config configs/sqgan_compact.yaml
    semcomm train sqgan --stage img --config ... --init results/train/sqgan/ssm/model.pt
    semcomm train sqgan --stage all --config ... --init results/train/sqgan/img/model.pt
    semcomm train sqgan --stage all --config ... --steps T_img+T_all \
        --continue-from results/train/sqgan/img/last.pt   # the img run's own optimisers,
                                                          # discriminator and schedule

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

The loop itself (schedule, G/D alternation, EMA, logging, checkpoints, DataLoader
workers, bf16/channels-last/compile options) is the shared one in
``semcomm.codecs.learned.trainer``; this module holds SQ-GAN's hooks, batches and
model-file statistics. See ``docs/training.md``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from semcomm.codecs.learned import cli
from semcomm.codecs.learned.data import StepData, images_tensor, step_rng, training_data
from semcomm.codecs.learned.data import batch_indices as _batch_indices
from semcomm.codecs.learned.modelfile import statistics_mode
from semcomm.codecs.learned.perceptual import LossResult, build_perceptual
from semcomm.codecs.learned.trainer import GANTrainer, RunOptions, lr_at
from semcomm.codecs.sqgan.augment import augment_batch
from semcomm.codecs.sqgan.config import SQGANConfig, TrainConfig, config_from_dict, load_config
from semcomm.codecs.sqgan.losses import SQGANLoss
from semcomm.codecs.sqgan.model import SQGAN, STAGES, labels_from_logits, one_hot_labels
from semcomm.codecs.sqgan.modelfile import MODEL_FORMAT, export_model, load_model
from semcomm.data.types import Sample

__all__ = ["MODEL_FORMAT", "Trainer", "batch_indices", "collect_index_counts",
           "configure", "export_model", "load_model", "lr_at", "make_batch", "run",
           "sample_mask_fraction"]

#: Stage -> stream id mixed into every seed of that stage.
_STAGE_ID = {"ssm": 1, "img": 2, "all": 3}


def sample_mask_fraction(rng: np.random.Generator, fractions: Sequence[float], mu: float,
                         sigma: float) -> float:
    """m ~ LogNormal(mu, sigma), snapped to the nearest of ``fractions`` (public config)."""
    value = rng.lognormal(mean=mu, sigma=sigma)
    return float(min(fractions, key=lambda f: abs(f - value)))


def batch_indices(n: int, batch: int, step: int, seed: int, stage: str) -> list[int]:
    """Dataset indices of batch ``step`` of ``stage``: a per-epoch permutation, resumable."""
    return _batch_indices(n, batch, step, seed, _STAGE_ID[stage])


def make_batch(dataset: Sequence[Sample], indices: Sequence[int]) -> tuple[torch.Tensor,
                                                                          torch.Tensor]:
    """Samples -> x [B, 3, H, W] float32 in [0, 1], s [B, H, W] int64 trainIds."""
    samples = [dataset[i] for i in indices]
    if any(smp.labels is None for smp in samples):
        raise ValueError("SQ-GAN training needs labelled samples (labels is None)")
    s = torch.from_numpy(np.stack([np.asarray(smp.labels) for smp in samples]))
    return images_tensor([smp.image for smp in samples]), s.long()


@dataclass(frozen=True)
class SQGANBatches:
    """Step t -> knobs m_x, m_s and the augmented batch (x, s); picklable for workers."""

    train: TrainConfig
    dataset: Sequence[Sample]
    seed: int
    stage: str

    def __call__(self, step: int) -> StepData:
        t, stream = self.train, _STAGE_ID[self.stage]
        rng = step_rng(self.seed, stream, step)
        m_x = sample_mask_fraction(rng, t.mask_fractions, t.mask_lognormal_mu,
                                   t.mask_lognormal_sigma)
        m_s = sample_mask_fraction(rng, t.mask_fractions, t.mask_lognormal_mu,
                                   t.mask_lognormal_sigma)
        x, s = make_batch(self.dataset, batch_indices(len(self.dataset), t.batch_size, step,
                                                      self.seed, self.stage))
        x, s = augment_batch(x, s, t.augment, rng)
        return StepData({"m_x": m_x, "m_s": m_s}, (x, s))


class Trainer(GANTrainer[SQGANConfig, SQGAN, SQGANLoss]):
    """One training stage of SQ-GAN (the shared loop with SQ-GAN's hooks).

    Parameters
    ----------
    cfg : SQGANConfig
    stage : {"ssm", "img", "all"}
    dataset : sequence of :class:`Sample` with labels, at ``cfg.model.image_size``
    seed : int >= 0
    device : torch.device
    perceptual : module (x, x_hat) -> scalar, or None (image stages only)
    options : RunOptions (workers, precision, ...)
    """

    name, label = "sqgan", "an SQ-GAN"
    model_format = MODEL_FORMAT
    progress_keys = ("rec", "g", "d", "perplexity")

    def __init__(self, cfg: SQGANConfig, stage: str, dataset: Sequence[Sample], seed: int = 0,
                 device: torch.device | str = "cpu", perceptual: nn.Module | None = None,
                 options: RunOptions | None = None) -> None:
        if stage not in STAGES:
            raise ValueError(f"stage {stage!r} not in {STAGES}")
        self.stage, self.stream = stage, _STAGE_ID[stage]
        super().__init__(cfg, dataset, seed, device, perceptual, options)

    def build_model(self) -> SQGAN:
        model = SQGAN(self.cfg.model)
        self.branch = model.semantic if self.stage == "ssm" else model.image
        return model

    def build_loss(self, perceptual: nn.Module | None) -> SQGANLoss:
        return SQGANLoss(self.cfg.train, self.stage, perceptual)

    def generator_parameters(self) -> Any:
        return self.branch.parameters()

    def batch_maker(self) -> SQGANBatches:
        return SQGANBatches(self.cfg.train, self.dataset, self.seed, self.stage)

    @property
    def total_steps(self) -> int:
        return self.cfg.train.steps.get(self.stage, 0)

    @property
    def run_name(self) -> str:
        return self.stage

    def tags(self) -> dict[str, Any]:
        return {"stage": self.stage}

    def checkpoint_label(self) -> str:
        return f"a {self.stage!r}"

    def model_config(self, data: Any, source: str) -> Any:
        return config_from_dict({"model": data}, source=source).model

    def to_device(self, tensors: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        x, s = super().to_device(tensors)
        return x, s, one_hot_labels(s)

    def set_modes(self) -> None:
        # Only the trained branch is in training mode: in stage "all" the frozen G_s
        # must neither update its EMA codebook nor use straight-through estimates.
        self.model.eval()
        self.branch.train()
        self.loss.train()

    def forward(self, batch: tuple[torch.Tensor, ...], knobs: dict[str, float]) -> Any:
        x, s, _ = batch
        if self.stage == "ssm":
            return self.model.forward_semantic(s, knobs["m_s"])
        s_dec = None
        if self.stage == "all":
            with torch.no_grad():
                s_dec = labels_from_logits(self.model.forward_semantic(s, knobs["m_s"]).output)
        return self.model.forward_image(x, s, knobs["m_x"], s_dec)

    def generator_loss(self, batch: tuple[torch.Tensor, ...], out: Any,
                       step: int) -> LossResult:
        x, _, onehot = batch
        return self.loss.generator(x, onehot, out, self.branch.decoder.last_layer, step)

    def discriminator_loss(self, batch: tuple[torch.Tensor, ...], out: Any) -> LossResult:
        x, _, onehot = batch
        return self.loss.discriminator(x, onehot, out)

    def init_from(self, path: str | Path, branch: str | None = None,
                  exclude: Sequence[str] = ()) -> dict[str, Any]:
        """Load model weights from a ``model.pt`` or a ``last.pt``: both branches, or
        only ``branch`` ("semantic" | "image"; e.g. G_s from a longer ``ssm`` run), less
        the ``exclude`` prefixes (``GANTrainer.init_from``)."""
        if branch not in (None, "semantic", "image"):
            raise ValueError(f"branch {branch!r} not in (None, 'semantic', 'image')")
        return super().init_from(path, prefix=branch, exclude=exclude)

    def export(self, path: Path, table_images: int) -> Path:
        counts = collect_index_counts(self.model, self.dataset, self.cfg.train.mask_fractions,
                                      min(table_images, len(self.dataset)))
        return export_model(self.model, path, counts,
                            {"stage": self.stage, "step": self.step, "seed": self.seed})


# --------------------------------------------------------------------------- model file


@torch.no_grad()
def collect_index_counts(model: SQGAN, dataset: Sequence[Sample], fractions: Sequence[float],
                         count: int, batch: int = 8) -> dict[str, torch.Tensor]:
    """Histogram of the transmitted code indices per branch, for the entropy coder.

    Encodes the first ``count`` images at every kept fraction in ``fractions`` (both
    branches at the same m) and counts the kept indices: ``{"image": [K_x] int64,
    "semantic": [K_s] int64}``. Raw counts, zeros included; smoothing is the coder's job.
    """
    with statistics_mode(model, count) as device:
        k_x, k_s = model.config.image.codebook_size, model.config.semantic.codebook_size
        counts = {"image": torch.zeros(k_x, dtype=torch.long),
                  "semantic": torch.zeros(k_s, dtype=torch.long)}
        for start in range(0, count, batch):
            x, s = make_batch(dataset, range(start, min(start + batch, count)))
            for m in fractions:
                tok = model.encode_tokens(x.to(device), s.to(device), m, m)
                for name, k, br in (("image", k_x, tok.image), ("semantic", k_s, tok.semantic)):
                    counts[name] += torch.bincount(br.indices[br.kept].cpu(), minlength=k)
    return counts


# --------------------------------------------------------------------------- CLI


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``semcomm train sqgan`` (the shared ones and the stage)."""
    parser.add_argument("--stage", required=True, choices=STAGES,
                        help="ssm: G_s; img: G_x on true maps; all: G_x on G_s's maps")
    parser.add_argument("--continue-from", default=None, metavar="LAST_PT",
                        help="stage all only: the img stage's last.pt, whose run (weights, "
                        "discriminator, optimisers, step) stage all continues on decoded "
                        "maps; --steps counts from that run's start")
    parser.add_argument("--semantic-from", default=None,
                        help="model.pt whose G_s replaces --init's (e.g. a longer ssm run)")
    cli.configure(parser, "sqgan")


def _overridden(cfg: SQGANConfig, args: argparse.Namespace) -> SQGANConfig:
    def set_steps(data: dict[str, Any], steps: int) -> None:
        data["train"]["steps"][args.stage] = steps

    out: SQGANConfig = cli.load_overridden(args, lambda _: cfg, config_from_dict, set_steps)
    return out


def run(args: argparse.Namespace) -> int:
    """Train one stage; the stage writes ``<out>/<stage>/``; returns 0 on success."""
    try:  # set-up: a bad option, config or input file is one line, exit status 2
        cli.check_files(args, "init", "semantic_from", "continue_from", "lpips_vgg",
                        "lpips_lin")
        if args.continue_from is not None and (args.stage != "all" or args.init is not None):
            raise ValueError("--continue-from (an img run's last.pt) goes with --stage all "
                             "and without --init")
        cfg = _overridden(load_config(args.config), args)
        device = cli.device_of(args)
        dataset = training_data(cfg.train.data, cfg.model.image_size, args.seed,
                                args.data_root)
        perceptual = None
        if args.stage != "ssm":
            perceptual = build_perceptual(cfg.train.perceptual, cfg.train.perceptual_layers,
                                          args.lpips_vgg, args.lpips_lin)
        trainer = Trainer(cfg, args.stage, dataset, args.seed, device, perceptual,
                          cli.options_of(args))
        if args.init is not None:
            trainer.init_from(args.init, exclude=args.init_except)
        out = Path(args.out) / args.stage
        if args.continue_from is not None and (args.fresh or not (out / "last.pt").is_file()):
            trainer.resume(args.continue_from, expect={"stage": "img"})
        if args.semantic_from is not None:  # G_s of a separate ssm run
            trainer.init_from(args.semantic_from, branch="semantic")
    except cli.INPUT_ERRORS as err:
        return cli.bad_input("semcomm train sqgan", err)
    path = cli.finish(trainer, args, out)
    print(f"sqgan {args.stage}: {trainer.step} steps, perceptual={cfg.train.perceptual}; "
          f"model written to {path}")
    return 0
