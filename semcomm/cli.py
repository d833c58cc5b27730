"""The ``semcomm`` console script.

Subcommands are looked up here and imported lazily, so ``semcomm --help`` is fast and
each subcommand only pays for the packages it needs. A subcommand module exposes::

    configure(parser: argparse.ArgumentParser) -> None   # add its arguments
    run(args: argparse.Namespace) -> int                 # exit status
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: name -> (module, one-line help). ``train`` takes the model name as its next word.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("semcomm.runner.cli", "run a YAML experiment (sweep SNR x rate x codec x link)"),
    "link-sweep": ("channels.cli", "BER/BLER vs SNR of the link alone, with Wilson intervals"),
    "data": ("semcomm.data.cli", "render StreetScenes training shards once, for reuse"),
}

#: model name -> module with configure/run for ``semcomm train <model>``.
TRAINERS: dict[str, str] = {
    "segmenter": "semcomm.segmentation.train",
    "sqgan": "semcomm.codecs.sqgan.train",
    "amvq": "semcomm.codecs.amvq.train",
    "isc": "semcomm.codecs.isc.train",
}


def _usage() -> str:
    lines = ["usage: semcomm <command> [options]", "", "commands:"]
    for name, (_, text) in SUBCOMMANDS.items():
        lines.append(f"  {name:<12} {text}")
    lines.append(f"  {'train':<12} train a model: {', '.join(sorted(TRAINERS))}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "train":
        if not rest or rest[0] not in TRAINERS:
            got = rest[0] if rest else "(nothing)"
            print(f"semcomm train: unknown model {got!r}; choose one of {sorted(TRAINERS)}",
                  file=sys.stderr)
            return 2
        module_name, prog, rest = TRAINERS[rest[0]], f"semcomm train {rest[0]}", rest[1:]
    elif command in SUBCOMMANDS:
        module_name, prog = SUBCOMMANDS[command][0], f"semcomm {command}"
    else:
        print(f"semcomm: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=prog)
    module.configure(parser)
    args = parser.parse_args(rest)
    return int(module.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
