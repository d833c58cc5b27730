"""The ``semcomm`` console script (also ``python -m semcomm``).

Subcommands are looked up here and imported lazily, so ``semcomm --help`` is fast and
each subcommand only pays for the packages it needs. A subcommand module exposes::

    configure(parser: argparse.ArgumentParser) -> None   # add its arguments
    run(args: argparse.Namespace) -> int                 # exit status

(``module:name`` in :data:`SUBCOMMANDS` means ``configure_<name>`` / ``run_<name>``.)
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: name -> (module, one-line help). ``train`` takes the model name as its next word.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("semcomm.runner.cli", "run a YAML experiment (sweep SNR x rate x codec x link)"),
    "plot": ("semcomm.runner.cli:plot", "re-plot a finished run (restyle with a plots: section)"),
    "report": ("semcomm.runner.cli:report", "write a run's self-contained report.html"),
    "merge": ("semcomm.runner.cli:merge", "join the run folders of --shard i/N runs into one"),
    "list": ("semcomm.listing", "list codecs, datasets, experiments or checkpoints"),
    "link-sweep": ("channels.cli", "BER/BLER vs SNR of the link alone, with Wilson intervals"),
    "data": ("semcomm.data.cli", "render StreetScenes training shards once, for reuse"),
}

#: model name -> module with configure/run for ``semcomm train <model>``.
TRAINERS: dict[str, str] = {
    "segmenter": "semcomm.segmentation.train",
    "sqgan": "semcomm.codecs.sqgan.train",
    "amvq": "semcomm.codecs.amvq.train",
    "isc": "semcomm.codecs.isc.train",
    "deepjscc": "semcomm.codecs.deepjscc.train",
}


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    from semcomm import __version__

    try:
        return dist_version("semcomm")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return __version__


def _usage() -> str:
    lines = ["usage: semcomm [--version] <command> [options]", "", "commands:"]
    for name, (_, text) in SUBCOMMANDS.items():
        lines.append(f"  {name:<12} {text}")
    lines.append(f"  {'train':<12} train a model: {', '.join(sorted(TRAINERS))}")
    lines += ["", "semcomm <command> --help describes a command's options."]
    return "\n".join(lines)


def _resolve(argv: list[str]) -> tuple[str, str, list[str]] | int:
    """(module[:name], prog, remaining args) of a command line, or an exit status."""
    command, rest = argv[0], argv[1:]
    if command == "train":
        if rest and rest[0] in ("-h", "--help"):
            print(f"usage: semcomm train MODEL [options]; MODEL one of {sorted(TRAINERS)}\n"
                  "semcomm train MODEL --help describes a model's options.")
            return 0
        if not rest or rest[0] not in TRAINERS:
            got = rest[0] if rest else "(nothing)"
            print(f"semcomm train: unknown model {got!r}; choose one of {sorted(TRAINERS)}",
                  file=sys.stderr)
            return 2
        return TRAINERS[rest[0]], f"semcomm train {rest[0]}", rest[1:]
    if command in SUBCOMMANDS:
        return SUBCOMMANDS[command][0], f"semcomm {command}", rest
    print(f"semcomm: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        print(f"semcomm {version()}")
        return 0
    resolved = _resolve(argv)
    if isinstance(resolved, int):
        return resolved
    target, prog, rest = resolved
    module_name, _, name = target.partition(":")
    module = importlib.import_module(module_name)
    suffix = f"_{name}" if name else ""
    parser = argparse.ArgumentParser(prog=prog)
    getattr(module, f"configure{suffix}")(parser)
    args = parser.parse_args(rest)
    return int(getattr(module, f"run{suffix}")(args))


if __name__ == "__main__":
    raise SystemExit(main())
