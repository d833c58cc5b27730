"""``semcomm merge RUN_DIR... [--out results]``: join the run folders of one experiment's
shards (``semcomm run --shard i/N``) into one run folder.

::

    shard 0/N ─┐  config.yaml (all identical)
    shard 1/N ─┼─► points.jsonl (union; a key measured twice must agree) ─► summary,
       ...    ─┘  gallery/, features/ (copied)                               figures, report

The merged summary is computed from the union of the measurement lines exactly as a
single run computes it (rows are order-independent), so it equals the summary of the
same experiment run unsharded.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from semcomm.runner.config import to_yaml
from semcomm.runner.run import RunResult, SetupError, load_run_config, new_run_dir, write_results
from semcomm.runner.store import PointStore, RunLock, iter_lines, line_key


def merge_runs(run_dirs: list[Path], out_root: Path = Path("results")) -> RunResult:
    """A new run folder under ``out_root/<experiment>/`` with every shard's lines."""
    start = time.perf_counter()
    if not run_dirs:
        raise SetupError("merge: give at least one RUN_DIR")
    exps = []
    for d in run_dirs:
        if not (d / "config.yaml").is_file() or not (d / "points.jsonl").is_file():
            raise SetupError(f"merge: {str(d)!r} is not a run folder (no config.yaml and "
                             "points.jsonl there)")
        exps.append(load_run_config(d))
    first = to_yaml(exps[0])
    for d, exp in zip(run_dirs, exps, strict=True):
        if to_yaml(exp) != first:
            raise SetupError(f"merge: {str(d)!r} ran another experiment than "
                             f"{str(run_dirs[0])!r} (config.yaml differs)")
    _check_shards(run_dirs)
    exp = exps[0]
    run_dir = new_run_dir(out_root, exp.name)
    lock = RunLock(run_dir)
    try:
        (run_dir / "config.yaml").write_text(to_yaml(exp))
        (run_dir / "merged_from.json").write_text(json.dumps([str(d) for d in run_dirs]))
        for d in run_dirs:
            for sub in ("gallery", "features"):
                if (d / sub).is_dir():
                    shutil.copytree(d / sub, run_dir / sub, dirs_exist_ok=True)
        _join_points(run_dirs, run_dir / "points.jsonl")
        rows = write_results(exp, run_dir, time.perf_counter() - start, 1,
                             _used(run_dirs[0]))
    finally:
        lock.release()
    return RunResult(run_dir, rows, time.perf_counter() - start)


def _join_points(run_dirs: list[Path], path: Path) -> None:
    """Every shard's lines into ``path`` (streamed); a key seen twice must agree."""
    digests: dict[tuple[Any, ...], int] = {}
    store = PointStore(path)
    try:
        for d in run_dirs:
            batch = []
            for _, line in iter_lines(d / "points.jsonl"):
                key, digest = line_key(line), hash(json.dumps(line, sort_keys=True))
                if digests.setdefault(key, digest) != digest:
                    raise SetupError(f"merge: {str(d)!r} has another result for {key} than "
                                     "an earlier RUN_DIR (not shards of one run)")
                batch.append(line)
                if len(batch) == 1000:  # one fsync per 1000 lines
                    store.append(batch)
                    batch = []
            store.append(batch)
    finally:
        store.close()


def _check_shards(run_dirs: list[Path]) -> None:
    """Shards of one N, each once; all N present (a missing shard is an error)."""
    shards = []
    for d in run_dirs:
        path = d / "shard.json"
        shards.append(tuple(json.loads(path.read_text())) if path.is_file() else None)
    if all(s is None for s in shards):
        return
    ns = {s[1] for s in shards if s is not None}
    if None in shards or len(ns) != 1:
        raise SetupError(f"merge: mixed shard counts {sorted(map(str, shards))}; give the "
                         "folders of one --shard i/N set")
    n = ns.pop()
    have = sorted(s[0] for s in shards if s is not None)
    if have != list(range(n)):
        missing = sorted(set(range(n)) - set(have))
        raise SetupError(f"merge: shards {have} of {n} given; missing {missing} "
                         "(or one given twice)")


def _used(run_dir: Path) -> dict[str, Any] | None:
    """The checkpoints and devices a shard recorded (its summary.json provenance)."""
    path = run_dir / "summary.json"
    if not path.is_file():
        return None
    prov = json.loads(path.read_text()).get("provenance", {})
    return {"checkpoints": prov.get("checkpoints", {}), "devices": prov.get("devices", {})}
