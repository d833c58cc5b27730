"""points.jsonl -> one summary row per (kind, codec, rate, link, SNR), with intervals.

Row statistics (see docs/experiments.md):

* ``miou``      pooled over the point's transmissions: per class, summed intersection
                over summed union; mean over classes with a non-zero union. Interval:
                percentile bootstrap resampling transmissions.
* ``pixel_acc`` summed correct / summed labelled pixels (bootstrap likewise).
* ``psnr``, ``ms_ssim``, ``lpips``: means over transmissions with bootstrap intervals
  (PSNR of an exact reconstruction is +inf and is left out of the mean).
* ``ber``       summed bit errors / summed bits.
* ``bler``      summed block errors / summed blocks, Wilson interval.
* ``outage``    share of transmissions with any CRC-failed block, Wilson interval.
* ``bpp``, ``channel_uses``, ``cu_per_pixel``: means of what was actually sent (first
  transmission of every code block).
* ``budget_bytes``, ``budget_unmet``, ``budget_exceeded`` (bandwidth ratios): the byte
  budget of the link (mean over images), how many payloads left a whole code block of it
  unused, and how many needed more channel uses than it (unreachable); the
  ``cu_per_pixel`` of such a row is what was achieved, error-free rows included.
* ``transmissions``: mean over payloads of the transmissions a payload needed (HARQ; its
  slowest block); ``effective_channel_uses``: mean channel uses with every
  retransmission counted (both 1 and ``channel_uses`` without HARQ).

Analog codecs (symbol payloads, ``"payload": "symbols"`` lines) send no bits and no
code blocks: their ``ber``, ``bler``, ``outage`` and ``bpp`` are empty, and their
``cu_per_pixel`` is symbols per pixel.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from semcomm import stats
from semcomm.metrics import frechet_distance, mean_iou, pixel_accuracy

#: Columns of summary.csv, in order.
COLUMNS = [
    "kind", "codec", "rate", "link", "snr_db", "esno_db", "n", "images", "stopped_early",
    "stop_reason",
    "miou", "miou_lo", "miou_hi", "pixel_acc", "pixel_acc_lo", "pixel_acc_hi",
    "map_miou", "psnr", "psnr_lo", "psnr_hi", "ms_ssim", "ms_ssim_lo", "ms_ssim_hi",
    "lpips", "lpips_lo", "lpips_hi", "fid",
    "ber", "bler", "bler_lo", "bler_hi", "outage", "outage_lo", "outage_hi", "undetected",
    "target_bpp", "bpp", "knob", "unreachable", "channel_uses", "cu_per_pixel",
    "transmissions", "effective_channel_uses", "budget_bytes", "budget_unmet",
    "budget_exceeded", "ok",
    "concealed", "failed",
]

#: Image metrics of panoramas (equirectangular datasets): extra columns, with intervals.
SPHERE_METRICS = ("vpsnr", "vssim", "ws_psnr")

_GROUP = ("kind", "codec", "rate", "link", "snr_db")


def _sort_key(key: tuple[Any, ...], order: dict[str, int]) -> tuple[Any, ...]:
    kind, codec, rate, link, snr = key
    kinds = {"original": 0, "error-free": 1, "link": 2}
    return (kinds.get(kind, 9), order.get(codec, 99), str(rate), str(link),
            -math.inf if snr is None else snr)


def _mean_ci(values: list[Any], n_boot: int, conf: float, seed: int) -> tuple[float, ...]:
    x = np.array([v for v in values if v is not None], dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    lo, hi = stats.bootstrap_mean_interval(x, n_boot, conf, seed)
    return float(x.mean()), lo, hi


def _semantic(rows: list[dict[str, Any]], n_boot: int, conf: float, seed: int) -> dict:
    out: dict[str, Any] = {}
    labelled = [r for r in rows if "inter" in r]
    if labelled:
        inter = np.array([r["inter"] for r in labelled], dtype=np.float64)
        union = np.array([r["union"] for r in labelled], dtype=np.float64)
        out["miou"] = mean_iou(inter, union)
        out["miou_lo"], out["miou_hi"] = stats.bootstrap_ratio_interval(
            inter, union, n_boot, conf, seed)
        correct = np.array([r["correct"] for r in labelled], dtype=np.float64)
        total = np.array([r["labelled"] for r in labelled], dtype=np.float64)
        out["pixel_acc"] = pixel_accuracy(correct, total)
        out["pixel_acc_lo"], out["pixel_acc_hi"] = stats.bootstrap_ratio_interval(
            correct[:, None], total[:, None], n_boot, conf, seed)
    mapped = [r for r in rows if "map_inter" in r]
    if mapped:
        out["map_miou"] = mean_iou(np.array([r["map_inter"] for r in mapped]),
                                   np.array([r["map_union"] for r in mapped]))
    return out


def _pixels(row: dict[str, Any]) -> float:
    """H * W of a line's image (analog lines record it; byte lines give it by bpp)."""
    return float(row["pixels"]) if row.get("pixels") else 8 * row["bytes"] / row["bpp"]


def _link(rows: list[dict[str, Any]], conf: float) -> dict[str, Any]:
    if rows[0]["kind"] != "link":
        return {}
    cu = float(np.mean([r["channel_uses"] for r in rows]))
    pixels = np.mean([_pixels(r) for r in rows])
    if rows[0].get("payload") == "symbols":  # analog: no bits, no blocks
        return {"esno_db": rows[0].get("esno_db"), "channel_uses": cu,
                "cu_per_pixel": cu / pixels}
    bits = sum(r["bits"] for r in rows)
    blocks = sum(r["blocks"] for r in rows)
    block_errors = sum(r["block_errors"] for r in rows)
    outages = sum(1 for r in rows if r["block_errors"] > 0)
    bler_lo, bler_hi = stats.wilson_interval(block_errors, blocks, conf)
    out_lo, out_hi = stats.wilson_interval(outages, len(rows), conf)
    return {
        "esno_db": rows[0].get("esno_db"), "ber": sum(r["bit_errors"] for r in rows) / bits,
        "bler": block_errors / blocks, "bler_lo": bler_lo, "bler_hi": bler_hi,
        "outage": outages / len(rows), "outage_lo": out_lo, "outage_hi": out_hi,
        "undetected": sum(r["undetected"] for r in rows), "channel_uses": cu,
        "cu_per_pixel": cu / pixels,
        # HARQ: transmissions a payload needed (its slowest block), and channel uses with
        # every retransmission counted (lines written before HARQ: 1 and channel_uses)
        "transmissions": float(np.mean([r.get("transmissions", 1) for r in rows])),
        "effective_channel_uses": float(np.mean(
            [r.get("effective_channel_uses", r["channel_uses"]) for r in rows])),
    }


def _budget(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Budget columns of a bandwidth-ratio point (nothing for bpp and knob points)."""
    spent = [r for r in rows if "budget_unmet" in r]
    if not spent:
        return {}
    out: dict[str, Any] = {"budget_unmet": sum(bool(r["budget_unmet"]) for r in spent),
                           "budget_exceeded": sum(bool(r.get("budget_exceeded"))
                                                  for r in spent)}
    budgets = [r["budget_bytes"] for r in spent if r.get("budget_bytes") is not None]
    out["budget_bytes"] = float(np.mean(budgets)) if budgets else None
    if rows[0]["kind"] == "error-free":  # no link lines: cu/px from the code blocks
        out["cu_per_pixel"] = float(np.mean([r["achieved_cu_per_pixel"] for r in spent]))
    return out


def _fid(rows: list[dict[str, Any]], run_dir: Path | None) -> float:
    if run_dir is None or rows[0]["kind"] == "original":
        return math.nan
    from semcomm.runner.sweep import feature_path

    feats, ref = [], []
    for r in rows:
        p, q = feature_path(run_dir, r), run_dir / "features" / f"original_{r['image']}.npy"
        if not (p.exists() and q.exists()):
            return math.nan
        feats.append(np.load(p))
        ref.append(np.load(q))
    if len(feats) < 2:
        return math.nan
    return frechet_distance(np.stack(ref), np.stack(feats))


def summarize(lines: Iterable[dict[str, Any]], codec_order: list[str], max_images: int,
              n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
              run_dir: Path | None = None, fid: bool = False,
              stopping: Any = None) -> list[dict[str, Any]]:
    """Aggregate measurement lines into summary rows (sorted, order-independent)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        groups[tuple(line[k] for k in _GROUP)].append(line)
    order = {c: j for j, c in enumerate(["original", *codec_order])}
    return [_row(key, groups[key], max_images, n_boot, confidence, seed, run_dir, fid,
                 stopping) for key in sorted(groups, key=lambda k: _sort_key(k, order))]


def summarize_file(path: Path, codec_order: list[str], max_images: int,
                   n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
                   run_dir: Path | None = None, fid: bool = False, stopping: Any = None,
                   workers: int = 1) -> tuple[list[dict[str, Any]], int]:
    """:func:`summarize` of a ``points.jsonl``, one point in memory at a time (flat memory:
    a first pass keeps each point's byte offsets, then each point is read back, summed up
    and dropped). The first line of a key wins, as in :class:`PointStore`. Returns the
    rows and the number of measurements. ``workers > 1``: the rows (independent, seeded
    bootstraps) are computed on forked workers (:func:`semcomm.runner.pool.fork_map`),
    the same numbers in the same order."""
    from semcomm.runner.pool import fork_map
    from semcomm.runner.store import KEY_FIELDS, iter_lines

    groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    seen: set[tuple[Any, ...]] = set()
    for offset, line in iter_lines(path):
        key = tuple(line[k] for k in KEY_FIELDS)
        if key not in seen:
            seen.add(key)
            groups[key[:len(_GROUP)]].append(offset)
    order = {c: j for j, c in enumerate(["original", *codec_order])}
    keys = sorted(groups, key=lambda k: _sort_key(k, order))
    args = (path, max_images, n_boot, confidence, seed, run_dir, fid, stopping)
    rows = list(fork_map(_file_row, [(key, groups[key]) for key in keys], args, workers))
    return rows, len(seen)


def _file_row(args: tuple[Any, ...], job: tuple[tuple[Any, ...], list[int]]
              ) -> dict[str, Any]:
    """The row of one point of a ``points.jsonl`` (``job``: its key and line offsets)."""
    from semcomm.runner.store import read_at

    path, *rest = args
    key, offsets = job
    return _row(key, read_at(path, offsets), *rest)


def stop_reason(lines: list[dict[str, Any]], stopping: Any, n_boot: int = 1000,
                confidence: float = 0.95, seed: int = 0) -> str | None:
    """The rule of ``stopping`` (a StoppingConfig) that stops a point after ``lines``
    (its measurements so far, whole images in image order), or None. Deterministic:
    the intervals are the summary's own (seeded bootstrap, Wilson)."""
    if not lines or len({r["image"] for r in lines}) < stopping.min_images:
        return None
    target = stopping.target_block_errors
    if target is not None and sum(int(r["block_errors"]) for r in lines) >= target:
        return "target_block_errors"
    if stopping.ci_half_width and len(lines) >= 2 and not _all_lost(
            lines, confidence, min(stopping.ci_half_width.values())):
        rows = sorted(lines, key=lambda r: (r["image"], r["realization"]))
        stats_row = _semantic(rows, n_boot, confidence, seed)
        for metric in ("psnr", "ms_ssim"):
            if metric in stopping.ci_half_width:
                _, stats_row[f"{metric}_lo"], stats_row[f"{metric}_hi"] = _mean_ci(
                    [r.get(metric) for r in rows], n_boot, confidence, seed)
        if "bler" in stopping.ci_half_width and rows[0].get("blocks") is not None:
            stats_row.update(_link(rows, confidence))
        halves = [_half_width(stats_row, m) for m in stopping.ci_half_width]
        if all(h <= width for h, width in zip(halves, stopping.ci_half_width.values(),
                                               strict=True)):
            return "ci_half_width"
    if stopping.max_realizations is not None and len(lines) >= stopping.max_realizations:
        return "max_realizations"
    return None


def _all_lost(lines: list[dict[str, Any]], confidence: float, width: float) -> bool:
    """True when every draw so far lost a block and the blocks do not show that a draw
    rarely gets through: the draws then all show the failure policy's image, and their
    interval says nothing about the draws that would get through (measured on the
    quickstart: four lost draws stopped points on block fading at mIoU 0.096 whose
    24-draw mean is 0.22). A draw gets through with probability at most (1 - p_lo)^b
    (p_lo: the Wilson lower bound of the block error rate, b: blocks per draw; blocks
    taken as independent), which moves a mean in [0, 1] by at most that much: below
    ``width`` (the smallest half width asked), the point may stop (a deep fade on
    AWGN, every block lost)."""
    if not all(r.get("blocks") and r.get("block_errors", 0) > 0 for r in lines):
        return False
    blocks = sum(int(r["blocks"]) for r in lines)
    p_lo, _ = stats.wilson_interval(sum(int(r["block_errors"]) for r in lines), blocks,
                                    confidence)
    return (1.0 - p_lo) ** (blocks / len(lines)) > width


def _half_width(stats_row: dict[str, Any], metric: str) -> float:
    """Half width of ``metric``'s interval in ``stats_row`` for the stopping rule; inf
    for a zero-width bootstrap interval (``bler`` aside, whose Wilson interval stays
    honest): resampling draws that are all alike (e.g. the first images of a deep fade
    all lost, each replaced by the same failure-policy image) gives zero width but says
    nothing about the spread, so such a point does not stop on the interval."""
    width = stats_row.get(f"{metric}_hi", math.nan) - stats_row.get(f"{metric}_lo", math.nan)
    return math.inf if metric != "bler" and width <= 0 else width / 2


def _row(key: tuple[Any, ...], lines: list[dict[str, Any]], max_images: int, n_boot: int,
         confidence: float, seed: int, run_dir: Path | None, fid: bool,
         stopping: Any = None) -> dict[str, Any]:
    """The summary row of one point (``lines``: its measurements, any order). A link
    point's ``stop_reason`` is the stopping rule that ended it (replayed on its lines:
    the same decision the sweep took after its last image), else ``all_images``; its
    draws are ``n``."""
    rows = sorted(lines, key=lambda r: (r["image"], r["realization"]))
    row: dict[str, Any] = dict(zip(_GROUP, key, strict=True))
    images = len({r["image"] for r in rows})
    row.update(n=len(rows), images=images,
               stopped_early=row["kind"] == "link" and images < max_images)
    if row["kind"] == "link":
        row["stop_reason"] = (stop_reason(rows, stopping, n_boot, confidence, seed)
                              if stopping is not None else None) or "all_images"
    row.update(_semantic(rows, n_boot, confidence, seed))
    for metric in ("psnr", "ms_ssim", "lpips", *SPHERE_METRICS):
        if any(metric in r for r in rows):
            row[metric], row[f"{metric}_lo"], row[f"{metric}_hi"] = _mean_ci(
                [r.get(metric) for r in rows], n_boot, confidence, seed)
    row.update(_link(rows, confidence))
    if row["kind"] != "original":
        row["target_bpp"] = rows[0].get("target_bpp")
        bpps = [r["bpp"] for r in rows if r.get("bpp") is not None]
        row["bpp"] = float(np.mean(bpps)) if bpps else None
        knobs = [r["knob"] for r in rows if r.get("knob") is not None]
        row["knob"] = float(np.mean(knobs)) if knobs else None
        row["unreachable"] = sum(bool(r.get("unreachable")) for r in rows)
        for status in ("ok", "concealed", "failed"):
            row[status] = sum(r.get("status") == status for r in rows)
        row.update(_budget(rows))
        extra = sorted({k for r in rows for k in r if k.startswith("x_")})
        for k in extra:  # codec-specific numeric fields: means
            vals = [r[k] for r in rows if isinstance(r.get(k), int | float)]
            row[k] = float(np.mean(vals)) if vals else None
    if fid:
        row["fid"] = _fid(rows, run_dir)
    return row


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """summary.csv: one row per point, columns :data:`COLUMNS` (empty = not applicable),
    then the sphere metrics and codec-specific ``x_*`` fields when any row has them."""
    extra = [f"{m}{s}" for m in SPHERE_METRICS for s in ("", "_lo", "_hi")
             if any(m in row for row in rows)]
    extra += sorted({k for row in rows for k in row if k.startswith("x_")})
    write_rows(rows, path, COLUMNS + extra)


def write_rows(rows: list[dict[str, Any]], path: Path, columns: list[str]) -> None:
    """A CSV of ``columns`` (floats to 6 significant digits; None and NaN empty)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(row.get(k)) for k in columns})


def _fmt(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def table(rows: list[dict[str, Any]], columns: tuple[str, ...] = (
        "kind", "codec", "rate", "link", "snr_db", "images", "miou", "psnr", "bler",
        "outage", "bpp", "cu_per_pixel", "budget_unmet", "failed")) -> str:
    """A fixed-width text table of the summary rows (what the CLI prints)."""
    def short(v: Any) -> str:
        v = _fmt(v)
        return f"{float(v):.4g}" if isinstance(v, str) and _is_float(v) else str(v)

    cells = [[short(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[j]) for row in cells]) for j, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
