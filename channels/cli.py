"""``semcomm link-sweep``: BER/BLER vs SNR of the link alone.

Example::

    semcomm link-sweep --modulation 16qam --code-rate 0.5 --channel awgn \\
        --snr 5.5:0.25:7 --target-block-errors 100 --max-blocks 10000 --out sweep.csv
    semcomm link-sweep --mcs-table qam64 --mcs-index 12 --harq 2 --combining ir \\
        --ebno 0:0.5:3

``--snr`` (Es/N0 in dB) or ``--ebno`` (Eb/N0 per information bit in dB) takes
``start:step:stop`` (inclusive), a comma list or one value (a negative start needs
``--snr=-2:1:4``). ``--out`` writes ``.csv`` (one row per point) or ``.json`` (a
self-describing summary: schema version, resolved config, seed, package versions, git
commit, points).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
from dataclasses import asdict, fields
from importlib import metadata
from pathlib import Path

from channels.config import (
    CHANNELS,
    CN_UPDATES,
    CODINGS,
    DECODERS,
    DEMAPPINGS,
    HARQ_COMBINING,
    MODULATIONS,
    HarqConfig,
    LinkConfig,
)
from channels.mcs import MCS_TABLES
from channels.snr import esno_db_from_ebno_db
from channels.sweep import SweepPoint, ber_bler_sweep, check_sweep_args

SCHEMA_VERSION = 1


def parse_snr_list(text: str) -> list[float]:
    """'a:step:b' (inclusive), 'a,b,c' or 'a' -> list of floats (argparse type)."""
    try:
        if ":" in text:
            start, step, stop = (float(v) for v in text.split(":"))
            if not step > 0 or stop < start:
                raise ValueError
            count = int(math.floor((stop - start) / step + 1e-9)) + 1
            values = [round(start + i * step, 10) for i in range(count)]
        else:
            values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad SNR list {text!r}; use start:step:stop with step > 0, a,b,c or one value"
        ) from None
    if not values or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"bad SNR list {text!r}: values must be finite")
    return values


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the link-sweep arguments."""
    parser.description = __doc__.split("\n\n")[0] if __doc__ else None
    parser.add_argument("--modulation", choices=list(MODULATIONS), default=None,
                        help="default 16qam, or the MCS row's")
    parser.add_argument("--coding", choices=list(CODINGS), default="ldpc")
    parser.add_argument("--code-rate", type=float, default=None,
                        help="LDPC rate k/n (default 0.5 when neither --k nor --n)")
    parser.add_argument("--k", type=int, default=None, help="bits per code block incl. CRC")
    parser.add_argument("--n", type=int, default=None, help="coded bits per block")
    parser.add_argument("--iterations", type=int, default=20, help="max BP iterations")
    parser.add_argument("--decoder", choices=list(DECODERS), default="fast")
    parser.add_argument("--cn-update", choices=sorted(set(CN_UPDATES["sionna"])),
                        default="offset-minsum")
    parser.add_argument("--cn-schedule", choices=["layered", "flooding"], default="layered")
    parser.add_argument("--demapping", choices=list(DEMAPPINGS), default="app")
    parser.add_argument("--channel", choices=list(CHANNELS), default="awgn")
    parser.add_argument("--block-symbols", type=int, default=None,
                        help="rayleigh-block coherence length in symbols")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mcs-table", choices=list(MCS_TABLES), default=None,
                        help="TS 38.214 MCS table (with --mcs-index)")
    parser.add_argument("--mcs-index", type=int, default=None, help="row of --mcs-table")
    parser.add_argument("--harq", type=int, default=None, metavar="N",
                        help="HARQ with at most N transmissions per block")
    parser.add_argument("--combining", choices=list(HARQ_COMBINING), default="chase",
                        help="HARQ combining (with --harq)")
    parser.add_argument("--no-scrambling", action="store_true",
                        help="send unscrambled code blocks (ablation only)")
    parser.add_argument("--n-rnti", type=int, default=1, help="scrambling RNTI")
    parser.add_argument("--n-id", type=int, default=1, help="scrambling ID")
    snr = parser.add_mutually_exclusive_group(required=True)
    snr.add_argument("--snr", type=parse_snr_list, default=None,
                     help="Es/N0 dB values: start:step:stop, a,b,c or one value")
    snr.add_argument("--ebno", type=parse_snr_list, default=None,
                     help="Eb/N0 dB values (per information bit), same forms as --snr")
    parser.add_argument("--target-block-errors", type=int, default=100)
    parser.add_argument("--max-blocks", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write .csv or .json")


def run(args: argparse.Namespace) -> int:
    """Run the sweep, print a table, optionally save; exit status."""
    try:
        harq = None if args.harq is None else HarqConfig(args.harq, args.combining)
        cfg = LinkConfig(
            modulation=args.modulation, coding=args.coding, code_rate=args.code_rate,
            k=args.k, n=args.n, bp_iterations=args.iterations, decoder=args.decoder,
            cn_update=args.cn_update, cn_schedule=args.cn_schedule, demapping=args.demapping,
            channel=args.channel, block_symbols=args.block_symbols, device=args.device,
            mcs_table=args.mcs_table, mcs_index=args.mcs_index, harq=harq,
            scrambling=not args.no_scrambling, n_rnti=args.n_rnti, n_id=args.n_id)
        if args.out is not None and args.out.suffix not in (".csv", ".json"):
            raise ValueError(f"--out {args.out} must end in .csv or .json")
        assert cfg.code_rate is not None
        snrs = [esno_db_from_ebno_db(v, cfg.bits_per_symbol, cfg.code_rate) for v in args.ebno] \
            if args.ebno is not None else list(args.snr)
        check_sweep_args(snrs, args.target_block_errors, args.max_blocks, args.seed)
        print(_describe(cfg))
        print(_header())
        points = ber_bler_sweep(cfg, snrs, target_block_errors=args.target_block_errors,
                                max_blocks=args.max_blocks, seed=args.seed,
                                progress=lambda p: print(_row(p), flush=True))
    except ValueError as err:
        print(f"semcomm link-sweep: {err}", file=sys.stderr)
        return 2
    if args.out is not None:
        _save(args.out, cfg, points, args)
        print(f"wrote {args.out}")
    return 0


def _describe(cfg: LinkConfig) -> str:
    mcs = "" if cfg.mcs_table is None else f" mcs={cfg.mcs_table}:{cfg.mcs_index}"
    harq = "" if cfg.harq is None else \
        f" harq={cfg.harq.max_transmissions}x{cfg.harq.combining}"
    scr = "" if cfg.scrambling else " unscrambled"
    return (f"{cfg.modulation} {cfg.coding} k={cfg.k} n={cfg.n} rate={cfg.code_rate:.4f}"
            f"{mcs} {cfg.channel} decoder={cfg.decoder}({cfg.cn_update}, {cfg.cn_schedule}, "
            f"{cfg.bp_iterations} it) demapping={cfg.demapping}{harq}{scr}")


def _header() -> str:
    return (f"{'EsN0 dB':>8} {'EbN0 dB':>8} {'blocks':>7} {'blk err':>7} {'BLER':>9} "
            f"{'BLER 95% CI':>21} {'BER':>9} {'BER 95% CI':>21} {'iter':>5} {'tx':>4} "
            f"{'s':>6}")


def _row(p: SweepPoint) -> str:
    return (f"{p.esno_db:8.2f} {p.ebno_db:8.2f} {p.num_blocks:7d} {p.block_errors:7d} "
            f"{p.bler:9.3e} [{p.bler_low:9.3e},{p.bler_high:9.3e}] {p.ber:9.3e} "
            f"[{p.ber_low:9.3e},{p.ber_high:9.3e}] {p.mean_iterations:5.1f} "
            f"{p.mean_transmissions:4.2f} {p.seconds:6.1f}")


def _save(path: Path, cfg: LinkConfig, points: list[SweepPoint], args: argparse.Namespace) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=[fl.name for fl in fields(SweepPoint)])
            writer.writeheader()
            for p in points:
                writer.writerow(asdict(p))
        return
    summary = {
        "schema_version": SCHEMA_VERSION,
        "kind": "link-sweep",
        "config": cfg.to_dict(),
        "seed": args.seed,
        "target_block_errors": args.target_block_errors,
        "max_blocks": args.max_blocks,
        "versions": _versions(),
        "git_commit": _git_commit(),
        "points": [asdict(p) for p in points],
    }
    path.write_text(json.dumps(summary, indent=2) + "\n")


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in ("semcomm", "sionna-no-rt", "torch", "numpy", "numba"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _git_commit() -> str | None:
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, cwd=Path(__file__).resolve().parent, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None
