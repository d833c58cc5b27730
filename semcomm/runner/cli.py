"""``semcomm run CONFIG [--out results] [--resume RUN_DIR] [--smoke] [--workers N]``.

Validates the experiment before any compute (one-line error, exit status 2), runs the
sweep with a progress bar, then prints the run folder and the summary table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semcomm.runner.config import ConfigError, Experiment, load_experiment, smoke


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = "Run a YAML experiment: every codec x rate x link x SNR point."
    parser.add_argument("config", nargs="?", type=Path,
                        help="experiment YAML (optional with --resume)")
    parser.add_argument("--out", type=Path, default=Path("results"),
                        help="results root (default: results/)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR",
                        help="continue a killed run in RUN_DIR; nothing written is recomputed")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny budget: 2 images, first rate, lowest and highest SNR")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: the experiment's executor)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or table")


def _experiment(args: argparse.Namespace) -> Experiment:
    from semcomm.runner.run import load_run_config

    if args.resume is not None:
        exp = load_run_config(args.resume)
        if args.config is not None:
            given = load_experiment(args.config)
            if args.smoke:
                given = smoke(given)
            if given != exp:
                raise ConfigError(f"{args.config}: differs from the config.yaml of "
                                  f"{args.resume}; resume without CONFIG or start a new run")
        return exp
    if args.config is None:
        raise ConfigError("give an experiment YAML (or --resume RUN_DIR)")
    exp = load_experiment(args.config)
    return smoke(exp) if args.smoke else exp


def run(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        print(f"semcomm run: --workers {args.workers} must be >= 1", file=sys.stderr)
        return 2
    try:
        exp = _experiment(args)
    except (ConfigError, ValueError) as err:
        print(f"semcomm run: {err}", file=sys.stderr)
        return 2
    from semcomm.runner.run import SetupError, run_experiment, set_threads
    from semcomm.runner.summary import table

    set_threads()
    try:
        result = run_experiment(exp, args.out, args.resume, args.workers,
                                progress=not args.quiet)
    except SetupError as err:
        print(f"semcomm run: {err}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(table(result.rows))
    print(f"results: {result.run_dir}  ({result.wall_s:.1f} s)")
    return 0
