"""Train DeepJSCC on StreetScenes: a small self-contained trainer with exact resume.

::

    step s ─► draws from SeedSequence([seed, s]): image indices, crops, flips, channel
              count c, Es/N0 (uniform in dB over snr_range_db), channel of each image,
              noise/fading generator seed
           ─► x ─► encode (first c maps, power-normalised) ─► simulate_channel
           ─► decode(z_hat, g, snr) ─► MSE ─► Adam (warm-up + cosine)
    every save_every steps: ckpt.pt (model, optimiser, step, resolved config) and
    model.pt (the shippable model file), validation PSNR in log.jsonl

Every draw of step s depends on (seed, s) only, so a run resumed from ``ckpt.pt`` is
the run that was never stopped (bit for bit on a CPU; ``tests/codecs/deepjscc``).
``--max-seconds T`` trains for a fixed wall time: over the second half of the warm-up
(where the schedule does not depend on ``steps``) it measures the step rate, fixes
``steps`` (stored in the checkpoint, so a resume keeps the schedule) and stops at T at
the latest.

TODO(issue 18): move onto the shared training engine once it lands; this loop, the
checkpoint layout and the resume logic are what it replaces.

Usage::

    python -m semcomm.codecs.deepjscc.train --config configs/deepjscc.yaml \
        --out results/train/deepjscc [--device cuda] [--workers 14] [--max-seconds 150]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from semcomm.codecs.learned.trainer import lr_at, truncate_log

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
    ch, cw = t.crop if t.crop != (0, 0) else m.image_size
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


class SceneImages(torch.utils.data.Dataset):
    """StreetScenes training images as [3, H, W] uint8 tensors (rendered on demand)."""

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


class StepSampler(torch.utils.data.Sampler[list[int]]):
    """Index lists of steps start, start + 1, ... (endless; the loop decides when to stop)."""

    def __init__(self, cfg: DeepJSCCConfig, start: int) -> None:
        self.cfg, self.start = cfg, start

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start
        while True:
            yield draw_step(self.cfg, step).indices
            step += 1

    def __len__(self) -> int:
        return sys.maxsize


def make_batch(images: torch.Tensor, d: StepDraws, cfg: DeepJSCCConfig) -> torch.Tensor:
    """[B,3,H,W] uint8 -> [B,3,h,w] float in [0,1]: the step's crops and flips."""
    t, m = cfg.train, cfg.model
    ch, cw = t.crop if t.crop != (0, 0) else m.image_size
    out = []
    for img, (top, left), flip in zip(images, d.crops, d.flips, strict=True):
        crop = img[:, top:top + ch, left:left + cw]
        out.append(crop.flip(-1) if flip else crop)
    return torch.stack(out).float() / 255.0


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


def _save(out: Path, model: DeepJSCC, opt: torch.optim.Optimizer, cfg: DeepJSCCConfig,
          step: int, meta: dict[str, Any]) -> None:
    atomic_save({"format": FORMAT, "config": config_to_dict(cfg), "step": step,
                 "model": model.state_dict(), "optimizer": opt.state_dict(), "meta": meta},
                out / "ckpt.pt")
    export_model(model, cfg, out / "model.pt", {**meta, "step": step})


def _resume(out: Path, cfg: DeepJSCCConfig, model: DeepJSCC, opt: torch.optim.Optimizer,
            device: str) -> tuple[DeepJSCCConfig, int, dict[str, Any]]:
    """Load ckpt.pt when there is one; its config must equal ``cfg`` but for ``steps``."""
    path = out / "ckpt.pt"
    if not path.is_file():
        return cfg, 0, {}
    ck = torch.load(path, map_location=device, weights_only=True)
    if ck.get("format") != FORMAT:
        raise ValueError(f"{path}: not a DeepJSCC checkpoint (format {ck.get('format')!r})")
    saved = config_from_dict(ck["config"], source=str(path))
    if dataclasses.replace(saved.train, steps=cfg.train.steps) != cfg.train \
            or saved.model != cfg.model:
        raise ValueError(f"{path}: was trained with another config; use a new --out folder")
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    meta = dict(ck.get("meta", {}))
    # A wall-time run fixed its own steps (keep them); otherwise the caller's count wins.
    return (saved if meta.get("steps_fixed") else cfg), int(ck["step"]), meta


def train(cfg: DeepJSCCConfig, out: Path, device: str = "cpu", workers: int = 0,
          max_seconds: float | None = None, stop_at: int | None = None) -> Path:
    """Train (or resume) into ``out``; returns the path of model.pt.

    ``stop_at``: stop (after saving) at this step, as if killed there (tests).
    """
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.train.seed)
    model = DeepJSCC(cfg.model).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    cfg, step, meta = _resume(out, cfg, model, opt, device)
    timed = max_seconds is not None and not meta.get("steps_fixed", False)
    log = out / "log.jsonl"
    truncate_log(log, step + 1)  # lines carry the count of steps done: keep <= step
    val = torch.stack([SceneImages(cfg, "val", cfg.train.val_images)[i]
                       for i in range(cfg.train.val_images)]).to(device) \
        if cfg.train.val_images else torch.zeros(0, 3, 1, 1)
    loader = torch.utils.data.DataLoader(
        SceneImages(cfg), batch_sampler=StepSampler(cfg, step), num_workers=workers,
        pin_memory=device.startswith("cuda"), prefetch_factor=4 if workers else None)
    start, probe_t0 = time.monotonic(), None
    probe_end = max(2, cfg.train.warmup_steps)  # rate measured over the warm-up's 2nd half
    probe_start = probe_end // 2
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    model.train()
    for images in loader:
        if step >= cfg.train.steps or (stop_at is not None and step >= stop_at):
            break
        if max_seconds is not None and time.monotonic() - start > max_seconds:
            break
        d = draw_step(cfg, step)
        lr = lr_at(step, cfg.train.steps, cfg.train.lr, cfg.train.min_lr,
                   cfg.train.warmup_steps)
        for group in opt.param_groups:
            group["lr"] = lr
        loss = train_step(model, make_batch(images.to(device), d, cfg), d, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if timed and step == probe_start:
            probe_t0 = time.monotonic()
        if timed and step == probe_end and probe_t0 is not None and max_seconds is not None:
            rate = (probe_end - probe_start) / max(time.monotonic() - probe_t0, 1e-6)
            left = max_seconds - (time.monotonic() - start)
            cfg = dataclasses.replace(cfg, train=dataclasses.replace(
                cfg.train, steps=step + max(1, int(0.97 * left * rate))))
            meta["steps_fixed"], timed = True, False
        if step % cfg.train.log_every == 0:
            _log(log, {"step": step, "loss": loss.item(), "lr": lr,
                       "psnr_train": -10 * math.log10(max(loss.item(), 1e-10)),
                       "c": d.channels, "seconds": round(time.monotonic() - start, 2)})
        if step % cfg.train.save_every == 0:
            _checkpoint(out, model, opt, cfg, step, meta, val, log)
    _checkpoint(out, model, opt, cfg, step, meta, val, log)
    return out / "model.pt"


def _checkpoint(out: Path, model: DeepJSCC, opt: torch.optim.Optimizer, cfg: DeepJSCCConfig,
                step: int, meta: dict[str, Any], val: torch.Tensor, log: Path) -> None:
    meta["val_psnr"] = validate(model, val, cfg)
    _log(log, {"step": step, "val_psnr": meta["val_psnr"], "val_snr_db": cfg.train.val_snr_db})
    _save(out, model, opt, cfg, step, meta)


def _log(path: Path, line: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")
    print(json.dumps(line), flush=True)


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
        if args.workers < 0 or (args.max_seconds is not None and args.max_seconds <= 0):
            raise ValueError(f"--workers {args.workers} must be >= 0 and --max-seconds "
                             f"{args.max_seconds} > 0")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    path = train(cfg, Path(args.out), args.device, args.workers, args.max_seconds)
    print(f"model file: {path}")
    return 0


__all__ = ["FORMAT", "StepDraws", "TrainConfig", "draw_step", "export_model", "train"]

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m semcomm.codecs.deepjscc.train")
    configure(parser)
    raise SystemExit(run(parser.parse_args()))
