"""Serial vs process executor on the same experiment (target: process(2) >= 1.6x serial
on a 2-core CPU).

Runs ``semcomm run CONFIG`` as a user would (a fresh process each, so imports, worker
start-up and JIT compilation count), once serially and once per ``--workers`` value
(``--repeats`` rounds, the arms interleaved, medians reported), checks that every run's
summary.csv is identical to the serial one, and prints the wall times and speed-ups.
``--images`` and ``--snrs`` shrink the experiment (a copy of the YAML in a temporary
folder) when the full one takes too long on a shared machine.

On a shared machine the wall-clock ratio depends on the other load (printed: the load
averages before and after), so it also prints the load-independent side: the CPU seconds
of each run (the run's process, its link threads and its worker processes) and their
ratio to the serial run's (the executor's overhead: start-up, duplicated work, pickling),
and each run's time budget by stage from ``summary.json`` (``timings``: setup, encode,
sweep, summary, plots; wall, the parent's CPU and the workers' CPU).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/executor_scaling.py \\
        [--config experiments/quickstart.yaml] [--workers 2] [--images 8] [--snrs 4] \\
        [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's semcomm, as the subprocesses use
TARGET = 1.6


def _config(path: Path, images: int | None, snrs: int | None, tmp: Path) -> Path:
    """``path`` itself, or a copy with fewer images / SNR points (``extends`` resolved)."""
    if images is None and snrs is None:
        return path
    from semcomm.runner.config import load_experiment, to_yaml

    data = yaml.safe_load(to_yaml(load_experiment(path)))
    if images is not None:
        data["dataset"]["count"] = images
        data["stopping"]["max_images"] = None
    if snrs is not None:
        key = next(k for k in ("esno_db", "ebno_db") if data["snr"].get(k) is not None)
        from semcomm.runner.config import Experiment

        values = Experiment.model_validate(data).snr.values()  # type: ignore[union-attr]
        step = max(1, len(values) // snrs)
        data["snr"] = {key: values[::step][:snrs]}
    out = tmp / path.name
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def _cpu_children() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def _run(config: Path, out: Path, workers: int) -> tuple[float, float, Path]:
    """(wall s, CPU s of the run and its workers, run folder) of one ``semcomm run``."""
    cmd = [sys.executable, "-m", "semcomm.cli", "run", str(config), "--out", str(out),
           "--quiet", "--workers", str(workers)]
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


def _load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "experiments" / "quickstart.yaml")
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--images", type=int, default=None, help="dataset.count override")
    parser.add_argument("--snrs", type=int, default=None, help="keep this many SNR points")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of all arms")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="semcomm-scaling-"))
    config = _config(args.config, args.images, args.snrs, tmp)
    print(f"{config.name} on {os.cpu_count()} CPU(s), {_load()} (1, 5, 15 min)")
    arms = [1, *args.workers]
    walls: dict[int, list[float]] = {n: [] for n in arms}
    cpus: dict[int, list[float]] = {n: [] for n in arms}
    reference: str | None = None
    ok = True
    for rep in range(args.repeats):
        for n in arms:  # interleaved: every round runs every arm once
            wall, cpu, run_dir = _run(config, tmp / f"r{rep}_w{n}", n)
            walls[n].append(wall)
            cpus[n].append(cpu)
            summary = (run_dir / "summary.csv").read_text()
            reference = summary if reference is None else reference
            same = summary == reference
            ok &= same
            print(f"  round {rep} {'serial' if n == 1 else f'process({n})'}: wall {wall:.1f} s, "
                  f"CPU {cpu:.1f} s, summary.csv {'identical' if same else 'DIFFERS'}; "
                  f"stages wall/cpu/workers-cpu s: {_budget(run_dir)}")
    serial_s, serial_cpu = statistics.median(walls[1]), statistics.median(cpus[1])
    print(f"serial: {serial_s:.1f} s wall, {serial_cpu:.1f} s CPU (medians)")
    for n in args.workers:
        wall, cpu = statistics.median(walls[n]), statistics.median(cpus[n])
        speedup = serial_s / wall
        ok &= n < 2 or speedup >= TARGET
        print(f"process({n}): {wall:.1f} s, x{speedup:.2f} vs serial (target x{TARGET} for "
              f"n >= 2); CPU {cpu:.1f} s = x{cpu / serial_cpu:.2f} the serial run's")
    print(f"after: {_load()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
