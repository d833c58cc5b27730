"""One resumable GAN training loop for every learned codec (SQ-GAN, AM-VQ, ISC).

::

    step t:  host  BatchMaker(t) ─► knobs (m / tau / depth) + batch   (DataLoader workers)
             device  lr(t) ─► forward ─► generator loss ─► G step
                     ─► [t >= disc_start] discriminator loss ─► D step ─► [EMA update]
    every log_every: one JSON line (knobs, losses, data wait, seconds)
    every save_every and at the end: <out>/last.pt (weights, optimisers, D, EMA, step)
    end: the codec's model file <out>/model.pt (EMA weights when train.ema_decay > 0)

A codec subclasses :class:`GANTrainer` and supplies only its hooks: ``build_model``,
``build_loss``, ``batch_maker``, ``forward``, ``generator_loss``, ``discriminator_loss``,
``model_config`` and ``export`` (plus, where it differs, ``to_device``, ``set_modes``,
``generator_parameters``, ``disc_active``). All randomness of step t derives from
``(seed, stream, t)``: a run resumed from ``last.pt`` -- on any machine, with any number
of workers -- continues with exactly the numbers of an uninterrupted run (on the same
device type and precision: a CUDA bf16 run is exact only against itself).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
import torch
from torch import nn

from semcomm.codecs.config_schema import config_to_dict
from semcomm.codecs.learned.data import BatchMaker, StepData, step_loader
from semcomm.codecs.learned.modelfile import atomic_save
from semcomm.codecs.learned.perceptual import LossResult

__all__ = ["PRECISIONS", "GANTrainer", "RunOptions", "StepResult", "WeightEMA",
           "derived_seed", "lr_at", "run_steps", "truncate_log"]

CfgT = TypeVar("CfgT", bound=Any)  # the codec's whole config (.model, .train)
ModelT = TypeVar("ModelT", bound=nn.Module)
LossT = TypeVar("LossT", bound=Any)  # the codec's loss module, discriminator as .disc
_B = TypeVar("_B")
_R = TypeVar("_R")

#: ``fp32`` everywhere; ``bf16``: autocast of forward and losses to bfloat16 (CUDA).
PRECISIONS = ("fp32", "bf16")


def lr_at(step: int, total: int, lr: float, min_lr: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``min_lr`` at ``total``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    span = max(total - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def truncate_log(path: Path, step: int) -> None:
    """Drop log lines at or after ``step`` (left by a run that died after its checkpoint)."""
    if not path.is_file():
        return
    keep = [ln for ln in path.read_text().splitlines()
            if ln.strip() and json.loads(ln).get("step", -1) < step]
    path.write_text("".join(ln + "\n" for ln in keep))


def derived_seed(seed: int, stream: int, step: int) -> int:
    """Torch seed of step ``step`` (-1: weight initialisation) of run (seed, stream)."""
    seq = np.random.SeedSequence([seed, stream, 2, step + 1])
    return int(seq.generate_state(1, dtype=np.uint64)[0] % (2**63))


@dataclass(frozen=True)
class RunOptions:
    """How a run uses its machine (not stored in the model; may change between runs).

    workers : DataLoader processes that build batches (0 = in the training process).
    prefetch : batches each worker prepares ahead.
    precision : "fp32" or "bf16" (autocast; meant for CUDA, also runs on the CPU).
    channels_last : NHWC memory format for the networks and image batches.
    compile : ``torch.compile`` the model's and the discriminator's submodules.
    """

    workers: int = 0
    prefetch: int = 4
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        if self.workers < 0 or self.prefetch < 1:
            raise ValueError(f"workers {self.workers} must be >= 0 and prefetch "
                             f"{self.prefetch} >= 1")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r} not in {PRECISIONS}")


@dataclass(frozen=True)
class StepResult:
    """Scalars of one training step, one line of the loss log; ``res.tau`` etc. read
    the step's knobs."""

    step: int
    lr: float
    knobs: dict[str, float]
    logs: dict[str, float]

    def __getattr__(self, name: str) -> float:
        knobs = self.__dict__.get("knobs", {})
        if name in knobs:
            return knobs[name]
        raise AttributeError(f"StepResult has no attribute or knob {name!r}")


class WeightEMA:
    """Exponential moving average of parameters: ``shadow <- decay shadow + (1 - decay) p``."""

    def __init__(self, params: Iterable[nn.Parameter], decay: float) -> None:
        self.params = list(params)
        self.decay = decay
        self.shadow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1.0 - self.decay)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["shadow"]) != len(self.shadow):
            raise ValueError(f"EMA state has {len(state['shadow'])} tensors, expected "
                             f"{len(self.shadow)}")
        for mine, theirs in zip(self.shadow, state["shadow"], strict=True):
            mine.copy_(theirs)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Within the block the parameters hold the EMA values."""
        with torch.no_grad():
            saved = [p.detach().clone() for p in self.params]
            for p, s in zip(self.params, self.shadow, strict=True):
                p.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, s in zip(self.params, saved, strict=True):
                    p.copy_(s)


class GANTrainer(Generic[CfgT, ModelT, LossT]):
    """The loop; a codec's ``Trainer`` subclasses it with its hooks.

    Parameters
    ----------
    cfg : the codec's whole config (``cfg.model``, ``cfg.train`` with the shared loop keys)
    dataset : sequence of :class:`Sample` at ``cfg.model.image_size``
    seed : int >= 0
    device : torch.device
    perceptual : module (x, x_hat) -> scalar, or None
    options : :class:`RunOptions` (workers, precision, ...)
    """

    name: ClassVar[str] = "codec"          # progress bar and messages
    label: ClassVar[str] = "a"             # "an AM-VQ": article + codec, for messages
    model_format: ClassVar[str] = ""
    cfg: CfgT
    model: ModelT
    loss: LossT
    progress_keys: ClassVar[tuple[str, ...]] = ()
    #: The codec's (and stage's) id in every derived seed.
    stream: int = 0
    #: ``model_class(cfg.model)`` and ``loss_class(cfg.train, perceptual)`` by default.
    model_class: ClassVar[Any] = None
    loss_class: ClassVar[Any] = None

    def __init__(self, cfg: CfgT, dataset: Any, seed: int = 0,
                 device: torch.device | str = "cpu", perceptual: nn.Module | None = None,
                 options: RunOptions | None = None) -> None:
        if seed is None or seed < 0:
            raise ValueError(f"seed {seed!r} must be a non-negative int")
        if len(dataset) < 1:
            raise ValueError("training dataset is empty")
        self.cfg, self.dataset, self.seed = cfg, dataset, seed
        self.device = torch.device(device)
        self.options = options or RunOptions()
        torch.manual_seed(derived_seed(seed, self.stream, -1))  # weight initialisation
        self.model = self.build_model().to(self.device)
        self.loss = self.build_loss(perceptual).to(self.device)
        t = cfg.train
        self.opt_g = torch.optim.Adam(self.generator_parameters(), lr=t.lr, betas=t.betas)
        self.opt_d = torch.optim.Adam(self.loss.disc.parameters(), lr=t.lr, betas=t.betas)
        self.ema = (WeightEMA(self.generator_parameters(), t.ema_decay)
                    if t.ema_decay > 0 else None)
        self.step = 0
        self._maker: BatchMaker | None = None
        self._apply_options()

    # ------------------------------------------------------------------ hooks
    def build_model(self) -> ModelT:
        return self.model_class(self.cfg.model)

    def build_loss(self, perceptual: nn.Module | None) -> LossT:
        """The codec's loss module; it holds the discriminator as ``.disc``."""
        return self.loss_class(self.cfg.train, perceptual)

    def batch_maker(self) -> BatchMaker:
        raise NotImplementedError

    def forward(self, batch: tuple[torch.Tensor, ...], knobs: dict[str, float]) -> Any:
        raise NotImplementedError

    def generator_loss(self, batch: tuple[torch.Tensor, ...], out: Any,
                       step: int) -> LossResult:
        raise NotImplementedError

    def discriminator_loss(self, batch: tuple[torch.Tensor, ...], out: Any) -> LossResult:
        raise NotImplementedError

    def model_config(self, data: Any, source: str) -> Any:
        """The ``model`` section of a stored config, validated."""
        raise NotImplementedError

    def export(self, path: Path, table_images: int) -> Path:
        """Write the codec's model file (statistics over ``table_images`` images)."""
        raise NotImplementedError

    @property
    def total_steps(self) -> int:
        return int(self.cfg.train.steps)

    def generator_parameters(self) -> Iterable[nn.Parameter]:
        return self.model.parameters()

    def to_device(self, tensors: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return tuple(self._to_device(t) for t in tensors)

    def set_modes(self) -> None:
        self.model.train()
        self.loss.train()

    def disc_active(self, step: int) -> bool:
        return step >= self.cfg.train.disc_start

    def tags(self) -> dict[str, Any]:
        """Entries that identify the run in checkpoints and log lines (e.g. the stage)."""
        return {}

    @property
    def train_format(self) -> str:
        """Format tag of the resumable checkpoint ``last.pt``."""
        return f"semcomm.{self.name}.train/1"

    @property
    def run_name(self) -> str:
        return self.name

    # ------------------------------------------------------------------ the step
    def _apply_options(self) -> None:
        if self.options.channels_last:
            for m in (self.model, self.loss.disc):
                m.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if self.options.compile:
            for m in [*self.model.children(), self.loss.disc]:
                m.compile()

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        t = t.to(self.device, non_blocking=True)
        if self.options.channels_last and t.dim() == 4 and t.is_floating_point():
            t = t.contiguous(memory_format=torch.channels_last)
        return t

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.options.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def host_batch(self, step: int) -> StepData:
        """The host part of step ``step`` (what a DataLoader worker computes)."""
        if self._maker is None:
            self._maker = self.batch_maker()
        return self._maker(step)

    def train_step(self, data: StepData | None = None) -> StepResult:
        """One generator and (when active) one discriminator update."""
        t, step = self.cfg.train, self.step
        data = self.host_batch(step) if data is None else data
        torch.manual_seed(derived_seed(self.seed, self.stream, step))  # VQ restarts
        batch = self.to_device(data.tensors)
        lr = lr_at(step, self.total_steps, t.lr, t.min_lr, t.warmup_steps)
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr
        self.set_modes()
        self.loss.disc.requires_grad_(False)
        with self._autocast():
            out = self.forward(batch, data.knobs)
            gen = self.generator_loss(batch, out, step)
        self.opt_g.zero_grad(set_to_none=True)
        gen.loss.backward()
        self.opt_g.step()
        self.loss.disc.requires_grad_(True)
        logs = dict(gen.logs)
        if self.disc_active(step):
            with self._autocast():
                dis = self.discriminator_loss(batch, out)
            self.opt_d.zero_grad(set_to_none=True)
            dis.loss.backward()
            self.opt_d.step()
            logs.update(dis.logs)
        if self.ema is not None:
            self.ema.update()
        self.step += 1
        return StepResult(step, lr, dict(data.knobs), logs)

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        """Resumable state (loads with ``weights_only=True``)."""
        state = {"format": self.train_format, **self.tags(), "step": self.step,
                 "seed": self.seed, "config": config_to_dict(self.cfg),
                 "model": self.model.state_dict(), "disc": self.loss.disc.state_dict(),
                 "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return state

    def save(self, path: str | Path) -> None:
        """Write the resumable checkpoint atomically."""
        atomic_save(self.state(), Path(path))

    def checkpoint_label(self) -> str:
        return self.label

    def resume(self, path: str | Path) -> None:
        """Restore a checkpoint written by :meth:`save` for the same model config."""
        ckpt = torch.load(Path(path), map_location=self.device, weights_only=True)
        tags = {k: ckpt.get(k) for k in self.tags()}
        if ckpt.get("format") != self.train_format or tags != self.tags():
            found = "".join(f", {k} {v!r}" for k, v in tags.items())
            raise ValueError(f"{path}: not {self.checkpoint_label()} training checkpoint "
                             f"(format {ckpt.get('format')!r}{found}, expected "
                             f"{self.train_format!r})")
        if self.model_config(ckpt["config"]["model"], str(path)) != self.cfg.model:
            raise ValueError(f"{path}: model config differs from the current config")
        self.model.load_state_dict(ckpt["model"])
        self.loss.disc.load_state_dict(ckpt["disc"])
        self.opt_g.load_state_dict(ckpt["opt_g"])
        self.opt_d.load_state_dict(ckpt["opt_d"])
        if self.ema is not None:
            if "ema" in ckpt:
                self.ema.load_state_dict(ckpt["ema"])
            else:  # a run without EMA continued with it: start the average here
                self.ema = WeightEMA(self.generator_parameters(), self.cfg.train.ema_decay)
        self.step = int(ckpt["step"])

    def init_from(self, path: str | Path, prefix: str | None = None) -> None:
        """Load model weights from a ``model.pt`` or a ``last.pt``: all of them, or only
        those whose names start with ``prefix + "."`` (fine-tuning, next stage)."""
        ckpt = torch.load(Path(path), map_location=self.device, weights_only=True)
        state = ckpt.get("state_dict", ckpt.get("model"))
        if ckpt.get("format") not in (self.model_format, self.train_format) or state is None:
            raise ValueError(f"{path}: neither {self.label} model.pt nor a training "
                             "checkpoint")
        if self.model_config(ckpt["config"]["model"], str(path)) != self.cfg.model:
            raise ValueError(f"{path}: its model config differs from the current config")
        if prefix is not None:
            ours = self.model.state_dict()
            state = {**ours, **{k: v for k, v in state.items() if k.startswith(prefix + ".")}}
        self.model.load_state_dict(state)
        if self.ema is not None:
            self.ema = WeightEMA(self.generator_parameters(), self.cfg.train.ema_decay)

    # ------------------------------------------------------------------ the run
    def fit(self, out_dir: str | Path, progress: bool = True, table_images: int = 100,
            stop_at: int | None = None) -> Path:
        """Train to ``total_steps`` (resuming from ``out_dir/last.pt`` if present), or only
        to step ``stop_at`` of that schedule (the learning rate still follows
        ``total_steps``, so a later run without ``stop_at`` continues it exactly), then
        write ``out_dir/model.pt``; returns its path."""
        if stop_at is not None and stop_at < 0:
            raise ValueError(f"stop_at {stop_at} must be >= 0")
        end = self.total_steps if stop_at is None else min(stop_at, self.total_steps)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        last, log_path = out / "last.pt", out / "loss_log.jsonl"
        if last.is_file():
            self.resume(last)
            warnings.warn(f"resuming {self.run_name} from step {self.step} ({last})",
                          stacklevel=2)
        truncate_log(log_path, self.step)
        bar = _progress_bar(end, min(self.step, end), progress,
                            f"{self.name} {self.run_name}" if self.run_name != self.name
                            else self.name)
        with log_path.open("a") as log:
            self._run(end, last, log, bar)
        bar.close()
        if self.ema is None:
            return self.export(out / "model.pt", table_images)
        with self.ema.applied():
            return self.export(out / "model.pt", table_images)

    def _run(self, end: int, last: Path, log: Any, bar: Any) -> None:
        t = self.cfg.train
        if self._maker is None:
            self._maker = self.batch_maker()

        def after(step: int, res: StepResult, wait: float, seconds: float) -> None:
            bar.update(1)
            if step % t.log_every == 0 or self.step == end:
                line = {**self.tags(), "step": step, "lr": res.lr, **res.knobs,
                        "sec_per_step": round(seconds, 4), "data_sec": round(wait, 4),
                        **res.logs}
                log.write(json.dumps(line) + "\n")
                log.flush()
                bar.set_postfix({k: f"{v:.3g}" for k, v in res.logs.items()
                                 if k in self.progress_keys})
            if self.step % t.save_every == 0 or self.step == end:
                self.save(last)

        run_steps(self._maker, self.step, end, lambda _, data: self.train_step(data), after,
                  self.options, pin_memory=self.device.type == "cuda")


def run_steps(make: Callable[[int], _B], start: int, end: int,
              update: Callable[[int, _B], _R], after: Callable[[int, _R, float, float], None],
              options: RunOptions, pin_memory: bool = False) -> None:
    """The stepping every trainer shares (the codecs' GANTrainer, the segmenter's).

    Batches ``make(t)`` of steps ``start .. end - 1`` come from the step loader
    (``options.workers`` processes, ``options.prefetch`` ahead, pinned memory on CUDA);
    each is applied by ``update(t, batch)``, then ``after(t, result, data_sec, sec)``
    logs and checkpoints, with the seconds the step waited for its batch and in all.
    """
    batches = step_loader(make, start, end, options.workers, options.prefetch, pin_memory)
    for step in range(start, end):
        tic = time.perf_counter()
        data = next(batches)
        wait = time.perf_counter() - tic
        result = update(step, data)
        after(step, result, wait, time.perf_counter() - tic)


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, values: dict[str, str]) -> None: ...
    def close(self) -> None: ...


def _progress_bar(total: int, initial: int, progress: bool, desc: str) -> Any:
    """tqdm when asked for (imported only then: a GPU machine may run without it)."""
    if not progress:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc)
