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

The loop itself (schedule, G/D alternation, EMA, logging, checkpoints, DataLoader
workers, bf16/channels-last/compile options) is the shared one in
``semcomm.codecs.learned.trainer``; this module holds AM-VQ's hooks, batches and
model-file statistics. See ``docs/training.md``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semcomm.codecs.amvq.activation import unquantized_mask
from semcomm.codecs.amvq.config import AMVQConfig, TrainConfig, config_from_dict, load_config
from semcomm.codecs.amvq.losses import AMVQLoss
from semcomm.codecs.amvq.model import AMVQ, to_rows
from semcomm.codecs.amvq.modelfile import (
    MODEL_FORMAT,
    VALUE_BINS,
    Statistics,
    export_model,
    load_model,
)
from semcomm.codecs.learned import cli
from semcomm.codecs.learned.data import (
    ConcatDataset,
    StepData,
    images_tensor,
    step_rng,
    training_data,
)
from semcomm.codecs.learned.data import batch_indices as _batch_indices
from semcomm.codecs.learned.modelfile import statistics_mode
from semcomm.codecs.learned.perceptual import LossResult
from semcomm.codecs.learned.trainer import GANTrainer
from semcomm.data.types import Sample

__all__ = ["MODEL_FORMAT", "VALUE_BINS", "ConcatDataset", "Trainer",
           "batch_indices", "build_training_data", "collect_statistics", "configure",
           "export_model", "load_model", "make_batch", "run", "sample_tau"]

#: Stream id of AM-VQ in every derived seed (distinct from SQ-GAN's stages 1-3).
_STREAM = 7
#: Values per scale and batch kept for the float-range quantiles at export.
_RANGE_SAMPLES = 2**20


def sample_tau(rng: np.random.Generator, choices: Sequence[float]) -> float:
    """tau drawn uniformly from ``choices``."""
    return float(choices[int(rng.integers(len(choices)))])


def batch_indices(n: int, batch: int, step: int, seed: int) -> list[int]:
    """Dataset indices of batch ``step``: walks a per-epoch permutation, resumable."""
    return _batch_indices(n, batch, step, seed, _STREAM)


def make_batch(dataset: Sequence[Sample], indices: Iterable[int]) -> torch.Tensor:
    """Samples -> x [B, 3, H, W] float32 in [0, 1] (labels are not used by AM-VQ)."""
    return images_tensor([dataset[i].image for i in indices])


def build_training_data(cfg: AMVQConfig, seed: int, root: str | None = None
                        ) -> Sequence[Sample]:
    """The concatenated ``train.data`` sources at the model's image size."""
    return training_data(cfg.train.data, cfg.model.image_size, seed, root)


@dataclass(frozen=True)
class AMVQBatches:
    """Step t -> knob tau and the (flipped) images x; picklable for DataLoader workers."""

    train: TrainConfig
    dataset: Sequence[Sample]
    seed: int

    def __call__(self, step: int) -> StepData:
        t = self.train
        rng = step_rng(self.seed, _STREAM, step)
        tau = sample_tau(rng, t.tau_choices)
        x = make_batch(self.dataset, batch_indices(len(self.dataset), t.batch_size, step,
                                                   self.seed))
        flip = torch.from_numpy(rng.random(x.shape[0]) < t.hflip_p)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return StepData({"tau": tau}, (x,))


class Trainer(GANTrainer[AMVQConfig, AMVQ, AMVQLoss]):
    """AM-VQ training (the shared loop with AM-VQ's hooks).

    ``Trainer(cfg: AMVQConfig, dataset, seed=0, device="cpu", perceptual=None,
    options=None)``; dataset : sequence of :class:`Sample` at ``cfg.model.image_size``
    (labels unused).
    """

    name, label = "amvq", "an AM-VQ"
    model_format = MODEL_FORMAT
    progress_keys = ("l1", "g", "d", "unquantized")
    stream, model_class, loss_class = _STREAM, AMVQ, AMVQLoss

    def generator_parameters(self) -> Any:
        if self.cfg.train.freeze_encoder:
            return list(self.model.decoder.parameters())
        return [*self.model.encoder.parameters(), *self.model.decoder.parameters()]

    def set_modes(self) -> None:
        """Train mode; with ``freeze_encoder`` the encoder and codebooks stay in eval mode
        (batch-norm statistics and EMA codebooks fixed) and get no gradients."""
        super().set_modes()
        if self.cfg.train.freeze_encoder:
            for part in (self.model.encoder, self.model.quantizers):
                part.eval()
                part.requires_grad_(False)

    def batch_maker(self) -> AMVQBatches:
        return AMVQBatches(self.cfg.train, self.dataset, self.seed)

    def model_config(self, data: Any, source: str) -> Any:
        """A checkpoint's model config; its activation map is not compared (the map has
        no weights, so ``--init`` may start a ``layercam`` fine-tune from a ``gradcam``
        file)."""
        cfg = config_from_dict({"model": data}, source=source).model
        return replace(cfg, activation=self.cfg.model.activation)

    def forward(self, batch: tuple[torch.Tensor, ...], knobs: dict[str, float]) -> Any:
        return self.model(batch[0], knobs["tau"], commit_floats=self.cfg.train.commit_floats)

    def generator_loss(self, batch: tuple[torch.Tensor, ...], out: Any,
                       step: int) -> LossResult:
        return self.loss.generator(batch[0], out, self.model.decoder.last_layer, step)

    def discriminator_loss(self, batch: tuple[torch.Tensor, ...], out: Any) -> LossResult:
        return self.loss.discriminator(batch[0], out)

    def init_from(self, path: str | Path, prefix: str | None = None,
                  exclude: Sequence[str] = ()) -> dict[str, Any]:
        """The shared ``--init``, remembering the source file and its steps for the
        exported file's metadata (``init``, ``init_steps``: a fine-tune or re-export
        says what it started from)."""
        ckpt = super().init_from(path, prefix, exclude)
        meta = ckpt.get("meta", {})
        self.init_meta = {"init": Path(path).name,
                          "init_steps": int(meta.get("init_steps", 0)) + int(
                              meta.get("step", ckpt.get("step", 0)))}
        return ckpt

    def export(self, path: Path, table_images: int) -> Path:
        t = self.cfg.train
        stats = collect_statistics(self.model, self.dataset, t.tau_choices,
                                   min(table_images, len(self.dataset)))
        meta = {"step": self.step, "seed": self.seed, "tau_choices": list(t.tau_choices),
                **getattr(self, "init_meta", {})}
        return export_model(self.model, path, stats, meta)


# --------------------------------------------------------------------------- model file


@torch.no_grad()
def collect_statistics(model: AMVQ, dataset: Sequence[Sample], taus: Sequence[float],
                       count: int, batch: int = 8) -> Statistics:
    """Float ranges and index / value histograms over the first ``count`` images.

    Pass 1 sets ``model.float_range`` to the [q, 1 - q] quantiles (q =
    ``range_quantile``) of the latent values at positions with A > 0 (the positions
    sent unquantized at some tau). Pass 2 counts, at every tau in ``taus``, the indices
    of quantized positions and the (clipped) values of unquantized ones.
    """
    with statistics_mode(model, count) as device:
        cfg = model.config
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
    return Statistics(model.float_range.detach().cpu().clone(), idx_counts, val_counts)


def _thin(v: torch.Tensor, limit: int = _RANGE_SAMPLES) -> torch.Tensor:
    """Every k-th element so that at most ``limit`` remain (deterministic)."""
    return v[:: -(-v.numel() // limit)] if v.numel() > limit else v


# --------------------------------------------------------------------------- CLI


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``semcomm train amvq`` (the shared ones)."""
    cli.configure(parser, "amvq")


def run(args: argparse.Namespace) -> int:
    """Train (or resume) and export the model file; returns 0 on success."""
    return cli.run_single(args, Trainer, load_config, config_from_dict)
