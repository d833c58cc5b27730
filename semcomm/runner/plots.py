"""Figures of a run (PNG and PDF): mIoU / PSNR / BLER vs SNR, mIoU vs bpp, gallery.

One panel per link in the SNR plots; one line per (codec, rate) with its interval as
a shaded band; the error-free value of each line is drawn as a dotted level and the
segmenter on the originals as a black dashed level (the ceiling).
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def _num(v: Any) -> float:
    return math.nan if v is None or v == "" else float(v)


def _save(fig: Any, out_dir: Path, stem: str) -> list[Path]:
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    for p in paths:
        fig.savefig(p, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return paths


def _error_free(rows: list[dict[str, Any]], metric: str) -> dict[tuple[str, str], float]:
    return {(r["codec"], r["rate"]): _num(r.get(metric)) for r in rows
            if r["kind"] == "error-free"}


def snr_plot(rows: list[dict[str, Any]], metric: str, out_dir: Path, snr_label: str,
             ylabel: str, log: bool = False) -> list[Path]:
    """``<metric>_vs_snr.png/pdf``: one panel per link, one line per (codec, rate)."""
    link_rows = [r for r in rows if r["kind"] == "link"]
    links = list(dict.fromkeys(r["link"] for r in link_rows))
    if not links:
        return []
    fig, axes = plt.subplots(1, len(links), figsize=(5.2 * len(links), 3.8), squeeze=False,
                             sharey=True)
    ref = _error_free(rows, metric)
    original = [_num(r.get(metric)) for r in rows if r["kind"] == "original"]
    for ax, link in zip(axes[0], links, strict=True):
        curves: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for r in link_rows:
            if r["link"] == link:
                curves[(r["codec"], r["rate"])].append(r)
        for j, ((codec, rate), pts) in enumerate(curves.items()):
            pts.sort(key=lambda r: r["snr_db"])
            x = np.array([r["snr_db"] for r in pts], dtype=float)
            y = np.array([_num(r.get(metric)) for r in pts])
            if log:
                y = np.where(y > 0, y, np.nan)
            colour = f"C{j % 10}"
            ax.plot(x, y, "o-", color=colour, ms=3, label=f"{codec} {rate}")
            lo = np.array([_num(r.get(f"{metric}_lo")) for r in pts])
            hi = np.array([_num(r.get(f"{metric}_hi")) for r in pts])
            if np.isfinite(lo).any() and not log:
                ax.fill_between(x, lo, hi, color=colour, alpha=0.15, lw=0)
            level = ref.get(_ref_key(codec, pts[0]), math.nan)
            if math.isfinite(level) and not log:
                ax.axhline(level, color=colour, ls=":", lw=0.8)
        if original and math.isfinite(original[0]) and not log:
            ax.axhline(original[0], color="k", ls="--", lw=0.8, label="original")
        if log:
            ax.set_yscale("log")
        ax.set_title(link, fontsize=9)
        ax.set_xlabel(snr_label)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=7, loc="best")
    return _save(fig, out_dir, f"{metric}_vs_snr")


def _ref_key(codec: str, row: dict[str, Any]) -> tuple[str, str]:
    # Error-free rows of a bandwidth ratio are labelled by their resolved bpp target.
    rate = row["rate"]
    if rate.startswith("cu/px") and row.get("target_bpp") not in (None, ""):
        rate = f"bpp={float(row['target_bpp']):g}"
    elif rate.startswith("cu/px") and row.get("knob") not in (None, ""):
        rate = f"knob={float(row['knob']):g}"  # analog codecs: the ratio is their knob
    return codec, rate


def bpp_plot(rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """``miou_vs_bpp.png/pdf``: error-free mIoU against achieved bpp, one line per codec."""
    ef = [r for r in rows if r["kind"] == "error-free"]
    if not ef:
        return []
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    codecs = list(dict.fromkeys(r["codec"] for r in ef))
    for j, codec in enumerate(codecs):
        pts = sorted((r for r in ef if r["codec"] == codec), key=lambda r: _num(r["bpp"]))
        x = [_num(r["bpp"]) for r in pts]
        ax.plot(x, [_num(r.get("miou")) for r in pts], "o-", color=f"C{j % 10}", ms=3,
                label=codec)
    original = [_num(r.get("miou")) for r in rows if r["kind"] == "original"]
    if original and math.isfinite(original[0]):
        ax.axhline(original[0], color="k", ls="--", lw=0.8, label="original")
    ax.set_xlabel("achieved bpp (error-free)")
    ax.set_ylabel("mIoU")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, out_dir, "miou_vs_bpp")


def gallery_plot(run_dir: Path, rows: list[dict[str, Any]], snrs: list[float],
                 link: str | None) -> list[Path]:
    """``gallery.png/pdf``: original + each codec (first rate) error-free and at 3 SNRs."""
    from semcomm.runner.sweep import gallery_path

    original = gallery_path(run_dir, "original", "-", None, 0)
    if not original.exists():
        return []
    first_rate: dict[str, str] = {}
    for r in rows:
        if r["kind"] == "link" and r["link"] == link or r["kind"] == "error-free" and link is None:
            first_rate.setdefault(r["codec"], r["rate"])
    cols = [None, *snrs]
    fig, axes = plt.subplots(len(first_rate) + 1, len(cols),
                             figsize=(2.6 * len(cols), 1.5 * (len(first_rate) + 1)),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    axes[0][0].imshow(np.asarray(Image.open(original)))
    axes[0][0].set_title("original", fontsize=7)
    for row, (codec, rate) in enumerate(first_rate.items(), start=1):
        for col, snr in enumerate(cols):
            ef_rate = rate
            if snr is None and rate.startswith("cu/px"):
                continue
            path = gallery_path(run_dir, codec, ef_rate, snr, 0)
            if path.exists():
                axes[row][col].imshow(np.asarray(Image.open(path)))
                where = "error-free" if snr is None else f"{snr:g} dB"
                axes[row][col].set_title(f"{codec} {rate} {where}", fontsize=6)
    return _save(fig, run_dir, "gallery")


def all_plots(run_dir: Path, rows: list[dict[str, Any]], snr_label: str,
              gallery_snrs: list[float], gallery_link: str | None) -> list[Path]:
    """Every figure of a run; returns the files written."""
    paths = []
    paths += snr_plot(rows, "miou", run_dir, snr_label, "mIoU (segmenter on x_hat)")
    paths += snr_plot(rows, "psnr", run_dir, snr_label, "PSNR [dB]")
    paths += snr_plot(rows, "bler", run_dir, snr_label, "BLER", log=True)
    paths += bpp_plot(rows, run_dir)
    paths += gallery_plot(run_dir, rows, gallery_snrs, gallery_link)
    return paths
