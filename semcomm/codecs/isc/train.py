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

The loop itself (schedule, G/D alternation, EMA, logging, checkpoints, DataLoader
workers, bf16/channels-last/compile options) is the shared one in
``semcomm.codecs.learned.trainer``; this module holds ISC's hooks, batches and
model-file statistics. See ``docs/training.md``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semcomm.codecs.isc.config import ISCConfig, TrainConfig, config_from_dict, load_config
from semcomm.codecs.isc.config import model_config_from_dict as _model_config
from semcomm.codecs.isc.losses import ISCLoss
from semcomm.codecs.isc.model import ISC, map_onehot
from semcomm.codecs.isc.modelfile import MODEL_FORMAT, Statistics, export_model, load_model
from semcomm.codecs.isc.semmap import MAP_SYMBOLS, majority_downsample, map_symbols, to_classes
from semcomm.codecs.learned import cli
from semcomm.codecs.learned.data import StepData, batch_indices, step_rng
from semcomm.codecs.learned.modelfile import statistics_mode
from semcomm.codecs.learned.perceptual import LossResult
from semcomm.codecs.learned.trainer import GANTrainer
from semcomm.data.types import Sample

__all__ = ["MODEL_FORMAT", "Trainer", "collect_statistics", "configure",
           "export_model", "load_model", "make_batch", "run", "sample_depth"]

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
class ISCBatches:
    """Step t -> knob depth, images x and coded maps m (flipped together); picklable."""

    train: TrainConfig
    dataset: Sequence[Sample]
    seed: int
    map_factor: int

    def __call__(self, step: int) -> StepData:
        t = self.train
        rng = step_rng(self.seed, _STREAM, step)
        depth = sample_depth(rng, t.depth_choices)
        idx = batch_indices(len(self.dataset), t.batch_size, step, self.seed, _STREAM)
        flips = list(rng.random(len(idx)) < t.hflip_p)
        x, m = make_batch(self.dataset, idx, self.map_factor, flips)
        return StepData({"depth": depth}, (x, m))


class Trainer(GANTrainer[ISCConfig, ISC, ISCLoss]):
    """ISC training (the shared loop with ISC's hooks).

    ``Trainer(cfg: ISCConfig, dataset, seed=0, device="cpu", perceptual=None,
    options=None)``; dataset : sequence of labelled :class:`Sample` at ``cfg.model.image_size``.
    """

    name, label = "isc", "an ISC"
    model_format = MODEL_FORMAT
    progress_keys = ("base_l1", "enh_l1", "d")
    stream, model_class, loss_class = _STREAM, ISC, ISCLoss

    def batch_maker(self) -> ISCBatches:
        return ISCBatches(self.cfg.train, self.dataset, self.seed, self.cfg.model.map_factor)

    def model_config(self, data: Any, source: str) -> Any:
        return _model_config(data, source=source)

    def to_device(self, tensors: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        x, m = super().to_device(tensors)
        return x, map_onehot(m)

    def disc_active(self, step: int) -> bool:
        return step >= self.cfg.train.disc_start and self.cfg.train.adv_weight > 0

    def forward(self, batch: tuple[torch.Tensor, ...], knobs: dict[str, float]) -> Any:
        x, s = batch
        return self.model(x, s, int(knobs["depth"]))

    def generator_loss(self, batch: tuple[torch.Tensor, ...], out: Any,
                       step: int) -> LossResult:
        return self.loss.generator(batch[0], out, self.model.generator.last_layer,
                                   self.model.res_decoder.last_layer, step)

    def discriminator_loss(self, batch: tuple[torch.Tensor, ...], out: Any) -> LossResult:
        return self.loss.discriminator(batch[0], out)

    def export(self, path: Path, table_images: int) -> Path:
        stats = collect_statistics(self.model, self.dataset, min(table_images, len(self.dataset)))
        return export_model(self.model, path, stats, {"step": self.step, "seed": self.seed})


# --------------------------------------------------------------------------- model file
@torch.no_grad()
def collect_statistics(model: ISC, dataset: Sequence[Sample], count: int,
                       batch: int = 8) -> Statistics:
    """Histograms over the first ``count`` images, computed exactly as the codec codes
    them (eval mode, base image from the quantized latent and the coded map)."""
    with statistics_mode(model, count) as device:
        cfg = model.config
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
    return Statistics(map_c, lat_c, stage_c)


# --------------------------------------------------------------------------- CLI


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``semcomm train isc`` (the shared ones)."""
    cli.configure(parser, "isc", table_images=200)


def run(args: argparse.Namespace) -> int:
    """Train (or resume) and export the model file; returns 0 on success."""
    return cli.run_single(args, Trainer, load_config, config_from_dict)
