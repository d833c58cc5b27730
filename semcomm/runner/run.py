"""Run an experiment end to end into ``results/<experiment>/<timestamp>/``.

::

    config.yaml    resolved experiment (what --resume reloads)
    points.jsonl   one line per measurement, appended + fsync'd as computed
    payloads/      every encoded payload (base64 JSON), so a resume never re-encodes
    gallery/       reconstructions of the gallery image(s)
    summary.csv    one row per point with means and intervals
    summary.json   schema version, provenance, resolved config, the rows
    *_vs_snr.png/pdf, miou_vs_bpp.png/pdf, gallery_<link>.png/pdf (plots.py)
    report.html    everything above in one self-contained page (report.py)

Ctrl-C stops a run cleanly: what was measured stays in points.jsonl and
:class:`Interrupted` carries the run folder for the resume command.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from semcomm.runner import adaptation
from semcomm.runner.config import Experiment, expand_links, resolve, resolve_device, to_yaml
from semcomm.runner.plots import all_plots, gallery_snrs
from semcomm.runner.store import PointStore, RunLock, complete_lines
from semcomm.runner.summary import summarize_file, write_csv
from semcomm.runner.sweep import (
    Context,
    Encoder,
    phase_one,
    phase_two,
    plan_points,
    shard_images,
)
from semcomm.utils import seed_everything

SCHEMA_VERSION = 1
_PACKAGES = ("semcomm", "torch", "numpy", "sionna-no-rt", "numba", "pillow", "pillow-heif",
             "imagecodecs", "constriction", "pydantic", "scipy", "matplotlib")


class SetupError(ValueError):
    """The experiment cannot start (missing files, bad dataset root, tiny budget...)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the points measured so far are kept in ``run_dir``."""

    def __init__(self, run_dir: Path, kept: int) -> None:
        super().__init__(f"interrupted; {kept} measurements kept in {run_dir}")
        self.run_dir, self.kept = run_dir, kept


@dataclass(frozen=True)
class RunResult:
    """Where a run wrote its files and its summary rows."""

    run_dir: Path
    rows: list[dict[str, Any]]
    wall_s: float
    #: Points that raised on a Ray worker (listed in failures.jsonl; --resume reruns them).
    failed: int = 0


def new_run_dir(out_root: Path, name: str) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = out_root / name / stamp
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = out_root / name / f"{stamp}-{suffix}"
    run_dir.mkdir(parents=True)
    return run_dir


def check_writable(out_root: Path) -> None:
    """SetupError unless a run folder can be made under ``out_root`` (nothing is made)."""
    probe = out_root
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise SetupError(f"--out {str(out_root)!r}: {str(probe)!r} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise SetupError(f"--out {str(out_root)!r}: {str(probe)!r} is not writable")


def load_run_config(run_dir: Path) -> Experiment:
    """The resolved experiment saved in a run folder (for --resume)."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ValueError(f"--resume {str(run_dir)!r}: no config.yaml there (not a run folder)")
    return resolve(yaml.safe_load(path.read_text()), path)


def _git(repo: Path, *args: str) -> str | None:
    try:
        res = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                             timeout=10, check=True)
        return res.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def git_dirty(status: str | None) -> bool | None:
    """Dirty unless every change is an untracked file under ``experiments/`` (a user's
    own YAML there does not change the code); ``status`` is ``git status --porcelain``."""
    if status is None:
        return None
    changes = [line for line in status.splitlines() if line.strip()]
    return any(not line.startswith("?? experiments/") for line in changes)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def models_used(ctx: Context) -> dict[str, Any]:
    """Every weight file a run loads (codecs, segmenter, LPIPS/FID) with its sha256 and
    size, and the device each network ran on."""
    files: dict[str, Path] = {}
    devices: dict[str, str] = {}
    for label, codec in ctx.codecs.items():
        if getattr(codec, "checkpoint", None) is not None:
            files[f"codec:{label}"] = Path(codec.checkpoint)  # type: ignore[attr-defined]
            devices[f"codec:{label}"] = str(getattr(codec, "device", "cpu"))
    for role, seg in (("segmenter", ctx.segmenter), ("judge", ctx.judge)):
        if role == "judge" and seg is ctx.segmenter:
            continue
        if getattr(seg, "path", None) is not None:
            files[role] = Path(seg.path)  # type: ignore[attr-defined]
        if getattr(seg, "device", None) is not None:
            devices[role] = str(seg.device)  # type: ignore[attr-defined]
    m = ctx.exp.metrics
    if m.lpips is not None:
        files["lpips:backbone"] = Path(m.lpips.backbone)
        files["lpips:heads"] = Path(m.lpips.heads)
    if m.fid is not None:
        files["fid:extractor"] = Path(m.fid.extractor)
    checkpoints = {k: {"path": str(p.resolve()), "bytes": p.stat().st_size,
                       "sha256": sha256_file(p)} for k, p in files.items()}
    return {"checkpoints": checkpoints, "devices": devices}


def provenance(exp: Experiment, used: dict[str, Any] | None = None) -> dict[str, Any]:
    """git commit + dirty flag, package versions, seed, argv, the devices and the
    checkpoints (sha256) actually used, host facts."""
    repo = Path(__file__).resolve().parents[2]
    versions: dict[str, str | None] = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    used = used or {"checkpoints": {}, "devices": {}}
    return {
        "git_commit": _git(repo, "rev-parse", "HEAD"),
        "git_dirty": git_dirty(_git(repo, "status", "--porcelain")),
        "argv": list(sys.argv),
        "cwd": os.getcwd(),
        "packages": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "seed": exp.seed,
        "device": ",".join(sorted(set(used["devices"].values()))) or "cpu",
        "devices": used["devices"],
        "cuda_available": torch.cuda.is_available(),
        "checkpoints": used["checkpoints"],
        "torch_threads": torch.get_num_threads(),
    }


def run_experiment(exp: Experiment, out_root: Path = Path("results"),
                   resume_dir: Path | None = None, workers: int | None = None,
                   progress: bool = True,
                   on_start: Callable[[Path], None] | None = None,
                   shard: tuple[int, int] | None = None) -> RunResult:
    """Run (or resume) ``exp``; returns the run folder and summary rows.

    ``on_start(run_dir)`` is called once the folder exists, before any compute.
    ``shard=(k, n)`` measures only the k-th of n contiguous blocks of images (saved in
    ``shard.json``, which a resume reads); ``semcomm merge`` joins the shards' folders.
    Ctrl-C raises :class:`Interrupted` (a KeyboardInterrupt) after closing the store.
    """
    start = time.perf_counter()
    clock = Clock()
    seed_everything(exp.seed)
    if resume_dir is not None and (resume_dir / "shard.json").is_file():
        k, n = json.loads((resume_dir / "shard.json").read_text())
        shard = (int(k), int(n))
    check_shard(exp, shard)
    ray_started = None  # Ray: connected before any compute (one line if it cannot be)
    if exp.executor.kind == "ray":
        from semcomm.runner.ray_executor import connect

        ray_started = connect(exp.executor, workers)
    if resume_dir is None:
        check_writable(out_root)  # before loading any model
    # One writer per run folder: a concurrent --resume is refused before any compute.
    lock = RunLock(resume_dir) if resume_dir is not None else None
    actors = workers  # Ray: --workers N is N actors (default: executor.num_cpus)
    workers = workers or (exp.executor.workers if exp.executor.kind == "process" else 1)
    if exp.executor.kind == "ray":
        workers = 1  # the driver's own stages run here (Ray's threads forbid a fork)
    pool = None  # Ray: the actors, started before the driver's context is built
    try:
        try:  # everything that can fail on the user's input, before any compute
            # adaptation: the sweep runs every (codec, MCS row) candidate
            expanded = adaptation.expand(exp)
            if ray_started is not None:  # its actors build while the driver does
                from semcomm.runner.ray_executor import RayPool

                pool = RayPool(expanded, resolve_device(expanded.device), actors,
                               ray_started)
            ctx = Context(expanded, resume_dir or out_root, workers=workers)
        except SetupError:
            raise  # already one line (Ray cannot host the actors, ...)
        except (ValueError, OSError, TypeError) as err:
            raise SetupError(f"{exp.name}: {type(err).__name__}: {err}") from err
        if resume_dir is None:
            run_dir = new_run_dir(out_root, exp.name)
            lock = RunLock(run_dir)
            (run_dir / "config.yaml").write_text(to_yaml(exp))
            if shard is not None:
                (run_dir / "shard.json").write_text(json.dumps(list(shard)))
        else:
            run_dir = resume_dir
        ctx.run_dir = run_dir
        ctx.images = shard_images(len(ctx.samples), shard)
        if on_start is not None:
            on_start(run_dir)
        used = models_used(ctx)
        store = PointStore(run_dir / "points.jsonl")
        if pool is not None:
            pool.attach(ctx)
        clock.lap("setup")
        try:
            used_workers, failed = _sweep(ctx, store, workers, progress, clock, pool)
        except KeyboardInterrupt:
            # What is on disk, not len(store): Ctrl-C may land between the store's
            # index update and its write, and a resume keeps the complete lines.
            store.close()
            raise Interrupted(run_dir, complete_lines(store.path)) from None
        finally:
            store.close()
        # Ray: the summary rows and figures on the actors (no fork under Ray's threads)
        with pool.tasks() if pool is not None else contextlib.nullcontext():
            rows = write_results(exp, run_dir, time.perf_counter() - start, used_workers,
                                 used, clock)
    finally:
        if pool is not None:
            pool.close()
        if lock is not None:
            lock.release()
    return RunResult(run_dir, rows, time.perf_counter() - start, len(failed))


def check_shard(exp: Experiment, shard: tuple[int, int] | None) -> None:
    """A shard ``(k, n)`` needs 0 <= k < n and no stopping rule (the rule stops a point
    at an image of the whole image order, which one shard does not see)."""
    if shard is None:
        return
    k, n = shard
    if not (n >= 1 and 0 <= k < n):
        raise SetupError(f"shard {k}/{n}: give i/N with N >= 1 and 0 <= i < N")
    st = exp.stopping
    rules = {"target_block_errors": st.target_block_errors,
             "ci_half_width": st.ci_half_width, "max_realizations": st.max_realizations}
    for key, value in rules.items():
        if n > 1 and value is not None:
            raise SetupError(f"shard {k}/{n}: stopping.{key} {value} stops a point at an "
                             "image of the whole run; shards need it null (fixed draws)")


class _Bar(tqdm):
    """A progress bar without tqdm's monitor thread: the process executor forks its
    workers only from a single-threaded parent (semcomm.runner.pool.fork_ok)."""

    monitor_interval = 0


class Clock:
    """Wall and CPU seconds of a run's stages: this process's own CPU and that of its
    finished worker processes (``resource`` children), for ``summary.json``'s
    ``timings``: where a run's time went, and how much extra CPU the workers cost."""

    def __init__(self) -> None:
        self.timings: dict[str, dict[str, float]] = {}
        self._last = self._now()

    @staticmethod
    def _now() -> tuple[float, float, float]:
        import resource

        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (time.perf_counter(), own.ru_utime + own.ru_stime,
                kids.ru_utime + kids.ru_stime)

    def lap(self, stage: str) -> None:
        """Charge the time since the last lap (or the start) to ``stage``."""
        now = self._now()
        wall, cpu, workers = (round(b - a, 3) for a, b in zip(self._last, now, strict=True))
        self.timings[stage] = {"wall_s": wall, "cpu_s": cpu, "workers_cpu_s": workers}
        self._last = now


def _sweep(ctx: Context, store: PointStore, workers: int, progress: bool, clock: Clock,
           pool: Any = None) -> tuple[int, list[Any]]:
    """Phase 1 here, phase 2 on the experiment's executor (``pool``: a Ray run's
    :class:`~semcomm.runner.ray_executor.RayPool`, which runs both phases); returns the
    workers used and the points that failed (Ray only: the other executors stop at a
    failing point)."""
    enc = Encoder(ctx)
    with _Bar(total=len(ctx.images), desc="encode", unit="img", disable=not progress,
              dynamic_ncols=True) as bar:
        if pool is None:
            phase_one(ctx, enc, store, bar, workers)
        else:  # on the actors, which then hold every error-free decode
            pool.encode(enc, store, bar)
    clock.lap("encode")
    points = plan_points(ctx)
    with _Bar(total=len(points), desc="sweep", unit="pt", disable=not progress,
              dynamic_ncols=True) as bar:
        if pool is None:
            phase_two(ctx, enc, store, bar, workers)
            failed: list[Any] = []
        else:
            workers, failed = pool.size, pool.run(store, bar)
    clock.lap("sweep")
    return workers, failed


def write_results(exp: Experiment, run_dir: Path, wall_s: float, workers: int,
                  used: dict[str, Any] | None = None, clock: Clock | None = None
                  ) -> list[dict[str, Any]]:
    """summary.csv, summary.json, the figures and report.html from ``points.jsonl``
    (read point by point: memory does not grow with the number of measurements).
    ``workers > 1`` computes the rows and draws the figures on forked workers (when
    safe, :mod:`semcomm.runner.pool`); the files are the same."""
    clock = clock or Clock()
    rows, measurements = summarize_file(
        run_dir / "points.jsonl", [c.display for c in adaptation.expand(exp).codecs],
        exp.max_images,
        exp.metrics.bootstrap, exp.metrics.confidence, exp.seed, run_dir,
        fid=exp.metrics.fid is not None, stopping=exp.stopping, workers=workers)
    write_csv(rows, run_dir / "summary.csv")
    adapted = adaptation.section(exp, rows)
    if adapted is not None:  # the choice table: adaptation.csv and the summary
        adaptation.write_csv(adapted, run_dir / "adaptation.csv")
    from semcomm.runner.class_iou import write_class_results

    write_class_results(exp, run_dir)  # class_iou.csv when a codec protects classes
    clock.lap("summary")
    snr_label = "Es/N0 [dB]" if exp.snr is None or exp.snr.kind == "esno" else "Eb/N0 [dB]"
    all_plots(run_dir, rows, snr_label, gallery_snrs(exp.snr.values() if exp.snr else []),
              exp.plots, links=dict(expand_links(exp.links)), adaptation=adapted,
              workers=workers, judge=exp.scorer.name)
    clock.lap("plots")
    summary = {
        "schema_version": SCHEMA_VERSION,
        "experiment": exp.name,
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "wall_s": round(wall_s, 3),
        "workers": workers,
        # Wall and CPU seconds per stage (CPU: this process, and its worker processes).
        "timings": clock.timings,
        "measurements": measurements,
        # What mIoU was scored against: ground-truth labels, or the evaluating
        # segmenter's map of the original ("original-segmentation", a pseudo truth).
        "miou_reference": exp.dataset.resolved_reference,
        # The network whose map of x_hat was scored (mIoU): judge | bundled | ...
        "judge": exp.scorer.name,
        "provenance": provenance(exp, used),
        "config": exp.model_dump(mode="json"),
        "rows": rows,
    }
    if adapted is not None:
        summary["adaptation"] = adapted
    tmp = run_dir / "summary.json.tmp"
    tmp.write_text(json.dumps(_jsonable(summary), indent=1))
    tmp.replace(run_dir / "summary.json")
    from semcomm.runner.report import write_report

    write_report(run_dir)
    return rows


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def set_threads() -> None:
    """One intra-op thread (fastest on small CPUs; the process executor adds workers)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
