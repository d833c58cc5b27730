"""``semcomm train segmenter``: train the bundled segmenter (resumable).

::

    config YAML ─► validate ─► dataset (StreetScenes on the fly, or Cityscapes)
      step s: images (s*B .. s*B+B-1 of the epoch permutation) ─► flip / JPEG(q) ─► SegNet
              ─► class-weighted cross-entropy (void ignored) ─► AdamW + OneCycle
      every ckpt_every: runs/.../checkpoint.pt (model, optimiser, schedule, step, torch RNG)
      every eval_every: mIoU on held-out "val" images ─► log.csv
      end: weights-only export (fp16 weights, architecture, logit bias -log w_c)
           ─► semcomm/assets/segmenter.pt

Data order and augmentation are functions of (seed, step), so a resumed run sees the
same batches as an uninterrupted one.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import io
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from PIL import Image
from tqdm import tqdm

from semcomm.codecs.learned.modelfile import atomic_save
from semcomm.codecs.learned.trainer import RunOptions, run_steps
from semcomm.data import build_dataset
from semcomm.data.types import NUM_CLASSES, VOID
from semcomm.segmentation.model import FORMAT, JudgeNet, SegNet, SegNetConfig, build_net
from semcomm.segmentation.scoring import confusion, iou_from_confusion

#: section -> key -> default; every key of a config must appear here.
DEFAULTS: dict[str, Any] = {
    "model": {"widths": [24, 48, 64, 128], "blocks8": 2, "blocks16": 4, "arch": "segnet"},
    "data": {"dataset": "streetscenes", "size": [128, 256], "seed": 0, "root": None,
             "split": "train", "val_split": "val"},
    "train": {"steps": 9000, "batch": 8, "lr": 0.004, "weight_decay": 1e-4, "jpeg_prob": 0.5,
              "jpeg_quality": [3, 95], "flip": True, "ckpt_every": 250, "eval_every": 1000,
              "eval_count": 48, "device": "auto", "threads": 1, "workers": 1, "seed": 0,
              "init": None},
    "export": "semcomm/assets/segmenter.pt",
}  # fmt: skip


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config, reject unknown keys (naming the nearest valid one), fill defaults."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: top level must be a mapping, got {type(raw).__name__}")
    cfg: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        cfg[key] = dict(default) if isinstance(default, dict) else default
    for key, value in raw.items():
        if key not in DEFAULTS:
            raise ValueError(f"{path}: unknown key {key!r}{_nearest(key, DEFAULTS)}")
        if isinstance(DEFAULTS[key], dict):
            if not isinstance(value, dict):
                raise ValueError(f"{path}: {key} must be a mapping")
            for sub, v in value.items():
                if sub not in DEFAULTS[key]:
                    raise ValueError(
                        f"{path}: unknown key {key}.{sub}{_nearest(sub, DEFAULTS[key])}"
                    )
                cfg[key][sub] = v
        else:
            cfg[key] = value
    _validate(cfg, path)
    return cfg


def _nearest(key: str, allowed: dict[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; allowed: {sorted(allowed)}"


def _validate(cfg: dict[str, Any], path: Path) -> None:
    t = cfg["train"]
    for key in ("steps", "batch", "ckpt_every", "eval_every", "eval_count", "threads"):
        if not isinstance(t[key], int) or t[key] < 1:
            raise ValueError(f"{path}: train.{key}={t[key]!r} must be an integer >= 1")
    if not isinstance(t["workers"], int) or t["workers"] < 0:
        raise ValueError(f"{path}: train.workers={t['workers']!r} must be an integer >= 0")
    if not 0.0 <= float(t["jpeg_prob"]) <= 1.0:
        raise ValueError(f"{path}: train.jpeg_prob={t['jpeg_prob']} outside [0, 1]")
    q = t["jpeg_quality"]
    if len(q) != 2 or not 1 <= q[0] <= q[1] <= 95:
        raise ValueError(
            f"{path}: train.jpeg_quality={q} must be [lo, hi] with 1 <= lo <= hi <= 95"
        )
    if t["device"] not in ("auto", "cpu", "cuda"):
        raise ValueError(f"{path}: train.device={t['device']!r}; allowed auto, cpu, cuda")
    if float(t["lr"]) <= 0:
        raise ValueError(f"{path}: train.lr={t['lr']} must be > 0")
    if cfg["data"]["dataset"] not in ("streetscenes", "cityscapes"):
        raise ValueError(
            f"{path}: data.dataset={cfg['data']['dataset']!r}; allowed streetscenes, cityscapes"
        )
    SegNetConfig.from_dict(cfg["model"])


# -- data --------------------------------------------------------------------------------


def _datasets(cfg: dict[str, Any]) -> tuple[Any, Any]:
    d, t = cfg["data"], cfg["train"]
    size = tuple(int(v) for v in d["size"])
    if d["dataset"] == "streetscenes":
        n = t["steps"] * t["batch"]  # every training image is new
        train = build_dataset("streetscenes", split=d["split"], count=n, size=size, seed=d["seed"])
        val = build_dataset(
            "streetscenes", split=d["val_split"], count=t["eval_count"], size=size, seed=d["seed"]
        )
    else:
        train = build_dataset(d["dataset"], split=d["split"], count=None, size=size, root=d["root"])
        val = build_dataset(
            d["dataset"], split=d["val_split"], count=t["eval_count"], size=size, root=d["root"]
        )
    return train, val


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def make_batch(ds: Any, cfg: dict[str, Any], step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch ``step``: images [B,3,H,W] float32 in [0,1], labels [B,H,W] int64 (255 void).

    Indices walk a per-epoch permutation (seeded by (seed, epoch)); flips and JPEG
    qualities are drawn from a generator seeded by (seed, step): resumable exactly.
    """
    t = cfg["train"]
    b, n = t["batch"], len(ds)
    rng = np.random.default_rng([t["seed"], 1, step])
    xs, ys = [], []
    for j in range(b):
        k = step * b + j
        epoch, pos = divmod(k, n)
        idx = (
            int(np.random.default_rng([t["seed"], 0, epoch]).permutation(n)[pos])
            if n < 10**6
            else pos
        )
        s = ds[idx]
        img, lab = s.image, s.labels
        if t["flip"] and rng.random() < 0.5:
            img, lab = img[:, ::-1], lab[:, ::-1]
        if rng.random() < t["jpeg_prob"]:
            img = _jpeg(
                np.ascontiguousarray(img),
                int(rng.integers(t["jpeg_quality"][0], t["jpeg_quality"][1] + 1)),
            )
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


def _save(
    out: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any, step: int
) -> None:
    state = {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
             "step": step, "torch_rng": torch.get_rng_state()}
    atomic_save(state, out / "checkpoint.pt")


# -- CLI ------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config (see configs/segmenter.yaml)")
    parser.add_argument("--out", default="runs/segmenter", help="checkpoint/log folder")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--no-export", action="store_true", help="skip the final weights export")
    parser.add_argument(
        "--stop-after",
        type=int,
        default=None,
        metavar="STEP",
        help="checkpoint and stop after this many steps (continue with --resume)",
    )


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device='cuda' but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    t = cfg["train"]
    os.environ.setdefault("OMP_NUM_THREADS", str(t["threads"]))
    torch.set_num_threads(int(t["threads"]))
    device = _device(t["device"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    torch.manual_seed(t["seed"])
    train_ds, val_ds = _datasets(cfg)
    model = build_net(SegNetConfig.from_dict(cfg["model"])).to(device)
    opt = torch.optim.AdamW(
        model.parameters(), lr=float(t["lr"]), weight_decay=float(t["weight_decay"])
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=float(t["lr"]),
        total_steps=t["steps"],
        pct_start=0.1,
        div_factor=20,
        final_div_factor=200,
    )
    start = 0
    if args.resume:
        start = _resume(out, model, opt, sched)
    elif t["init"] is not None:
        _init_weights(model, t["init"])
    stop = t["steps"] if args.stop_after is None else min(int(args.stop_after), t["steps"])
    if stop < 1:
        raise ValueError(f"--stop-after {args.stop_after} must be >= 1")
    weights = class_weights(train_ds).to(device)
    _train_loop(cfg, model, opt, sched, weights, train_ds, val_ds, device, out, start, stop)
    if stop < t["steps"]:
        print(f"stopped after step {stop}; continue with --resume")
        return 0
    iou, miou = evaluate(model, val_ds, device)
    print(f"final val mIoU over {len(val_ds)} images: {miou:.4f}")
    if not args.no_export:
        meta = {
            "steps": t["steps"],
            "dataset": cfg["data"]["dataset"],
            "val_miou": miou,
            "size": list(cfg["data"]["size"]),
            "jpeg_prob": float(t["jpeg_prob"]),
        }
        export_weights(model, cfg["export"], meta, class_weight=weights.cpu())
        print(f"exported {cfg['export']} ({Path(cfg['export']).stat().st_size / 1e6:.2f} MB)")
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


def _resume(out: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any) -> int:
    path = out / "checkpoint.pt"
    if not path.is_file():
        raise ValueError(f"--resume: no checkpoint at {path}")
    ck = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["opt"])
    sched.load_state_dict(ck["sched"])
    torch.set_rng_state(ck["torch_rng"])
    return int(ck["step"])


def _train_loop(
    cfg: dict[str, Any],
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    sched: Any,
    weights: torch.Tensor,
    train_ds: Any,
    val_ds: Any,
    device: torch.device,
    out: Path,
    start: int,
    stop: int,
) -> None:
    t = cfg["train"]
    model.train()
    log = (out / "log.csv").open("a")
    if start == 0:
        log.write("step,loss,lr,seconds,val_miou\n")
    bar = tqdm(total=t["steps"], initial=start, desc="segmenter", mininterval=5.0)
    t0 = time.perf_counter()

    def update(step: int, batch: tuple[torch.Tensor, torch.Tensor]) -> float | None:
        x, y = batch
        logits = model(x.to(device))
        loss = F.cross_entropy(logits, y.to(device), weight=weights, ignore_index=VOID)
        loss_value = loss.item()
        opt.zero_grad(set_to_none=True)
        if not math.isfinite(loss_value):
            warnings.warn(f"non-finite loss at step {step}; skipping the update", stacklevel=2)
            return None
        loss.backward()
        opt.step()
        sched.step()
        return loss_value

    def after(step: int, loss_value: float | None, _wait: float, _sec: float) -> None:
        bar.update(1)
        if loss_value is None:
            return
        done = step + 1
        val = ""
        if done % t["eval_every"] == 0 or done == t["steps"]:
            val = f"{evaluate(model, val_ds, device)[1]:.4f}"
            bar.set_postfix(loss=f"{loss_value:.3f}", val_miou=val)
        log.write(
            f"{done},{loss_value:.5f},{sched.get_last_lr()[0]:.6g},"
            f"{time.perf_counter() - t0:.1f},{val}\n"
        )
        log.flush()
        if done % t["ckpt_every"] == 0 or done == stop:
            _save(out, model, opt, sched, done)

    # The learned codecs' stepping: step loader (train.workers), update, log/checkpoint.
    run_steps(functools.partial(make_batch, train_ds, cfg), start, stop, update, after,
              RunOptions(workers=int(t["workers"]), prefetch=4))
    bar.close()
    log.close()
