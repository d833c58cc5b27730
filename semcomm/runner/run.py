"""Run an experiment end to end into ``results/<experiment>/<timestamp>/``.

::

    config.yaml    resolved experiment (what --resume reloads)
    points.jsonl   one line per measurement, appended + fsync'd as computed
    payloads/      every encoded payload (base64 JSON), so a resume never re-encodes
    gallery/       reconstructions of the gallery image(s)
    summary.csv    one row per point with means and intervals
    summary.json   schema version, provenance, resolved config, the rows
    *_vs_snr.png/pdf, miou_vs_bpp.png/pdf, gallery.png/pdf
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from semcomm.runner.config import Experiment, resolve, to_yaml
from semcomm.runner.plots import all_plots
from semcomm.runner.store import PointStore
from semcomm.runner.summary import summarize, write_csv
from semcomm.runner.sweep import Context, Encoder, phase_one, phase_two, plan_points
from semcomm.utils import seed_everything

SCHEMA_VERSION = 1
_PACKAGES = ("semcomm", "torch", "numpy", "sionna-no-rt", "numba", "pillow", "pillow-heif",
             "imagecodecs", "constriction", "pydantic", "scipy", "matplotlib")


class SetupError(ValueError):
    """The experiment cannot start (missing files, bad dataset root, tiny budget...)."""


@dataclass(frozen=True)
class RunResult:
    """Where a run wrote its files and its summary rows."""

    run_dir: Path
    rows: list[dict[str, Any]]
    wall_s: float


def new_run_dir(out_root: Path, name: str) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = out_root / name / stamp
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = out_root / name / f"{stamp}-{suffix}"
    run_dir.mkdir(parents=True)
    return run_dir


def load_run_config(run_dir: Path) -> Experiment:
    """The resolved experiment saved in a run folder (for --resume)."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ValueError(f"--resume {str(run_dir)!r}: no config.yaml there (not a run folder)")
    return resolve(yaml.safe_load(path.read_text()), path)


def provenance(exp: Experiment) -> dict[str, Any]:
    """git commit + dirty flag, package versions, seed, device, host facts."""
    repo = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str | None:
        try:
            res = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                                 timeout=10, check=True)
            return res.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    versions: dict[str, str | None] = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    status = git("status", "--porcelain")
    return {
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "packages": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "seed": exp.seed,
        "device": "cuda:" + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "torch_threads": torch.get_num_threads(),
    }


def run_experiment(exp: Experiment, out_root: Path = Path("results"),
                   resume_dir: Path | None = None, workers: int | None = None,
                   progress: bool = True) -> RunResult:
    """Run (or resume) ``exp``; returns the run folder and summary rows."""
    start = time.perf_counter()
    seed_everything(exp.seed)
    try:  # everything that can fail on the user's input, before any compute
        ctx = Context(exp, resume_dir or out_root)
    except (ValueError, OSError) as err:
        raise SetupError(f"{exp.name}: {type(err).__name__}: {err}") from err
    if resume_dir is None:
        run_dir = new_run_dir(out_root, exp.name)
        (run_dir / "config.yaml").write_text(to_yaml(exp))
    else:
        run_dir = resume_dir
    ctx.run_dir = run_dir
    workers = workers or (exp.executor.workers if exp.executor.kind == "process" else 1)
    store = PointStore(run_dir / "points.jsonl")
    try:
        enc = Encoder(ctx)
        with tqdm(total=len(ctx.samples), desc="encode", unit="img", disable=not progress,
                  dynamic_ncols=True) as bar:
            phase_one(ctx, enc, store, bar)
        points = plan_points(ctx)
        with tqdm(total=len(points), desc="sweep", unit="pt", disable=not progress,
                  dynamic_ncols=True) as bar:
            phase_two(ctx, enc, store, bar, workers)
        lines = list(store.lines.values())
    finally:
        store.close()
    rows = write_results(exp, run_dir, lines, time.perf_counter() - start, workers)
    return RunResult(run_dir, rows, time.perf_counter() - start)


def gallery_snrs(exp: Experiment) -> list[float]:
    """Lowest, middle and highest SNR of the sweep (the gallery's columns)."""
    if exp.snr is None:
        return []
    values = sorted(exp.snr.values())
    picks = [values[0], values[len(values) // 2], values[-1]]
    return list(dict.fromkeys(picks))


def write_results(exp: Experiment, run_dir: Path, lines: list[dict[str, Any]],
                  wall_s: float, workers: int) -> list[dict[str, Any]]:
    """summary.csv, summary.json and the figures from all measurement lines."""
    rows = summarize(lines, [c.display for c in exp.codecs], exp.max_images,
                     exp.metrics.bootstrap, exp.metrics.confidence, exp.seed, run_dir,
                     fid=exp.metrics.fid is not None)
    write_csv(rows, run_dir / "summary.csv")
    summary = {
        "schema_version": SCHEMA_VERSION,
        "experiment": exp.name,
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "wall_s": round(wall_s, 3),
        "workers": workers,
        "measurements": len(lines),
        "provenance": provenance(exp),
        "config": exp.model_dump(mode="json"),
        "rows": rows,
    }
    tmp = run_dir / "summary.json.tmp"
    tmp.write_text(json.dumps(_jsonable(summary), indent=1))
    tmp.replace(run_dir / "summary.json")
    snr_label = "Es/N0 [dB]" if exp.snr is None or exp.snr.kind == "esno" else "Eb/N0 [dB]"
    from semcomm.runner.config import expand_links

    links = [label for label, _ in expand_links(exp.links)]
    all_plots(run_dir, rows, snr_label, gallery_snrs(exp), links[0] if links else None)
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
