"""Start a ``patch: 2`` SQ-GAN from a trained ``patch: 1`` model (warm start).

A ``patch: 1`` branch with widths ``[c0, c1, ..., cL]`` runs its first level at full
resolution; a ``patch: 2`` branch with widths ``[c1, ..., cL]`` has the same levels
from half resolution down, without the full-resolution one. Its weights can therefore
start from the trained model's:

* encoder ``levels.{i+1}`` / ``downs.{i+1}`` -> ``levels.{i}`` / ``downs.{i}``; the
  stem ``conv_in`` (now stride 2) and everything at the latent grid (middle blocks,
  SAMM, quantizer with its EMA statistics, de-masker, positional embedding) keep
  their names;
* decoder ``levels.{i}`` / ``ups.{i}`` keep their names; the full-resolution level and
  the last upsample are dropped;
* decoder ``conv_out`` [out, c, 3, 3] -> [4 out, c, 3, 3], each output channel repeated
  for the four sub-pixels of the pixel shuffle: at the start the decoder's output is
  its half-resolution prediction upsampled by nearest neighbour.

Tensors whose shape differs keep the new model's random initialisation; the report
lists them. The result is a ``model.pt`` (index counts copied) that ``semcomm train
sqgan --init`` fine-tunes; ``docs/sqgan.md`` has the recipe.

    git show 14b54f1~1:semcomm/assets/sqgan.pt > first.pt    # the patch-1 model
    python -m semcomm.codecs.sqgan.convert --from first.pt \\
        --config configs/sqgan_compact.yaml --out runs/sqgan_p2/init.pt
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from semcomm.codecs.sqgan.config import SQGANConfig, load_config
from semcomm.codecs.sqgan.model import SQGAN
from semcomm.codecs.sqgan.modelfile import export_model, load_model

_ENC = re.compile(r"^(image|semantic)\.encoder\.(levels|downs)\.(\d+)\.(.*)$")
_DEC_OUT = re.compile(r"^(image|semantic)\.decoder\.conv_out\.(weight|bias)$")


@dataclass(frozen=True)
class ConversionReport:
    """Which tensors of the new model were copied, expanded or left initialised."""

    copied: tuple[str, ...]
    expanded: tuple[str, ...]
    initialised: tuple[str, ...]
    dropped: tuple[str, ...]


def source_key(key: str) -> str:
    """Name in the ``patch: 1`` model of the new model's tensor ``key``."""
    m = _ENC.match(key)
    if m:
        return f"{m[1]}.encoder.{m[2]}.{int(m[3]) + 1}.{m[4]}"
    return key


def patch2_from_patch1(old: SQGAN, new: SQGAN) -> ConversionReport:
    """Copy ``old``'s weights (``patch: 1``) into ``new`` (``patch: 2``) in place."""
    for branch in ("image", "semantic"):
        if getattr(old.config, branch).patch != 1 or getattr(new.config, branch).patch != 2:
            raise ValueError(f"{branch} branch: needs patch 1 -> 2, got "
                             f"{getattr(old.config, branch).patch} -> "
                             f"{getattr(new.config, branch).patch}")
    src, dst = old.state_dict(), new.state_dict()
    copied, expanded, initialised, used = [], [], [], set()
    with torch.no_grad():
        for key, value in dst.items():
            skey = source_key(key)
            s = src.get(skey)
            if s is not None and s.shape == value.shape:
                value.copy_(s)
                copied.append(key)
                used.add(skey)
            elif (s is not None and _DEC_OUT.match(key) and s.dim() == value.dim()
                  and value.shape[0] == 4 * s.shape[0] and s.shape[1:] == value.shape[1:]):
                value.copy_(s.repeat_interleave(4, dim=0))
                expanded.append(key)
                used.add(skey)
            else:
                initialised.append(key)
    # state_dict() tensors share storage with the model: the copies above are in place.
    dropped = tuple(k for k in src if k not in used)
    return ConversionReport(tuple(copied), tuple(expanded), tuple(initialised), dropped)


def convert(source: str | Path, config: SQGANConfig, out: str | Path) -> ConversionReport:
    """Write ``out``: a model file of ``config`` warm-started from ``source``."""
    bundle = load_model(source)
    new = SQGAN(config.model)
    report = patch2_from_patch1(bundle.model, new)
    meta = {"converted_from": str(source), "source_meta": bundle.meta,
            "initialised": list(report.initialised)}
    export_model(new, out, bundle.index_counts, meta)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m semcomm.codecs.sqgan.convert",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--from", dest="source", required=True, help="patch-1 model.pt")
    ap.add_argument("--config", required=True, help="YAML of the patch-2 model")
    ap.add_argument("--out", required=True, help="model.pt to write")
    args = ap.parse_args(argv)
    report = convert(args.source, load_config(args.config), args.out)
    print(f"{args.out}: {len(report.copied)} tensors copied, {len(report.expanded)} expanded "
          f"(pixel-shuffle output), {len(report.initialised)} initialised "
          f"{list(report.initialised)}, {len(report.dropped)} dropped (full-resolution "
          "layers)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
