"""``semcomm list codecs|datasets|experiments|checkpoints``: what a run can use.

* ``codecs``       registered codec names (the YAML ``codecs[].name``) with their summary
* ``datasets``     dataset names (``dataset.name``) with their summary
* ``experiments``  the YAML files of ``./experiments`` (else the repository's), with the
                   experiment name and the first line of its description
* ``checkpoints``  weight files shipped in ``semcomm/assets`` with size and sha256
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

KINDS = ("codecs", "datasets", "experiments", "checkpoints")
ASSETS = Path(__file__).resolve().parent / "assets"
REPO_EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def _first_line(doc: str | None) -> str:
    lines = (doc or "").strip().splitlines()
    return lines[0].strip() if lines else ""


def codecs() -> list[tuple[str, str]]:
    from semcomm.codecs.registry import available_codecs, codec_factory

    return [(name, _first_line(codec_factory(name).__doc__)) for name in available_codecs()]


def datasets() -> list[tuple[str, str]]:
    from semcomm.data import DATASETS

    return [(name, _first_line(cls.__doc__)) for name, cls in sorted(DATASETS.items())]


def experiments(folder: Path | None = None) -> list[tuple[str, str]]:
    """(file, 'name: first line of description') of every YAML in ``folder``."""
    from semcomm.runner.config import ConfigError, load_experiment

    if folder is None:
        folder = Path("experiments") if Path("experiments").is_dir() else REPO_EXPERIMENTS
    out = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            exp = load_experiment(path)
            text = f"{exp.name}: {_first_line(exp.description)}"
        except ConfigError as err:
            text = f"INVALID: {err}"
        out.append((str(path), text))
    return out


def checkpoints(folder: Path = ASSETS) -> list[tuple[str, str]]:
    out = []
    for path in sorted(folder.glob("*.pt")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        out.append((str(path), f"{path.stat().st_size / 1e6:5.1f} MB  sha256 {digest}"))
    return out


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = "List what a run can use: " + ", ".join(KINDS) + "."
    parser.add_argument("kind", choices=KINDS)


def run(args: argparse.Namespace) -> int:
    listing = {"codecs": codecs, "datasets": datasets, "experiments": experiments,
               "checkpoints": checkpoints}[args.kind]()
    width = max((len(name) for name, _ in listing), default=0)
    for name, text in listing:
        print(f"{name:<{width}}  {text}".rstrip())
    return 0
