"""Per-class IoU vs SNR: the table and figure of semantic UEP by class.

::

    points.jsonl (inter/union [19] per line: the judge on x_hat; map_inter/map_union:
          │       the codec's decoded map s_hat, for codecs that send one)
          ▼
    class_rows: per point (kind, codec, rate, link, SNR) and class, the pooled IoU
          │     (summed intersection / summed union) with a bootstrap interval
          │     resampling transmissions, as the summary's mIoU (the map's over the
          │     decodes that returned a map, as map_miou); plus two group rows,
          │     "named" (the classes any codec of the run protects, ``priority_classes``)
          │     and "other" (the rest): the mean over their classes with a non-zero union
          ▼
    class_iou.csv ──► class_plot: class_iou_vs_snr.png (named solid, other dashed, per
                      codec; x_hat panel and decoded-map panel, one row per link)

Written by the runner only when a codec of the run names ``priority_classes`` (the
figure only with ``plots: {class_iou: true}``, the default); ``semcomm plot`` redraws
the figure from ``class_iou.csv``.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from semcomm import stats
from semcomm.data import CLASS_NAMES

#: Columns of class_iou.csv. ``scope``: "class" (one class) or "group" ("named", "other").
COLUMNS = ("kind", "codec", "rate", "link", "snr_db", "scope", "class", "protected", "n",
           "iou", "iou_lo", "iou_hi", "map_iou", "map_iou_lo", "map_iou_hi", "union_px")
STEM = "class_iou_vs_snr"
_GROUP = ("kind", "codec", "rate", "link", "snr_db")
#: Group names of the two group rows.
NAMED, OTHER = "named", "other"


def protected_classes(exp: Any) -> dict[str, tuple[str, ...]]:
    """Codec label -> the classes it protects (``params.priority_classes``), for the
    codecs that name any."""
    from semcomm.codecs.class_priority import PARAMETER

    return {c.display: tuple(c.params[PARAMETER]) for c in exp.codecs
            if c.params.get(PARAMETER)}


def _pooled(inter: np.ndarray, union: np.ndarray, n_boot: int, conf: float,
            seed: int) -> tuple[float, float, float]:
    """Mean over classes (columns) with a non-zero summed union of summed inter / summed
    union, and its bootstrap interval; NaNs when no class has pixels."""
    tot_u = union.sum(axis=0)
    if not (tot_u > 0).any():
        return math.nan, math.nan, math.nan
    value = float(np.mean(inter.sum(axis=0)[tot_u > 0] / tot_u[tot_u > 0]))
    lo, hi = stats.bootstrap_ratio_interval(inter, union, n_boot, conf, seed)
    return value, lo, hi


def _point_rows(key: tuple[Any, ...], lines: list[dict[str, Any]], named: set[str],
                protected: set[str], n_boot: int, conf: float, seed: int) -> list[dict]:
    lines = sorted(lines, key=lambda r: (r["image"], r["realization"]))
    arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for prefix in ("", "map_"):  # map_: only decodes that returned a map, as map_miou
        have = [r for r in lines if f"{prefix}inter" in r]
        if have:
            arrays[prefix] = (np.array([r[f"{prefix}inter"] for r in have], np.float64),
                              np.array([r[f"{prefix}union"] for r in have], np.float64))
    if "" not in arrays or len(arrays[""][0]) != len(lines):
        return []
    base = dict(zip(_GROUP, key, strict=True))
    columns = {name: [j for j, c in enumerate(CLASS_NAMES) if (c in named) == (name == NAMED)]
               for name in (NAMED, OTHER)}
    scopes = [("class", c, [j], c in protected) for j, c in enumerate(CLASS_NAMES)]
    scopes += [("group", g, cols, g == NAMED and bool(protected)) for g, cols in columns.items()]
    out = []
    for scope, name, cols, prot in scopes:
        inter, union = arrays[""]
        if union[:, cols].sum() == 0:
            continue  # the class is absent from this point's references and outputs
        row = {**base, "scope": scope, "class": name, "protected": prot, "n": len(lines),
               "union_px": int(union[:, cols].sum())}
        row["iou"], row["iou_lo"], row["iou_hi"] = _pooled(
            inter[:, cols], union[:, cols], n_boot, conf, seed)
        if "map_" in arrays:
            mi, mu = arrays["map_"]
            row["map_iou"], row["map_iou_lo"], row["map_iou_hi"] = _pooled(
                mi[:, cols], mu[:, cols], n_boot, conf, seed)
        out.append(row)
    return out


def class_rows(points: Path, protected: dict[str, tuple[str, ...]], n_boot: int = 1000,
               confidence: float = 0.95, seed: int = 0) -> list[dict[str, Any]]:
    """``points.jsonl`` -> class_iou rows (first line of a key wins, as the summary)."""
    from semcomm.runner.store import KEY_FIELDS, iter_lines

    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    seen: set[tuple[Any, ...]] = set()
    for _, line in iter_lines(points):
        key = tuple(line[k] for k in KEY_FIELDS)
        if key in seen or line["kind"] == "original":
            continue
        seen.add(key)
        small: dict[str, Any] = {k: line[k] for k in ("image", "realization", "inter", "union",
                                      "map_inter", "map_union") if k in line}
        groups[key[:len(_GROUP)]].append(small)
    named = {c for classes in protected.values() for c in classes}
    rows: list[dict[str, Any]] = []
    for key in sorted(groups, key=lambda k: tuple(str(v) for v in k[:4]) + (
            -math.inf if k[4] is None else k[4],)):
        rows += _point_rows(key, groups[key], named, set(protected.get(key[1], ())),
                            n_boot, confidence, seed)
    return rows


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """class_iou.csv: one row per (point, class or group), columns :data:`COLUMNS`."""
    from semcomm.runner.summary import write_rows

    write_rows(rows, path, list(COLUMNS))


def read_csv(path: Path) -> list[dict[str, Any]]:
    """class_iou.csv -> rows with numbers parsed (empty cells: NaN)."""
    def num(text: str) -> float:
        return float(text) if text not in ("", None) else math.nan

    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        for k in ("snr_db", "iou", "iou_lo", "iou_hi", "map_iou", "map_iou_lo", "map_iou_hi"):
            row[k] = num(row[k])
        row["protected"] = row["protected"] == "True"
    return rows


def write_class_results(exp: Any, run_dir: Path) -> Path | None:
    """class_iou.csv of a run whose codecs protect classes (None when none does)."""
    protected = protected_classes(exp)
    if not protected:
        return None
    rows = class_rows(run_dir / "points.jsonl", protected, exp.metrics.bootstrap,
                      exp.metrics.confidence, exp.seed)
    path = run_dir / "class_iou.csv"
    write_csv(rows, path)
    return path


def class_plot(run_dir: Path, out_dir: Path, cfg: Any, snr_label: str,
               styles: dict[str, tuple[Any, str]], judge: str = "judge") -> list[Path]:
    """``class_iou_vs_snr``: per link a row of panels (IoU of ``judge`` on x_hat;
    IoU of the decoded map when a codec sends one), per codec the named classes (solid)
    and the others (dashed) with bootstrap bands; dotted: the error-free levels."""
    import matplotlib.pyplot as plt

    from semcomm.runner.plots import _legend_outside, _save

    path = run_dir / "class_iou.csv"
    if not path.is_file():
        return []
    rows = [r for r in read_csv(path) if r["scope"] == "group"]
    links = list(dict.fromkeys(r["link"] for r in rows if r["kind"] == "link"))
    if not links:
        return []
    metrics = ["iou"] + (["map_iou"] if any(math.isfinite(r["map_iou"]) for r in rows) else [])
    fig, axes = plt.subplots(len(links), len(metrics), squeeze=False, sharey=True,
                             figsize=(cfg.figsize[0] * len(metrics), cfg.figsize[1] * len(links)))
    titles = {"iou": f"{judge} on x_hat", "map_iou": "decoded map s_hat"}
    for li, link in enumerate(links):
        for mi, metric in enumerate(metrics):
            ax = axes[li][mi]
            _draw_groups(ax, rows, link, metric, styles)
            ax.set_title(f"{link}: {titles[metric]}", fontsize=8)
            if li == len(links) - 1:  # rows share the SNR axis: label the bottom one
                ax.set_xlabel(snr_label)
            ax.grid(alpha=0.3)
        axes[li][0].set_ylabel("IoU (mean over the group's classes)")
    axes[0][-1].plot([], [], color="0.3", ls="-", label="named classes")
    axes[0][-1].plot([], [], color="0.3", ls="--", label="other classes")
    _legend_outside(axes)
    return _save(fig, out_dir, STEM, cfg)


def _draw_groups(ax: Any, rows: list[dict[str, Any]], link: str, metric: str,
                 styles: dict[str, tuple[Any, str]]) -> None:
    """One codec-coloured line per (codec, rate, group) on ``ax``."""
    curves: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["kind"] == "link" and r["link"] == link and math.isfinite(r[metric]):
            curves[(r["codec"], r["rate"], r["class"])].append(r)
    levels = {(r["codec"], r["rate"], r["class"]): r[metric] for r in rows
              if r["kind"] == "error-free" and math.isfinite(r[metric])}
    for (codec, rate, group), pts in curves.items():
        pts.sort(key=lambda r: r["snr_db"])
        colour, marker = styles.get(codec, ("0.3", "o"))
        x = np.array([r["snr_db"] for r in pts])
        ls = "-" if group == NAMED else "--"
        ax.plot(x, [r[metric] for r in pts], color=colour, marker=marker, ms=3, ls=ls,
                lw=1.2, label=f"{codec} {rate}" if group == NAMED else None)
        ax.fill_between(x, [r[f"{metric}_lo"] for r in pts], [r[f"{metric}_hi"] for r in pts],
                        color=colour, alpha=0.12, lw=0)
        level = levels.get((codec, rate, group))
        if level is not None:
            ax.axhline(level, color=colour, ls=":", lw=0.7)
