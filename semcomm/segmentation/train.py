"""``semcomm train segmenter``: train the bundled segmenter (resumable).

::

    config YAML ─► validate ─► dataset (StreetScenes on the fly, or Cityscapes)
      step s: images (s*B .. s*B+B-1 of the epoch permutation) ─► flip / JPEG(q) ─► SegNet
              ─► class-weighted cross-entropy (void ignored) ─► AdamW + OneCycle
      every step: one line of runs/.../log.csv (step, loss, lr, seconds, val_miou)
      every ckpt_every: runs/.../checkpoint.pt (model, optimiser, schedule, step, torch RNG)
      every eval_every: mIoU on held-out "val" images (the log line's val_miou)
      end: weights-only export (fp16 weights, architecture, logit bias -log w_c)
           ─► semcomm/assets/segmenter.pt

The steps run in the learned codecs' loop (:class:`LoopTrainer`: step loader with
workers, log, atomic checkpoints, resume, stop); :class:`SegTrainer` supplies the
non-adversarial hooks. Data order and augmentation are functions of (seed, step), so a
resumed run -- in another process, with another worker count -- continues with exactly
the numbers of an uninterrupted one.
"""

from __future__ import annotations

import argparse
import functools
import io
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from PIL import Image

from semcomm.codecs.config_schema import build_config, config_to_dict
from semcomm.codecs.learned.modelfile import atomic_save
from semcomm.codecs.learned.trainer import LoopTrainer, RunOptions
from semcomm.data import build_dataset
from semcomm.data.types import NUM_CLASSES, VOID
from semcomm.segmentation.config import ModelSection, SegmenterConfig, TrainSection, load_config
from semcomm.segmentation.model import FORMAT, JudgeNet, SegNet, build_net
from semcomm.segmentation.scoring import confusion, iou_from_confusion

# -- data --------------------------------------------------------------------------------


def _datasets(cfg: SegmenterConfig) -> tuple[Any, Any]:
    d, t = cfg.data, cfg.train
    if d.dataset == "streetscenes":
        n = t.steps * t.batch  # every training image is new
        train = build_dataset("streetscenes", split=d.split, count=n, size=d.size, seed=d.seed)
        val = build_dataset("streetscenes", split=d.val_split, count=t.eval_count, size=d.size,
                            seed=d.seed)
    else:
        train = build_dataset(d.dataset, split=d.split, count=None, size=d.size, root=d.root)
        val = build_dataset(d.dataset, split=d.val_split, count=t.eval_count, size=d.size,
                            root=d.root)
    return train, val


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def make_batch(ds: Any, t: TrainSection, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch ``step``: images [B,3,H,W] float32 in [0,1], labels [B,H,W] int64 (255 void).

    Indices walk a per-epoch permutation (seeded by (seed, epoch)); flips and JPEG
    qualities are drawn from a generator seeded by (seed, step): resumable exactly.
    """
    b, n = t.batch, len(ds)
    rng = np.random.default_rng([t.seed, 1, step])
    xs, ys = [], []
    for j in range(b):
        k = step * b + j
        epoch, pos = divmod(k, n)
        idx = (
            int(np.random.default_rng([t.seed, 0, epoch]).permutation(n)[pos])
            if n < 10**6
            else pos
        )
        s = ds[idx]
        img, lab = s.image, s.labels
        if t.flip and rng.random() < 0.5:
            img, lab = img[:, ::-1], lab[:, ::-1]
        if rng.random() < t.jpeg_prob:
            img = _jpeg(np.ascontiguousarray(img),
                        int(rng.integers(t.jpeg_quality[0], t.jpeg_quality[1] + 1)))
        xs.append(np.ascontiguousarray(img))
        ys.append(np.ascontiguousarray(lab))
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float().div_(255.0)
    y = torch.from_numpy(np.stack(ys)).long()
    return x, y


def class_weights(ds: Any, count: int = 64) -> torch.Tensor:
    """[19] float32: (median share / share)^0.5 over ``count`` images, clipped to [0.3, 5]."""
    hist = np.zeros(NUM_CLASSES, np.float64)
    for i in range(min(count, len(ds))):
        lab = ds[i].labels
        hist += np.bincount(lab[lab != VOID], minlength=NUM_CLASSES)[:NUM_CLASSES]
    share = np.maximum(hist / max(hist.sum(), 1), 1e-5)
    w = np.clip(np.sqrt(np.median(share) / share), 0.3, 5.0)
    return torch.tensor(w / w.mean(), dtype=torch.float32)


# -- evaluation ----------------------------------------------------------------------------


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, ds: Any, device: torch.device, batch: int = 16
) -> tuple[np.ndarray, float]:
    """mIoU of ``model`` over all of ``ds`` (accumulated confusion, void ignored)."""
    model.eval()
    conf = torch.zeros(NUM_CLASSES, NUM_CLASSES + 1, dtype=torch.int64)
    for i0 in range(0, len(ds), batch):
        samples = [ds[i] for i in range(i0, min(i0 + batch, len(ds)))]
        x = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2).float() / 255
        y = torch.from_numpy(np.stack([s.labels for s in samples])).long()
        pred = model(x.to(device)).argmax(1).cpu()
        conf += confusion(pred, y)
    model.train()
    return iou_from_confusion(conf)


# -- checkpoints ---------------------------------------------------------------------------


def export_weights(
    model: SegNet | JudgeNet,
    path: str | Path,
    meta: dict[str, Any],
    class_weight: torch.Tensor | None = None,
) -> None:
    """Write the weights-only checkpoint: fp16 weights, architecture, meta and, when the
    loss was class-weighted, ``logit_bias`` = -log(class_weight) (see BundledSegmenter)."""
    state = {
        k: (v.half() if v.is_floating_point() else v).cpu().clone()
        for k, v in model.state_dict().items()
    }
    payload = {"format": FORMAT, "config": model.cfg.to_dict(), "state_dict": state, "meta": meta}
    if class_weight is not None:
        payload["logit_bias"] = -torch.log(class_weight.detach().float().cpu())
    atomic_save(payload, Path(path))


# -- the loop's hooks ----------------------------------------------------------------------


class SegTrainer(LoopTrainer):
    """The segmenter on the learned codecs' loop (:class:`LoopTrainer`), non-adversarial.

    ::

        batch (make_batch, step loader) ─► SegNet/JudgeNet ─► class-weighted cross-entropy
          ─► AdamW ─► OneCycle (peak train.lr, 10 % warm-up, div 20, final div 200)
        log.csv: one line per step (step done, loss, lr, seconds, val_miou every eval_every)
        checkpoint.pt: model, optimiser, schedule, step, torch RNG, config (ckpt_every)

    Weights start from ``torch.manual_seed(train.seed)``. A checkpoint is resumed only
    when asked (``resume=True``, ``--resume``); a non-finite loss skips its update.
    """

    name: ClassVar[str] = "segmenter"
    checkpoint_name: ClassVar[str] = "checkpoint.pt"
    log_name: ClassVar[str] = "log.csv"
    resume_found: ClassVar[bool] = False
    train_format: ClassVar[str] = "semcomm.segmenter.train/1"

    def __init__(self, cfg: SegmenterConfig, device: torch.device | str = "cpu",
                 options: RunOptions | None = None) -> None:
        t = cfg.train
        self.cfg, self.seed, self.device = cfg, t.seed, torch.device(device)
        self.options = options or RunOptions(workers=t.workers)
        torch.manual_seed(t.seed)  # weight initialisation
        self.train_ds, self.val_ds = _datasets(cfg)
        self.model = build_net(cfg.model.net_config()).to(self.device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=t.lr,
                                     weight_decay=t.weight_decay)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(
            self.opt, max_lr=t.lr, total_steps=t.steps, pct_start=0.1, div_factor=20,
            final_div_factor=200)
        self.weights = class_weights(self.train_ds).to(self.device)
        self.step, self._t0, self._val = 0, time.perf_counter(), ""

    @property
    def total_steps(self) -> int:
        return self.cfg.train.steps

    def batch_maker(self) -> functools.partial[tuple[torch.Tensor, torch.Tensor]]:
        return functools.partial(make_batch, self.train_ds, self.cfg.train)

    def train_step(self, data: Any = None) -> float | None:
        """One AdamW + OneCycle update of step ``self.step``; its loss (None: skipped)."""
        step = self.step
        x, y = self.host_batch(step) if data is None else data
        self.model.train()
        logits = self.model(x.to(self.device))
        loss = F.cross_entropy(logits, y.to(self.device), weight=self.weights,
                               ignore_index=VOID)
        value = loss.item()
        self.opt.zero_grad(set_to_none=True)
        self.step += 1
        if not math.isfinite(value):
            warnings.warn(f"non-finite loss at step {step}; skipping the update", stacklevel=2)
            return None
        loss.backward()
        self.opt.step()
        self.sched.step()
        return value

    def begin(self) -> None:
        self._t0 = time.perf_counter()

    def log_header(self) -> str:
        return "step,loss,lr,seconds,val_miou"

    def keep_log_line(self, line: str, step: int) -> bool:
        head = line.split(",", 1)[0]  # the header, or the count of steps done
        return not head.isdigit() or int(head) <= step

    def log_line(self, step: int, res: float | None, wait: float, seconds: float,
                 end: int) -> str | None:
        """CSV line of a step with an update; mIoU on the val images when it is due."""
        if res is None:
            return None
        done, t = step + 1, self.cfg.train
        self._val = ""
        if done % t.eval_every == 0 or done == t.steps:
            self._val = f"{evaluate(self.model, self.val_ds, self.device)[1]:.4f}"
        return (f"{done},{res:.5f},{self.sched.get_last_lr()[0]:.6g},"
                f"{time.perf_counter() - self._t0:.1f},{self._val}")

    def postfix(self, res: float | None) -> dict[str, str]:
        return {"loss": f"{res:.3f}", **({"val_miou": self._val} if self._val else {})}

    def save_due(self, end: int) -> bool:
        return self.step % self.cfg.train.ckpt_every == 0 or self.step == end

    def state(self) -> dict[str, Any]:
        return {"format": self.train_format, "config": config_to_dict(self.cfg),
                "model": self.model.state_dict(), "opt": self.opt.state_dict(),
                "sched": self.sched.state_dict(), "step": self.step,
                "torch_rng": torch.get_rng_state()}

    def resume(self, path: str | Path) -> None:
        """Restore ``checkpoint.pt`` (also those written before the format tag)."""
        ck = torch.load(Path(path), map_location="cpu", weights_only=True)
        fmt = ck.get("format", self.train_format)
        if fmt != self.train_format or "model" not in ck:
            raise ValueError(f"{path}: not a segmenter training checkpoint (format {fmt!r}, "
                             f"expected {self.train_format!r})")
        if "config" in ck and build_config(ModelSection, ck["config"]["model"], str(path),
                                           "model") != self.cfg.model:
            raise ValueError(f"{path}: model config differs from the current config")
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["opt"])
        self.sched.load_state_dict(ck["sched"])
        torch.set_rng_state(ck["torch_rng"])
        self.step = int(ck["step"])


# -- CLI ------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config (see configs/segmenter.yaml)")
    parser.add_argument("--out", default="runs/segmenter", help="checkpoint/log folder")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--no-export", action="store_true", help="skip the final weights export")
    parser.add_argument("--stop-after", type=int, default=None, metavar="STEP",
                        help="checkpoint and stop after this many steps (continue with --resume)")
    parser.add_argument("--workers", type=int, default=None, metavar="W",
                        help="batch processes (default: train.workers; not stored, may "
                             "change between runs)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device='cuda' but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _checked(args: argparse.Namespace) -> tuple[SegmenterConfig, int]:
    """The validated config and worker count; ValueError (one line) on bad input."""
    cfg = load_config(args.config)
    if args.stop_after is not None and args.stop_after < 1:
        raise ValueError(f"--stop-after {args.stop_after} must be >= 1")
    workers = cfg.train.workers if getattr(args, "workers", None) is None else args.workers
    if workers < 0:
        raise ValueError(f"--workers {workers} must be >= 0")
    ckpt = Path(args.out) / SegTrainer.checkpoint_name
    if args.resume and not ckpt.is_file():
        raise ValueError(f"--resume: no checkpoint at {ckpt}")
    return cfg, workers


def run(args: argparse.Namespace) -> int:
    """Train (``--resume``: continue), then export; 0, or 2 on bad input (before compute)."""
    try:
        cfg, workers = _checked(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    t, out = cfg.train, Path(args.out)
    os.environ.setdefault("OMP_NUM_THREADS", str(t.threads))
    torch.set_num_threads(t.threads)
    device = _device(t.device)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    trainer = SegTrainer(cfg, device, RunOptions(workers=workers))
    if not args.resume and t.init is not None:
        _init_weights(trainer.model, t.init)
    stop = t.steps if args.stop_after is None else min(args.stop_after, t.steps)
    trainer.run_loop(out, progress=not getattr(args, "no_progress", False), stop_at=stop,
                     resume=bool(args.resume))
    if stop < t.steps:
        print(f"stopped after step {stop}; continue with --resume")
        return 0
    _, miou = evaluate(trainer.model, trainer.val_ds, device)
    print(f"final val mIoU over {len(trainer.val_ds)} images: {miou:.4f}")
    if not args.no_export:
        meta = {"steps": t.steps, "dataset": cfg.data.dataset, "val_miou": miou,
                "size": list(cfg.data.size), "jpeg_prob": float(t.jpeg_prob)}
        export_weights(trainer.model, cfg.export, meta, class_weight=trainer.weights.cpu())
        print(f"exported {cfg.export} ({Path(cfg.export).stat().st_size / 1e6:.2f} MB)")
    return 0


def _init_weights(model: torch.nn.Module, path: str) -> None:
    """Start from the weights of an exported checkpoint (fine-tuning); same architecture."""
    if not Path(path).is_file():
        raise ValueError(f"train.init: no checkpoint at {path}")
    ck = torch.load(path, map_location="cpu", weights_only=True)
    state = ck["model"] if "model" in ck else ck.get("state_dict", {})
    try:
        model.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        )
    except RuntimeError as err:
        raise ValueError(f"train.init: {path} does not match the model config: {err}") from err


