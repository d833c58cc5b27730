"""One resumable GAN training loop for every learned codec (SQ-GAN, AM-VQ, ISC).

::

    step t:  host  BatchMaker(t) ─► knobs (m / tau / depth) + batch   (DataLoader workers)
             device  lr(t) ─► forward ─► generator loss ─► G step
                     ─► [t >= disc_start] discriminator loss ─► D step ─► [EMA update]
    every log_every: one JSON line (knobs, losses, data wait, seconds)
    every save_every and at the end: <out>/last.pt (weights, optimisers, D, EMA, step)
    end: the codec's model file <out>/model.pt (EMA weights when train.ema_decay > 0)

:class:`LoopTrainer` is the loop itself (resume, log, checkpoints, ``stop_at``, progress,
step loader); :class:`GANTrainer` adds the adversarial step, EMA and the model file. The
segmenter (``semcomm.segmentation.train.SegTrainer``) is the loop's non-adversarial user:
its own update (AdamW + OneCycle), mIoU evaluation and file names, through the same hooks.

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
import pickle
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
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

__all__ = ["PRECISIONS", "GANTrainer", "LoopTrainer", "RunOptions", "StepResult", "WeightEMA",
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


def truncate_log(path: Path, step: int,
                 keep: Callable[[str, int], bool] | None = None) -> None:
    """Drop log lines at or after ``step`` (left by a run that died after its checkpoint).

    ``keep(line, step)`` decides per non-empty line; the default reads JSON lines and keeps
    those whose ``"step"`` is below ``step``.
    """
    if not path.is_file():
        return
    keep = keep or _json_line_before
    kept = [ln for ln in path.read_text().splitlines() if ln.strip() and keep(ln, step)]
    path.write_text("".join(ln + "\n" for ln in kept))


def _json_line_before(line: str, step: int) -> bool:
    return bool(json.loads(line).get("step", -1) < step)


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


class LoopTrainer:
    """The one resumable training loop; :class:`GANTrainer` (the learned codecs) and the
    segmenter's ``SegTrainer`` subclass it.

    ::

        run_loop(out): [resume from out/<checkpoint_name>] ─► drop log lines past it
          step t = start .. end-1:  batch_maker()(t) (step loader: workers, prefetch)
             ─► train_step(batch) ─► log_line(t, ...) into out/<log_name>
             ─► [save_due] out/<checkpoint_name> (atomic: temp file + rename)

    A subclass sets ``step``, ``seed``, ``device`` and ``options`` in its constructor and
    supplies ``batch_maker``, ``train_step``, ``state``, ``resume``, ``total_steps``,
    ``log_line`` and ``save_due``; where it differs, ``log_header``, ``keep_log_line``,
    ``begin``, ``postfix`` and ``should_stop``. ``checkpoint_name`` and ``log_name`` name
    the run folder's files; ``resume_found`` says whether an existing checkpoint is resumed
    without being asked (the codecs) or only when the caller asks (the segmenter's
    ``--resume``).
    """

    name: ClassVar[str] = "model"          # progress bar and messages
    checkpoint_name: ClassVar[str] = "last.pt"
    log_name: ClassVar[str] = "loss_log.jsonl"
    resume_found: ClassVar[bool] = True
    step: int
    seed: int
    device: torch.device
    options: RunOptions
    _maker: Callable[[int], Any] | None = None

    # ------------------------------------------------------------------ hooks
    def batch_maker(self) -> Callable[[int], Any]:
        """Picklable function of the step that builds its host batch (runs in workers)."""
        raise NotImplementedError

    def train_step(self, data: Any = None) -> Any:
        """Apply batch ``data`` of step ``self.step``, advance ``self.step``; the result
        goes to :meth:`log_line`."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """Resumable state (loads with ``weights_only=True``)."""
        raise NotImplementedError

    def resume(self, path: str | Path) -> None:
        """Restore a checkpoint written by :meth:`save`."""
        raise NotImplementedError

    @property
    def total_steps(self) -> int:
        raise NotImplementedError

    def log_line(self, step: int, res: Any, wait: float, seconds: float,
                 end: int) -> str | None:
        """The log line of step ``step`` (None: none), with the seconds the step waited
        for its batch and in all; ``end`` is the last step + 1 of this run."""
        raise NotImplementedError

    def save_due(self, end: int) -> bool:
        """Whether to write the checkpoint now (``self.step`` steps done)."""
        raise NotImplementedError

    def log_header(self) -> str:
        """First line of a new log ("" = none)."""
        return ""

    def keep_log_line(self, line: str, step: int) -> bool:
        """Whether a log line survives a resume at ``step`` (JSON lines by default)."""
        return _json_line_before(line, step)

    def begin(self) -> None:
        """Called once before the first step of a run (e.g. to start a clock)."""

    def postfix(self, res: Any) -> dict[str, str]:
        """Progress-bar values after a logged step."""
        return {}

    def should_stop(self) -> bool:
        """Whether to end the run before its next step (e.g. a wall-time limit)."""
        return False

    @property
    def run_name(self) -> str:
        return self.name

    # ------------------------------------------------------------------ the run
    def host_batch(self, step: int) -> Any:
        """The host part of step ``step`` (what a DataLoader worker computes)."""
        if self._maker is None:
            self._maker = self.batch_maker()
        return self._maker(step)

    def save(self, path: str | Path) -> None:
        """Write the resumable checkpoint atomically."""
        atomic_save(self.state(), Path(path))

    def run_loop(self, out_dir: str | Path, progress: bool = True, stop_at: int | None = None,
                 resume: bool | None = None) -> Path:
        """Train to ``total_steps``, or only to step ``stop_at`` of that schedule (the
        schedule still follows ``total_steps``, so a later run continues it exactly).

        ``resume``: True continues from ``out_dir/<checkpoint_name>`` (which must exist),
        False starts afresh, None follows ``resume_found``. Returns the run folder.
        """
        if stop_at is not None and stop_at < 0:
            raise ValueError(f"stop_at {stop_at} must be >= 0")
        end = self.total_steps if stop_at is None else min(stop_at, self.total_steps)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        ckpt, log_path = out / self.checkpoint_name, out / self.log_name
        if resume and not ckpt.is_file():
            raise ValueError(f"resume: no checkpoint at {ckpt}")
        if ckpt.is_file() and (self.resume_found if resume is None else resume):
            self.resume(ckpt)
            warnings.warn(f"resuming {self.run_name} from step {self.step} ({ckpt})",
                          stacklevel=3)
        truncate_log(log_path, self.step, self.keep_log_line)
        fresh = not log_path.is_file() or log_path.stat().st_size == 0
        desc = self.name if self.run_name == self.name else f"{self.name} {self.run_name}"
        bar = _progress_bar(end, min(self.step, end), progress, desc)
        if self._maker is None:
            self._maker = self.batch_maker()
        with log_path.open("a") as log:
            if fresh and self.log_header():
                log.write(self.log_header() + "\n")

            def after(step: int, res: Any, wait: float, seconds: float) -> None:
                bar.update(1)
                line = self.log_line(step, res, wait, seconds, end)
                if line is not None:
                    log.write(line + "\n")
                    log.flush()
                    bar.set_postfix(self.postfix(res))
                if self.save_due(end):
                    self.save(ckpt)

            self.begin()
            run_steps(self._maker, self.step, end, lambda _, data: self.train_step(data),
                      after, self.options, pin_memory=self.device.type == "cuda",
                      stop=self.should_stop)
        bar.close()
        return out


class GANTrainer(LoopTrainer, Generic[CfgT, ModelT, LossT]):
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

    def checkpoint_label(self) -> str:
        return self.label

    def _load(self, path: str | Path) -> dict[str, Any]:
        """``torch.load`` of a model file or training checkpoint (``weights_only``); a
        file it cannot read, or one that holds no mapping, is a one-line ValueError."""
        try:
            ckpt = torch.load(Path(path), map_location=self.device, weights_only=True)
        except (RuntimeError, pickle.UnpicklingError, EOFError) as err:
            raise ValueError(f"{path}: not a model file (torch.load could not read it: "
                             f"{type(err).__name__})") from None
        return ckpt if isinstance(ckpt, dict) else {}

    def resume(self, path: str | Path, expect: dict[str, Any] | None = None) -> None:
        """Restore a checkpoint written by :meth:`save` for the same model config: the
        weights, discriminator, optimisers and step. ``expect``: the tags it must carry
        when they are not this run's (a stage continuing the previous stage's run)."""
        ckpt = self._load(path)
        tags = {k: ckpt.get(k) for k in self.tags()}
        if ckpt.get("format") != self.train_format or tags != (expect or self.tags()):
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

    def init_from(self, path: str | Path, prefix: str | None = None,
                  exclude: Sequence[str] = ()) -> dict[str, Any]:
        """Load model weights from a ``model.pt`` or a ``last.pt``: all of them, or only
        those whose names start with ``prefix + "."`` (fine-tuning, next stage), less
        those under the ``exclude`` prefixes (they keep their fresh initialisation, e.g.
        a resized codebook). With ``exclude`` the model configs may differ, but every
        loaded tensor must have the shape this model gives it (ValueError naming it).
        Returns the loaded file (its metadata, for a subclass)."""
        ckpt = self._load(path)
        state = ckpt.get("state_dict", ckpt.get("model"))
        if ckpt.get("format") not in (self.model_format, self.train_format) or state is None:
            raise ValueError(f"{path}: neither {self.label} model.pt nor a training "
                             "checkpoint")
        if not exclude and self.model_config(ckpt["config"]["model"], str(path)) \
                != self.cfg.model:
            raise ValueError(f"{path}: its model config differs from the current config")
        ours = self.model.state_dict()
        if prefix is not None:
            state = {**ours, **{k: v for k, v in state.items() if k.startswith(prefix + ".")}}
        if exclude:
            skip = tuple(p.rstrip(".") + "." for p in exclude)
            state = {k: (ours[k] if k.startswith(skip) else v) for k, v in state.items()}
            bad = [k for k, v in state.items() if k in ours and v.shape != ours[k].shape]
            if bad:
                raise ValueError(f"{path}: {bad[0]} has shape {tuple(state[bad[0]].shape)}, "
                                 f"this model {tuple(ours[bad[0]].shape)}; add its prefix "
                                 "to --init-except")
        self.model.load_state_dict(state)
        if self.ema is not None:
            self.ema = WeightEMA(self.generator_parameters(), self.cfg.train.ema_decay)
        return ckpt

    # ------------------------------------------------------------------ the loop's hooks
    def log_line(self, step: int, res: StepResult, wait: float, seconds: float,
                 end: int) -> str | None:
        if step % self.cfg.train.log_every and self.step != end:
            return None
        return json.dumps({**self.tags(), "step": step, "lr": res.lr, **res.knobs,
                           "sec_per_step": round(seconds, 4), "data_sec": round(wait, 4),
                           **res.logs})

    def postfix(self, res: StepResult) -> dict[str, str]:
        return {k: f"{v:.3g}" for k, v in res.logs.items() if k in self.progress_keys}

    def save_due(self, end: int) -> bool:
        return self.step % self.cfg.train.save_every == 0 or self.step == end

    # ------------------------------------------------------------------ the run
    def fit(self, out_dir: str | Path, progress: bool = True, table_images: int = 100,
            stop_at: int | None = None) -> Path:
        """Train to ``total_steps`` (resuming from ``out_dir/last.pt`` if present), or only
        to step ``stop_at`` of that schedule (the learning rate still follows
        ``total_steps``, so a later run without ``stop_at`` continues it exactly), then
        write ``out_dir/model.pt``; returns its path."""
        out = self.run_loop(out_dir, progress, stop_at)
        if self.ema is None:
            return self.export(out / "model.pt", table_images)
        with self.ema.applied():
            return self.export(out / "model.pt", table_images)


def run_steps(make: Callable[[int], _B], start: int, end: int,
              update: Callable[[int, _B], _R], after: Callable[[int, _R, float, float], None],
              options: RunOptions, pin_memory: bool = False,
              stop: Callable[[], bool] | None = None) -> None:
    """The stepping every trainer shares (the codecs' GANTrainer, the segmenter's).

    Batches ``make(t)`` of steps ``start .. end - 1`` come from the step loader
    (``options.workers`` processes, ``options.prefetch`` ahead, pinned memory on CUDA);
    each is applied by ``update(t, batch)``, then ``after(t, result, data_sec, sec)``
    logs and checkpoints, with the seconds the step waited for its batch and in all.
    ``stop()`` true before a step ends the run there.
    """
    batches = step_loader(make, start, end, options.workers, options.prefetch, pin_memory)
    for step in range(start, end):
        if stop is not None and stop():
            break
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
