"""Train DeepJSCC on StreetScenes on the shared training loop, with exact resume.

::

    step s ─► draws from SeedSequence([seed, s]): image indices, crops, flips, channel
              count c, Es/N0 (uniform in dB over snr_range_db), channel of each image,
              noise/fading generator seed
           ─► x (StepImages: the step loader's workers) ─► encode (first c maps,
              power-normalised) ─► simulate_channel ─► decode(z_hat, g, snr) ─► MSE
           ─► Adam (warm-up + cosine)
    every save_every steps and at the end: ckpt.pt (model, optimiser, step, resolved
    config) and model.pt (the shippable model file), validation PSNR in log.jsonl

:class:`DeepJSCCTrainer` supplies the hooks of :class:`LoopTrainer` (the loop of the
learned codecs and the segmenter: step loader, log, atomic checkpoints, resume, stop).
Every draw of step s depends on (seed, s) only, so a run resumed from ``ckpt.pt`` -- in
another process, with another worker count -- is the run that was never stopped (bit for
bit on a CPU; ``tests/codecs/deepjscc``). ``--max-seconds T`` trains for a fixed wall
time: over the second half of the warm-up (where the schedule does not depend on
``steps``) it measures the step rate, fixes ``steps`` (stored in the checkpoint, so a
resume keeps the schedule) and stops at T at the latest (the loop's ``should_stop``).

Usage::

    python -m semcomm.codecs.deepjscc.train --config configs/deepjscc.yaml \
        --out results/train/deepjscc [--device cuda] [--workers 14] [--max-seconds 150] \
        [--stop-at S]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from semcomm.codecs.deepjscc.config import (
    DeepJSCCConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
)
from semcomm.codecs.deepjscc.model import DeepJSCC, simulate_channel
from semcomm.codecs.learned.modelfile import atomic_save
from semcomm.codecs.learned.trainer import LoopTrainer, RunOptions, lr_at

#: Format tag of ckpt.pt and model.pt (the codec refuses other files).
FORMAT = "semcomm-deepjscc-v1"


@dataclass(frozen=True)
class StepDraws:
    """Everything random about one training step (a function of (seed, step) only)."""

    indices: list[int]
    crops: list[tuple[int, int]]  # top-left corners
    flips: list[bool]
    channels: int
    esno_db: list[float]
    kinds: list[str]
    noise_seed: int


def draw_step(cfg: DeepJSCCConfig, step: int) -> StepDraws:
    """The draws of training step ``step``."""
    t, m = cfg.train, cfg.model
    rng = np.random.default_rng(np.random.SeedSequence([t.seed, step]))
    b = t.batch_size
    indices = rng.integers(0, t.data_count, b).tolist()
    ch, cw = cfg.crop_size
    f = m.factor
    tops = rng.integers(0, (m.image_size[0] - ch) // f + 1, b) * f
    lefts = rng.integers(0, (m.image_size[1] - cw) // f + 1, b) * f
    flips = (rng.random(b) < t.hflip_p).tolist()
    c = int(t.channel_choices[int(rng.integers(0, len(t.channel_choices)))])
    lo, hi = m.snr_range_db
    snr = rng.uniform(lo, hi, b).tolist()
    kinds = [t.channels[j] for j in rng.choice(len(t.channels), b, p=list(t.channel_probs))]
    return StepDraws(indices, list(zip(tops.tolist(), lefts.tolist(), strict=True)), flips,
                     c, snr, kinds, int(rng.integers(0, 2**62)))


class SceneImages(torch.utils.data.Dataset[torch.Tensor]):
    """StreetScenes images as [3, H, W] uint8 tensors (rendered on demand)."""

    def __init__(self, cfg: DeepJSCCConfig, split: str = "train", count: int | None = None
                 ) -> None:
        self.size, self.seed = cfg.model.image_size, cfg.train.data_seed
        self.split, self.count = split, count or cfg.train.data_count
        self._ds: Any = None

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> torch.Tensor:
        if self._ds is None:  # built lazily: once per DataLoader worker
            from semcomm.data import build_dataset

            self._ds = build_dataset("streetscenes", split=self.split, count=self.count,
                                     size=tuple(self.size), seed=self.seed)
        return torch.from_numpy(np.ascontiguousarray(self._ds[i].image)).permute(2, 0, 1)


class StepImages:
    """The batch maker (picklable; runs in the loop's workers): step -> [B,3,h,w] uint8,
    the step's images with its crops and flips (:func:`draw_step`)."""

    def __init__(self, cfg: DeepJSCCConfig) -> None:
        self.cfg, self.images = cfg, SceneImages(cfg)

    def __call__(self, step: int) -> torch.Tensor:
        d, (ch, cw) = draw_step(self.cfg, step), self.cfg.crop_size
        out = []
        for i, (top, left), flip in zip(d.indices, d.crops, d.flips, strict=True):
            crop = self.images[i][:, top:top + ch, left:left + cw]
            out.append(crop.flip(-1) if flip else crop)
        return torch.stack(out)


def train_step(model: DeepJSCC, x: torch.Tensor, d: StepDraws, cfg: DeepJSCCConfig
               ) -> torch.Tensor:
    """The loss of one step (the forward pass through the simulated channel)."""
    gen = torch.Generator(device=x.device).manual_seed(d.noise_seed)
    z = model.encode(x, d.channels)
    snr = torch.tensor(d.esno_db, dtype=torch.float32, device=x.device)
    z_hat, gain = simulate_channel(z, snr, d.kinds, cfg.train.block_symbols, gen)
    x_hat = model.decode(z_hat, gain, snr, (x.shape[2], x.shape[3]))
    return cfg.train.mse_weight * torch.mean((x_hat - x) ** 2)


@torch.no_grad()
def validate(model: DeepJSCC, images: torch.Tensor, cfg: DeepJSCCConfig) -> float:
    """PSNR (dB) on the validation images, AWGN at val_snr_db, c = max(channel_choices)."""
    if images.shape[0] == 0:
        return math.nan
    model.eval()
    x = images.float() / 255.0
    gen = torch.Generator(device=x.device).manual_seed(12345)
    snr = torch.full((x.shape[0],), cfg.train.val_snr_db, device=x.device)
    z = model.encode(x, max(cfg.train.channel_choices))
    z_hat, gain = simulate_channel(z, snr, ["awgn"] * x.shape[0], cfg.train.block_symbols, gen)
    x_hat = model.decode(z_hat, gain, snr, (x.shape[2], x.shape[3]))
    model.train()
    mse = torch.mean((x_hat - x) ** 2, dim=(1, 2, 3))
    return float(torch.mean(-10.0 * torch.log10(mse.clamp_min(1e-10))))


def export_model(model: DeepJSCC, cfg: DeepJSCCConfig, path: Path, meta: dict[str, Any]
                 ) -> None:
    """The shippable model file: model config, fp16 weights, train config, ``meta``."""
    state = {k: v.detach().to("cpu", torch.float16) for k, v in model.state_dict().items()}
    atomic_save({"format": FORMAT, "model": config_to_dict(cfg.model), "state_dict": state,
                 "train": config_to_dict(cfg.train), "meta": meta}, path)


class DeepJSCCTrainer(LoopTrainer):
    """DeepJSCC on the shared loop (:class:`LoopTrainer`), non-adversarial.

    ::

        StepImages(t) (step loader: workers, prefetch) ─► [B,3,h,w] ─► train_step (MSE
          through the channel) ─► Adam at lr_at(t) ─► log.jsonl line (every log_every)
        every save_every, at the end and at a wall-time stop: validation PSNR (a log
          line) ─► ckpt.pt (model, optimiser, step, resolved config, meta) + model.pt

    Weights start from ``torch.manual_seed(train.seed)``; an existing ``ckpt.pt`` is
    resumed (its config must equal this one but for ``steps``). ``max_seconds``: wall-time
    mode (module docstring).
    """

    name: ClassVar[str] = "deepjscc"
    checkpoint_name: ClassVar[str] = "ckpt.pt"
    log_name: ClassVar[str] = "log.jsonl"

    def __init__(self, cfg: DeepJSCCConfig, device: torch.device | str = "cpu",
                 options: RunOptions | None = None, max_seconds: float | None = None) -> None:
        if max_seconds is not None and not max_seconds > 0:
            raise ValueError(f"max_seconds {max_seconds} must be > 0")
        self.cfg, self.seed, self.device = cfg, cfg.train.seed, torch.device(device)
        self.options, self.max_seconds = options or RunOptions(), max_seconds
        torch.manual_seed(cfg.train.seed)  # weight initialisation
        self.model = DeepJSCC(cfg.model).to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.train.lr)
        n = cfg.train.val_images
        self.val = (torch.stack([SceneImages(cfg, "val", n)[i] for i in range(n)])
                    if n else torch.zeros(0, 3, 1, 1)).to(self.device)
        self.step, self._start = 0, time.monotonic()
        self.meta: dict[str, Any] = {}
        self._probe_t0: float | None = None
        self._stop = False

    # ------------------------------------------------------------------ the step
    @property
    def total_steps(self) -> int:
        return self.cfg.train.steps

    def batch_maker(self) -> StepImages:
        return StepImages(self.cfg)

    def begin(self) -> None:
        self._start, self._stop = time.monotonic(), self.step >= self.total_steps
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.model.train()

    def train_step(self, data: Any = None) -> dict[str, Any]:
        """One Adam update of step ``self.step`` on [B,3,h,w] uint8 ``data``."""
        t, step = self.cfg.train, self.step
        images = self.host_batch(step) if data is None else data
        d = draw_step(self.cfg, step)
        lr = lr_at(step, t.steps, t.lr, t.min_lr, t.warmup_steps)
        for group in self.opt.param_groups:
            group["lr"] = lr
        loss = train_step(self.model, images.to(self.device).float() / 255.0, d, self.cfg)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        self._wall_time()
        return {"loss": loss.item(), "lr": lr, "c": d.channels}

    def _wall_time(self) -> None:
        """Wall-time mode: fix ``steps`` from the rate over the warm-up's second half;
        stop at ``steps`` or at ``max_seconds``."""
        elapsed = time.monotonic() - self._start
        probe_end = max(2, self.cfg.train.warmup_steps)
        if self.max_seconds is not None and not self.meta.get("steps_fixed"):
            if self.step == probe_end // 2:
                self._probe_t0 = time.monotonic()
            elif self.step == probe_end and self._probe_t0 is not None:
                rate = (probe_end - probe_end // 2) / max(time.monotonic() - self._probe_t0,
                                                          1e-6)
                steps = self.step + max(1, int(0.97 * (self.max_seconds - elapsed) * rate))
                self.cfg = dataclasses.replace(self.cfg, train=dataclasses.replace(
                    self.cfg.train, steps=steps))
                self.meta["steps_fixed"] = True
        self._stop = self.step >= self.total_steps or (
            self.max_seconds is not None and elapsed > self.max_seconds)

    def should_stop(self) -> bool:
        return self._stop

    # ------------------------------------------------------------------ log, checkpoints
    def log_line(self, step: int, res: dict[str, Any], wait: float, seconds: float,
                 end: int) -> str | None:
        """The loss line (every log_every) and, when a checkpoint is due, the
        validation line; each also printed."""
        lines = []
        if self.step % self.cfg.train.log_every == 0:
            lines.append({"step": self.step, **res,
                          "psnr_train": -10 * math.log10(max(res["loss"], 1e-10)),
                          "seconds": round(time.monotonic() - self._start, 2)})
        if self.save_due(end):
            self.meta["val_psnr"] = validate(self.model, self.val, self.cfg)
            lines.append({"step": self.step, "val_psnr": self.meta["val_psnr"],
                          "val_snr_db": self.cfg.train.val_snr_db})
        text = "\n".join(json.dumps(line) for line in lines)
        if text:
            print(text, flush=True)
        return text or None

    def keep_log_line(self, line: str, step: int) -> bool:
        return bool(json.loads(line).get("step", -1) <= step)  # lines count steps done

    def save_due(self, end: int) -> bool:
        return (self.step % self.cfg.train.save_every == 0 or self.step == end
                or self._stop)

    def state(self) -> dict[str, Any]:
        return {"format": FORMAT, "config": config_to_dict(self.cfg), "step": self.step,
                "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "meta": self.meta}

    def save(self, path: str | Path) -> None:
        """``ckpt.pt`` and, beside it, the shippable ``model.pt``."""
        super().save(path)
        export_model(self.model, self.cfg, Path(path).parent / "model.pt",
                     {**self.meta, "step": self.step})

    def resume(self, path: str | Path) -> None:
        """Load ``ckpt.pt``; its config must equal ours but for ``steps``."""
        ck = torch.load(Path(path), map_location=self.device, weights_only=True)
        if ck.get("format") != FORMAT:
            raise ValueError(f"{path}: not a DeepJSCC checkpoint (format {ck.get('format')!r})")
        saved = config_from_dict(ck["config"], source=str(path))
        if dataclasses.replace(saved.train, steps=self.cfg.train.steps) != self.cfg.train \
                or saved.model != self.cfg.model:
            raise ValueError(f"{path}: was trained with another config; use a new --out folder")
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.meta = dict(ck.get("meta", {}))
        # A wall-time run fixed its own steps (keep them); otherwise the caller's count wins.
        if self.meta.get("steps_fixed"):
            self.cfg = saved
        self.step = int(ck["step"])


def train(cfg: DeepJSCCConfig, out: Path, device: str = "cpu", workers: int = 0,
          max_seconds: float | None = None, stop_at: int | None = None) -> Path:
    """Train (or resume) into ``out``; returns the path of model.pt.

    ``stop_at``: stop (after saving) at this step, as if killed there.
    """
    trainer = DeepJSCCTrainer(cfg, device, RunOptions(workers=workers), max_seconds)
    trainer.run_loop(out, progress=False, stop_at=stop_at)
    return Path(out) / "model.pt"


# ----------------------------------------------------------------------------- CLI
def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="configs/deepjscc.yaml")
    parser.add_argument("--out", default="results/train/deepjscc")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--steps", type=int, default=None, help="override train.steps")
    parser.add_argument("--batch-size", type=int, default=None, help="override batch_size")
    parser.add_argument("--crop", type=int, nargs=2, default=None, help="override train.crop")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="fixed wall time: steps are set from the measured step rate")
    parser.add_argument("--stop-at", type=int, default=None, metavar="STEP",
                        help="checkpoint and stop at this step (rerun to continue)")


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
        over: dict[str, Any] = {}
        if args.steps is not None:
            over["steps"] = args.steps
        if args.batch_size is not None:
            over["batch_size"] = args.batch_size
        if args.crop is not None:
            over["crop"] = tuple(args.crop)
        if over:
            cfg = config_from_dict({**config_to_dict(cfg), "train": {
                **config_to_dict(cfg.train), **over}}, source=args.config)
        if args.workers < 0 or (args.max_seconds is not None and args.max_seconds <= 0) \
                or (args.stop_at is not None and args.stop_at < 0):
            raise ValueError(f"--workers {args.workers} and --stop-at {args.stop_at} must "
                             f"be >= 0, --max-seconds {args.max_seconds} > 0")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    path = train(cfg, Path(args.out), args.device, args.workers, args.max_seconds,
                 args.stop_at)
    print(f"model file: {path}")
    return 0


__all__ = ["FORMAT", "DeepJSCCTrainer", "StepDraws", "StepImages", "TrainConfig", "draw_step",
           "export_model", "train"]

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m semcomm.codecs.deepjscc.train")
    configure(parser)
    raise SystemExit(run(parser.parse_args()))
