"""``semcomm run``, ``semcomm plot`` and ``semcomm report``.

``semcomm run CONFIG [--out results] [--resume RUN_DIR] [--smoke] [--workers N]``
validates the experiment before any compute (one-line error, exit status 2), prints the
run folder, runs the sweep with a progress bar, then prints the summary table. Ctrl-C
ends it cleanly (exit status 130): the measured points stay in the run folder and the
exact resume command is printed.

``--shard i/N`` measures the i-th of N contiguous blocks of images (Slurm array jobs);
``semcomm merge RUN_DIR...`` joins the shards' folders into one run folder.

``semcomm plot RUN_DIR`` redraws the figures of a finished run from its summary.json
with the run's ``plots:`` section, overridden by a YAML file and by flags; it then
rewrites report.html. ``semcomm report RUN_DIR`` writes report.html.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

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
                        help="worker processes (Ray actors under executor kind ray; "
                        "default: the experiment's executor)")
    parser.add_argument("--shard", type=_shard, default=None, metavar="i/N",
                        help="measure only the i-th of N blocks of images (0 <= i < N); "
                             "join the N run folders with `semcomm merge`")
    parser.add_argument("--device", default=None, metavar="DEV",
                        help="cpu | cuda | cuda:N | auto: torch device of the segmenter and "
                             "learned codecs (default: the experiment's device, cpu)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or table")


def _shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give i/N, e.g. 0/4") from None
    if not (n >= 1 and 0 <= k < n):
        raise argparse.ArgumentTypeError(f"{text!r}: need N >= 1 and 0 <= i < N")
    return k, n


def _experiment(args: argparse.Namespace) -> Experiment:
    exp = _given_experiment(args)
    if args.device is not None:  # placement only: the same config otherwise
        data = exp.model_dump(mode="json")
        data["device"] = args.device
        try:
            exp = Experiment.model_validate(data)
        except ValueError as err:
            raise ConfigError(f"--device {args.device!r}: not one of cpu, cuda, cuda:N, "
                              "auto") from err
    return exp


def _given_experiment(args: argparse.Namespace) -> Experiment:
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


def resume_command(run_dir: Path, workers: int | None) -> str:
    """The command line that continues ``run_dir``."""
    extra = f" --workers {workers}" if workers is not None else ""
    return f"semcomm run --resume {shlex.quote(str(run_dir))}{extra}"


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
    from semcomm.runner.store import RunLocked
    from semcomm.runner.summary import table

    started: list[Path] = []

    def announce(run_dir: Path) -> None:
        started.append(run_dir)
        print(f"run folder: {run_dir}", flush=True)

    set_threads()
    try:
        result = run_experiment(exp, args.out, args.resume, args.workers,
                                progress=not args.quiet, on_start=announce,
                                shard=args.shard)
    except (SetupError, RunLocked) as err:
        print(f"semcomm run: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if not started:
            print("\nsemcomm run: interrupted before the run folder was made; nothing to "
                  "resume", file=sys.stderr)
            return 130
        kept = getattr(sys.exc_info()[1], "kept", None)
        what = f"{kept} measurements" if kept is not None else "the measured points"
        print(f"\nsemcomm run: interrupted; {what} kept in {started[0]}\n"
              f"resume with: {resume_command(started[0], args.workers)}", file=sys.stderr)
        return 130
    if not args.quiet:
        print(table(result.rows))
    print(f"report:  {result.run_dir / 'report.html'}")
    print(f"results: {result.run_dir}  ({result.wall_s:.1f} s)")
    if result.failed:
        print(f"semcomm run: {result.failed} point(s) failed (see "
              f"{result.run_dir / 'failures.jsonl'}); rerun them with: "
              f"{resume_command(result.run_dir, args.workers)}", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- plot


def configure_plot(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Redraw the figures of a finished run from its summary.json (no "
                          "recompute) with its plots: section, overridden by --plots and flags.")
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument("--plots", type=Path, metavar="YAML",
                        help="a YAML file with a plots: section (or just its keys)")
    parser.add_argument("--title", help="figure title")
    parser.add_argument("--label", action="append", default=[], metavar="KEY=TEXT",
                        help="axis label, KEY one of snr, bpp, miou, psnr, bler (repeatable)")
    parser.add_argument("--figsize", type=float, nargs=2, metavar=("W", "H"),
                        help="inches per panel")
    parser.add_argument("--style", help="matplotlib style name or .mplstyle file")
    parser.add_argument("--dpi", type=int)
    parser.add_argument("--format", action="append", dest="formats",
                        choices=["png", "pdf", "svg"], help="output format (repeatable)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="write the figures here instead of RUN_DIR (report untouched)")


def _plots_overrides(args: argparse.Namespace) -> dict[str, Any]:
    over: dict[str, Any] = {}
    if args.plots is not None:
        from semcomm.runner.config import _read_yaml

        data = _read_yaml(args.plots)
        over = dict(data.get("plots", data))
    labels = dict(over.get("labels") or {})
    for item in args.label:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"--label {item!r}: give KEY=TEXT")
        labels[key] = text
    if labels:
        over["labels"] = labels
    for key in ("title", "figsize", "style", "dpi", "formats"):
        if getattr(args, key) is not None:
            over[key] = getattr(args, key)
    return over


def run_plot(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from semcomm.runner.config import PlotsConfig
    from semcomm.runner.plots import load_summary, replot

    try:
        summary = load_summary(args.run_dir)
        base = dict(summary["config"].get("plots") or {})
        merged = {**base, **_plots_overrides(args)}
        cfg = PlotsConfig.model_validate(merged)
    except ValidationError as err:
        first = err.errors()[0]
        where = "plots." + ".".join(str(x) for x in first["loc"])
        msg = first["msg"].removeprefix("Value error, ")
        if msg.startswith("@"):  # the validator named the exact key path
            where, msg = msg[1:].split(": ", 1)
        elif "input" in first and first["type"] != "missing":
            msg += f" (got {first['input']!r})"
        print(f"semcomm plot: {where}: {msg}", file=sys.stderr)
        return 2
    except (ConfigError, ValueError) as err:
        print(f"semcomm plot: {err}", file=sys.stderr)
        return 2
    paths = replot(args.run_dir, cfg, args.out)
    for p in paths:
        print(p)
    if args.out is None:
        from semcomm.runner.report import write_report

        print(write_report(args.run_dir, title=cfg.title))
    return 0


# --------------------------------------------------------------------------- report


def configure_report(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Write RUN_DIR/report.html: curves, tables, gallery and provenance "
                          "on one self-contained page (figures are drawn first if missing).")
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument("--out", type=Path, metavar="FILE", help="default RUN_DIR/report.html")


def run_report(args: argparse.Namespace) -> int:
    from semcomm.runner.plots import CURVE_STEMS, load_summary, replot
    from semcomm.runner.report import write_report

    try:
        load_summary(args.run_dir)
    except ValueError as err:
        print(f"semcomm report: {err}", file=sys.stderr)
        return 2
    if not any((args.run_dir / f"{stem}.png").is_file() for stem in CURVE_STEMS):
        replot(args.run_dir)
    print(write_report(args.run_dir, args.out))
    return 0


# -------------------------------------------------------------------------- merge


def configure_merge(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Join the run folders of one experiment's shards (semcomm run "
                          "--shard i/N) into a new run folder with one summary.")
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    parser.add_argument("--out", type=Path, default=Path("results"),
                        help="results root (default: results/)")


def run_merge(args: argparse.Namespace) -> int:
    from semcomm.runner.merge import merge_runs
    from semcomm.runner.run import SetupError
    from semcomm.runner.store import RunLocked

    try:
        result = merge_runs(args.run_dirs, args.out)
    except (ConfigError, SetupError, RunLocked, OSError) as err:
        print(f"semcomm merge: {err}", file=sys.stderr)
        return 2
    print(f"results: {result.run_dir}  ({len(result.rows)} summary rows)")
    return 0
