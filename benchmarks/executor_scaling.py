"""Executors side by side on the same experiment (target: process(2) and ray(2) >= 1.6x
serial on a 2-core CPU), and the draws that ``stopping:`` saves against fixed draws.

Executors: runs ``semcomm run CONFIG`` as a user would (a fresh process each, so
imports, worker start-up, ``ray.init`` and JIT compilation count) for every arm of
``--executors`` (``serial``; ``process`` and ``ray`` once per ``--workers`` value: N
worker processes, or N Ray actors on a local Ray of N CPUs), ``--repeats`` rounds with
the arms interleaved (medians reported), checks that every run's summary.csv is
identical to the first serial one, and prints the wall times, the speed-ups against
serial and the load averages before and after.

On a shared machine the wall-clock ratio depends on the other load, so it also prints
the load-independent side: the CPU seconds of each run (the run's process, its link
threads and its worker processes; Ray's actors are not children of the run and are not
counted) and their ratio to the serial run's, and each run's time budget by stage from
``summary.json`` (``timings``: setup, encode, sweep, summary, plots; wall, the parent's
CPU and the workers' CPU).

``--stopping``: also runs the experiment with ``stopping: {ci_half_width: {miou:
--ci-miou}, max_realizations: M, min_images: --min-images}`` and compares it point by
point with the serial run, which draws every image x realisation of a point (M: that
number, or ``--max-realizations``, which then also caps a separate fixed run): total
draws of the link points, draws saved in %, the stop reasons, and the largest |delta
mean mIoU| between the two runs over the points (the stopping run's draws are the first
ones, in image order, of the fixed run's, with the same seeds). ``--images`` and
``--snrs`` shrink the experiment (a copy of the YAML in a temporary folder).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/executor_scaling.py \\
        [--config experiments/quickstart.yaml] [--executors serial,process,ray] \\
        [--workers 2] [--repeats 1] [--images 8] [--snrs 4] \\
        [--stopping [--ci-miou 0.03] [--max-realizations M] [--min-images 4]]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's semcomm, as the subprocesses use
TARGET = 1.6
EXECUTORS = ("serial", "process", "ray")


def _config(path: Path, images: int | None, snrs: int | None) -> dict[str, Any]:
    """The resolved experiment as a mapping, with fewer images / SNR points if asked."""
    from semcomm.runner.config import Experiment, load_experiment, to_yaml

    data: dict[str, Any] = yaml.safe_load(to_yaml(load_experiment(path)))
    if images is not None:
        data["dataset"]["count"] = images
        data["stopping"]["max_images"] = None
    if snrs is not None:
        key = next(k for k in ("esno_db", "ebno_db") if data["snr"].get(k) is not None)
        values = Experiment.model_validate(data).snr.values()  # type: ignore[union-attr]
        step = max(1, len(values) // snrs)
        data["snr"] = {key: values[::step][:snrs]}
    return data


def _write(data: dict[str, Any], tmp: Path, name: str, **changes: Any) -> Path:
    """A copy of the experiment with top-level keys replaced."""
    out = tmp / f"{name}.yaml"
    out.write_text(yaml.safe_dump({**data, **changes}, sort_keys=False))
    return out


def _cpu_children() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def _run(config: Path, out: Path, workers: int | None) -> tuple[float, float, Path]:
    """(wall s, CPU s of the run and its workers, run folder) of one ``semcomm run``."""
    cmd = [sys.executable, "-m", "semcomm.cli", "run", str(config), "--out", str(out),
           "--quiet", *(["--workers", str(workers)] if workers is not None else [])]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cpu0, start = _cpu_children(), time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, _cpu_children() - cpu0
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stderr[-4000:]}")
    return wall, cpu, Path(res.stdout.strip().splitlines()[-1].split()[1])


def _budget(run_dir: Path) -> str:
    """The run's stages from summary.json: wall / parent CPU / workers' CPU seconds."""
    timings = json.loads((run_dir / "summary.json").read_text()).get("timings", {})
    return "  ".join(f"{k} {v['wall_s']:.1f}/{v['cpu_s']:.1f}/{v['workers_cpu_s']:.1f}"
                     for k, v in timings.items())


def _arms(executors: list[str], workers: list[int], data: dict[str, Any], tmp: Path
          ) -> list[tuple[str, Path, int | None]]:
    """(label, config, --workers) per arm; serial first (the reference)."""
    serial = _write(data, tmp, "serial", executor={"kind": "serial", "workers": 1})
    arms: list[tuple[str, Path, int | None]] = [("serial", serial, None)]
    if "process" in executors:
        arms += [(f"process({n})", serial, n) for n in workers]
    if "ray" in executors:
        ray = _write(data, tmp, "ray", executor={"kind": "ray"})
        arms += [(f"ray({n})", ray, n) for n in workers]
    return arms


def scaling(args: argparse.Namespace, data: dict[str, Any], tmp: Path) -> tuple[bool, Path]:
    """Interleaved rounds of every arm; returns (all identical and on target, the first
    serial run folder)."""
    arms = _arms(args.executors, args.workers, data, tmp)
    walls: dict[str, list[float]] = {label: [] for label, _, _ in arms}
    cpus: dict[str, list[float]] = {label: [] for label, _, _ in arms}
    reference: Path | None = None
    ok = True
    load_before = os.getloadavg()
    for r in range(args.repeats):
        for label, config, workers in arms:
            wall, cpu, run_dir = _run(config, tmp / f"{label}-{r}", workers)
            walls[label].append(wall)
            cpus[label].append(cpu)
            reference = reference or run_dir
            same = (run_dir / "summary.csv").read_text() == \
                (reference / "summary.csv").read_text()
            ok &= same
            print(f"round {r}: {label}: wall {wall:.1f} s, CPU {cpu:.1f} s, summary.csv "
                  f"{'identical' if same else 'DIFFERS'}; stages wall/cpu/workers-cpu s: "
                  f"{_budget(run_dir)}", flush=True)
    assert reference is not None
    serial_s, serial_cpu = statistics.median(walls["serial"]), statistics.median(cpus["serial"])
    load = ", ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(load_before, os.getloadavg(),
                                                          strict=True))
    print(f"{args.config.name}: {os.cpu_count()} CPU(s), load average (1/5/15 min, before/"
          f"after) {load}; median of {args.repeats} round(s)")
    for label, _, workers in arms:
        wall, cpu = statistics.median(walls[label]), statistics.median(cpus[label])
        speedup = serial_s / wall
        on_target = workers is None or workers < 2 or speedup >= TARGET
        ok &= on_target
        print(f"  {label:12s} {wall:7.1f} s  x{speedup:.2f} vs serial, CPU {cpu:.1f} s = "
              f"x{cpu / serial_cpu:.2f} the serial run's"
              + ("" if workers is None else f"  (target x{TARGET} for n >= 2: "
                 f"{'met' if on_target else 'not met'})"))
    return ok, reference


def _link_rows(run_dir: Path) -> dict[tuple[str, ...], dict[str, str]]:
    with open(run_dir / "summary.csv", newline="") as fh:
        return {(r["codec"], r["rate"], r["link"], r["snr_db"]): r
                for r in csv.DictReader(fh) if r["kind"] == "link"}


def draws_saved(args: argparse.Namespace, data: dict[str, Any], tmp: Path,
                fixed_dir: Path | None) -> None:
    """The stopping run against the fixed-draws run, point by point."""
    draws = data["dataset"]["count"] * data["realizations"]
    if data["stopping"].get("max_images"):
        draws = min(draws, data["stopping"]["max_images"] * data["realizations"])
    cap = args.max_realizations or draws
    serial = {"kind": "serial", "workers": 1}
    if fixed_dir is None or args.max_realizations is not None:
        fixed_cfg = _write(data, tmp, "fixed", executor=serial,
                           stopping={**data["stopping"], "max_realizations": cap})
        fixed_s, _, fixed_dir = _run(fixed_cfg, tmp / "fixed", None)
        print(f"fixed draws ({cap} per point): {fixed_s:.1f} s")
    rule = {**data["stopping"], "ci_half_width": {"miou": args.ci_miou},
            "max_realizations": cap, "min_images": args.min_images}
    stop_cfg = _write(data, tmp, "stopping", executor=serial, stopping=rule)
    stop_s, _, stop_dir = _run(stop_cfg, tmp / "stopping", None)
    fixed, stop = _link_rows(fixed_dir), _link_rows(stop_dir)
    assert fixed.keys() == stop.keys(), "the two runs have different points"
    n_fixed = sum(int(r["n"]) for r in fixed.values())
    n_stop = sum(int(r["n"]) for r in stop.values())
    deltas = {k: abs(float(stop[k]["miou"]) - float(fixed[k]["miou"])) for k in fixed
              if stop[k]["miou"] not in ("", "nan") and fixed[k]["miou"] not in ("", "nan")}
    worst = max(deltas, key=deltas.__getitem__) if deltas else None
    reasons: dict[str, int] = {}
    for r in stop.values():
        reasons[r["stop_reason"]] = reasons.get(r["stop_reason"], 0) + 1
    print(f"stopping {rule['ci_half_width']} (min_images {args.min_images}, "
          f"max_realizations {cap}) vs fixed {cap} draws per point: {stop_s:.1f} s")
    print(f"  {len(fixed)} link points; draws: fixed {n_fixed}, stopping {n_stop}, saved "
          f"{n_fixed - n_stop} ({100 * (n_fixed - n_stop) / max(n_fixed, 1):.1f} %)")
    print(f"  stop reasons: {', '.join(f'{k} {v}' for k, v in sorted(reasons.items()))}")
    if worst is not None:
        print(f"  max |delta mean mIoU| over the points: {deltas[worst]:.4f} at "
              f"{' '.join(worst)} dB (n {stop[worst]['n']} vs {fixed[worst]['n']}); "
              f"median {statistics.median(deltas.values()):.4f}")
    for k in sorted(deltas, key=deltas.__getitem__, reverse=True)[:args.show]:
        print(f"    {' '.join(k):45s} n {stop[k]['n']:>3s}/{fixed[k]['n']:>3s}  miou "
              f"{float(stop[k]['miou']):.4f} vs {float(fixed[k]['miou']):.4f}  "
              f"({stop[k]['stop_reason']})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "experiments" / "quickstart.yaml")
    parser.add_argument("--executors", default="serial,process",
                        help="comma-separated, of serial, process, ray (serial always runs)")
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds of all arms")
    parser.add_argument("--images", type=int, default=None, help="dataset.count override")
    parser.add_argument("--snrs", type=int, default=None, help="keep this many SNR points")
    parser.add_argument("--stopping", action="store_true",
                        help="also report the draws saved by stopping: against fixed draws")
    parser.add_argument("--ci-miou", type=float, default=0.03,
                        help="stopping.ci_half_width.miou of the stopping run")
    parser.add_argument("--max-realizations", type=int, default=None,
                        help="M: draws per point of the fixed run and cap of the stopping "
                        "run (default: every image x realisation)")
    parser.add_argument("--min-images", type=int, default=4,
                        help="stopping.min_images of the stopping run")
    parser.add_argument("--show", type=int, default=5, help="worst points to list")
    args = parser.parse_args()
    args.executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    unknown = sorted(set(args.executors) - set(EXECUTORS))
    if unknown or args.repeats < 1 or min(args.workers) < 1:
        parser.error(f"--executors {unknown} not in {list(EXECUTORS)}, or --repeats/--workers"
                     " < 1")
    tmp = Path(tempfile.mkdtemp(prefix="semcomm-scaling-"))
    data = _config(args.config, args.images, args.snrs)
    ok, serial_dir = scaling(args, data, tmp)
    if args.stopping:
        draws_saved(args, data, tmp, serial_dir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
