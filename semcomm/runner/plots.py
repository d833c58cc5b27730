"""Figures of a run: mIoU / PSNR / BLER vs SNR, mIoU vs bpp, one gallery per link.

::

    summary rows ─► snr_plot (one panel per link, one line per codec x rate)
                 ─► bpp_plot (error-free mIoU vs achieved bpp, one line per codec)
    gallery/*.png ─► gallery_plot (per link: original + each codec, error-free and 3 SNRs)

Every figure of a run draws a codec with the same colour and marker
(:func:`codec_styles`, derived from the sorted codec labels, so a re-plot or another
figure cannot shuffle them); a codec's second and later rates differ by line style.
Intervals: mIoU and PSNR as shaded bootstrap bands, BLER as Wilson error bars; a BLER
point with zero block errors cannot sit on a log axis, so it is drawn as its Wilson
upper bound with a downward open triangle. Legends sit outside the axes. The error-free
value of each line is a dotted level, the segmenter on the originals a black dashed one.
With ``plots: {capacity_bound: true}`` (the default) the mIoU and PSNR panels also draw,
thin and dash-dotted in each line's colour, its **capacity bound** (:func:`capacity_bound`):
the codec's error-free quality at the largest rate the channel could carry at that SNR
within the line's channel uses, by the separation theorem.

How the figures look (title, axis labels, figsize per panel, matplotlib style, dpi,
formats) comes from the experiment's ``plots:`` section (:class:`PlotsConfig`);
:func:`replot` redraws a finished run from its ``summary.json``.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from semcomm.runner.config import PlotsConfig  # noqa: E402

#: tab20 reordered: the ten dark hues first, then their light partners, so that the
#: first ten codecs get ten clearly different colours and up to 20 never repeat.
_TAB20_ORDER = [*range(0, 20, 2), *range(1, 20, 2)]
#: Nine markers: (colour, marker) pairs repeat only after lcm(20, 9) = 180 codecs.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<")
_RATE_STYLES = ("-", "--", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)))

_DEFAULT_LABELS = {"miou": "mIoU (judge on x_hat)", "psnr": "PSNR [dB]", "bler": "BLER",
                   "bpp": "achieved bpp (error-free)"}


def miou_label(judge: str) -> str:
    """The mIoU axis label naming the network that scored it: 'mIoU (judge on x_hat)'."""
    return f"mIoU ({judge} on x_hat)"

_ZERO_NOTE = "0 block errors: Wilson upper bound"

#: Figure file stems in the order the report shows them.
CURVE_STEMS = ("miou_vs_snr", "psnr_vs_snr", "bler_vs_snr", "miou_vs_bpp", "class_iou_vs_snr",
               "adaptation")


def codec_styles(codecs: Iterable[str]) -> dict[str, tuple[Any, str]]:
    """Codec label -> (RGBA colour, marker), from the sorted set of labels.

    The same set of codecs always gets the same styles, whatever the order the rows
    come in or the figure drawn; 20 codecs get 20 distinct colours.
    """
    cmap = plt.get_cmap("tab20")
    labels = sorted(set(codecs) - {"original"})
    return {c: (cmap(_TAB20_ORDER[j % 20]), MARKERS[j % len(MARKERS)])
            for j, c in enumerate(labels)}


def _num(v: Any) -> float:
    return math.nan if v is None or v == "" else float(v)


def _label(cfg: PlotsConfig, key: str, default: str) -> str:
    return cfg.labels.get(key, default)


def _save(fig: Any, out_dir: Path, stem: str, cfg: PlotsConfig) -> list[Path]:
    if cfg.title:
        fig.suptitle(cfg.title)
    paths = [out_dir / f"{stem}.{fmt}" for fmt in cfg.formats]
    for p in paths:
        # Unique temporary name, then an atomic rename: a reader never sees half a file.
        tmp = p.with_name(f".{p.stem}.tmp{p.suffix}")
        fig.savefig(tmp, dpi=cfg.dpi, bbox_inches="tight")
        tmp.replace(p)
    plt.close(fig)
    return paths


def _legend_outside(axes: Any) -> None:
    """One legend right of the last panel with every distinct entry of every panel
    (the reference levels and the zero-error note last)."""
    entries: dict[str, Any] = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    notes = ("original", _ZERO_NOTE)
    labels = [k for k in entries if k not in notes] + [k for k in notes if k in entries]
    if labels:
        np.ravel(axes)[-1].legend([entries[k] for k in labels], labels, loc="center left",
                                  bbox_to_anchor=(1.02, 0.5), fontsize=7, frameon=False)


def _curves(link_rows: list[dict[str, Any]], link: str) -> dict[tuple[str, str], list[dict]]:
    curves: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in link_rows:
        if r["link"] == link:
            curves[(r["codec"], r["rate"])].append(r)
    return curves


def _rate_index(rows: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """(codec, rate) -> 0, 1, ... in the order the codec's rates first appear."""
    seen: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        if r["kind"] == "link" and r["rate"] not in seen[r["codec"]]:
            seen[r["codec"]].append(r["rate"])
    return {(c, rate): j for c, rates in seen.items() for j, rate in enumerate(rates)}


def _draw_bler(ax: Any, x: np.ndarray, pts: list[dict[str, Any]], colour: Any, marker: str,
               ls: Any, label: str) -> None:
    """BLER with Wilson error bars; zero-error points as their upper bound (open 'v')."""
    y = np.array([_num(r.get("bler")) for r in pts])
    lo = np.array([_num(r.get("bler_lo")) for r in pts])
    hi = np.array([_num(r.get("bler_hi")) for r in pts])
    pos = y > 0
    ax.errorbar(x[pos], y[pos], yerr=[y[pos] - lo[pos], hi[pos] - y[pos]], color=colour,
                marker=marker, ms=3.5, ls=ls, lw=1.2, capsize=2, elinewidth=0.8, label=label)
    zero = (y == 0) & np.isfinite(hi)
    if zero.any():
        ax.plot(x[zero], hi[zero], ls="none", marker="v", mfc="none", color=colour, ms=5)


def capacity_bound(curve: list[tuple[float, float]], esno_db: float, cu_per_pixel: float,
                   link: Any, kind: str = "bicm", outage: float = 0.01) -> float:
    """A codec's separation-theorem ceiling at one SNR.

    The channel carries at most ``C(esno_db)`` bits per channel use
    (:func:`channels.capacity.capacity`: ``kind`` gaussian or bicm with the link's QAM; AWGN
    as is, fast Rayleigh ergodic, block Rayleigh at outage probability ``outage``), so an
    image sent in ``cu_per_pixel`` channel uses per pixel can carry at most
    ``bpp* = C cu_per_pixel``; the bound is the codec's error-free quality at ``bpp*``,
    linearly interpolated on its error-free rate-quality ``curve`` [(bpp, quality)], held
    at the best point above the curve's last rate, and NaN below its first (the codec has
    no operating point that fits).
    """
    if not curve or not (math.isfinite(esno_db) and math.isfinite(cu_per_pixel)):
        return math.nan
    from channels.capacity import capacity

    bits = capacity(esno_db, kind, link.channel, link.bits_per_symbol if kind == "bicm"
                    else None, outage)
    bpp_max = bits * cu_per_pixel
    xs, ys = zip(*sorted(curve), strict=True)
    if bpp_max < xs[0] * (1 - 1e-9):
        return math.nan
    return float(np.interp(bpp_max, xs, ys))


def _draw_bound(ax: Any, rows: list[dict[str, Any]], codec: str, metric: str,
                pts: list[dict[str, Any]], link: Any, cfg: PlotsConfig, colour: Any) -> None:
    """The capacity bound of one (codec, rate) line at each of its SNR points."""
    curve = _bound_curve(rows, codec, metric)
    bound = np.array([capacity_bound(curve, _num(r.get("esno_db")), _num(r.get("cu_per_pixel")),
                                     link, cfg.capacity, cfg.outage) for r in pts])
    if np.isfinite(bound).any():
        ax.plot([r["snr_db"] for r in pts], bound, color=colour, ls="-.", lw=0.7, alpha=0.8)


def _bound_curve(rows: list[dict[str, Any]], codec: str, metric: str
                 ) -> list[tuple[float, float]]:
    """(bpp, quality) of a codec's error-free rows (bytes codecs only: analog have no bpp)."""
    pts = [(_num(r.get("bpp")), _num(r.get(metric))) for r in rows
           if r["kind"] == "error-free" and r["codec"] == codec]
    return [(b, q) for b, q in pts if math.isfinite(b) and b > 0 and math.isfinite(q)]


def snr_plot(rows: list[dict[str, Any]], metric: str, out_dir: Path, snr_label: str,
             cfg: PlotsConfig, styles: dict[str, tuple[Any, str]],
             links: dict[str, Any] | None = None) -> list[Path]:
    """``<metric>_vs_snr``: one panel per link, one line per (codec, rate)."""
    link_rows = [r for r in rows if r["kind"] == "link"]
    panels = list(dict.fromkeys(r["link"] for r in link_rows))
    if not panels:
        return []
    log = metric == "bler"
    fig, axes = plt.subplots(1, len(panels), figsize=(cfg.figsize[0] * len(panels), cfg.figsize[1]),
                             squeeze=False, sharey=True)
    ref = {(r["codec"], r["rate"]): _num(r.get(metric)) for r in rows if r["kind"] == "error-free"}
    original = [_num(r.get(metric)) for r in rows if r["kind"] == "original"]
    rate_index = _rate_index(rows)
    for ax, link in zip(axes[0], panels, strict=True):
        for (codec, rate), pts in _curves(link_rows, link).items():
            pts.sort(key=lambda r: r["snr_db"])
            x = np.array([r["snr_db"] for r in pts], dtype=float)
            colour, marker = styles[codec]
            ls = _RATE_STYLES[rate_index[(codec, rate)] % len(_RATE_STYLES)]
            if log:
                _draw_bler(ax, x, pts, colour, marker, ls, curve_label(codec, rate, pts))
                continue
            y = np.array([_num(r.get(metric)) for r in pts])
            ax.plot(x, y, color=colour, marker=marker, ms=3.5, ls=ls, lw=1.2,
                    label=curve_label(codec, rate, pts))
            lo = np.array([_num(r.get(f"{metric}_lo")) for r in pts])
            hi = np.array([_num(r.get(f"{metric}_hi")) for r in pts])
            if np.isfinite(lo).any():
                ax.fill_between(x, lo, hi, color=colour, alpha=0.15, lw=0)
            level = ref.get(ref_key(codec, pts[0]), math.nan)
            if math.isfinite(level):
                ax.axhline(level, color=colour, ls=":", lw=0.8)
            if cfg.capacity_bound and (links or {}).get(link) is not None:
                _draw_bound(ax, rows, codec, metric, pts, (links or {})[link], cfg, colour)
        if original and math.isfinite(original[0]) and not log:
            ax.axhline(original[0], color="k", ls="--", lw=0.8, label="original")
        if cfg.capacity_bound and links and not log:
            what = "outage" if links.get(link) is not None and \
                links[link].channel == "rayleigh-block" else "capacity"
            ax.plot([], [], color="0.3", ls="-.", lw=0.7,
                    label=f"{cfg.capacity} {what} bound")
        if log:
            ax.set_yscale("log")
            ax.plot([], [], ls="none", marker="v", mfc="none", color="0.3",
                    label=_ZERO_NOTE)
        ax.set_title(link, fontsize=9)
        ax.set_xlabel(_label(cfg, "snr", snr_label))
        ax.grid(alpha=0.3, which="both" if log else "major")
    axes[0][0].set_ylabel(_label(cfg, metric, _DEFAULT_LABELS[metric]))
    _legend_outside(axes)
    return _save(fig, out_dir, f"{metric}_vs_snr", cfg)


def curve_label(codec: str, rate: str, pts: list[dict[str, Any]]) -> str:
    """Legend entry of a curve; a bandwidth ratio shows the cu/px actually sent (mean
    over the curve's points) and says when the codec left its budget unspent or could
    not get under it."""
    if not rate.startswith("cu/px"):
        return f"{codec} {rate}"
    cu = [_num(r.get("cu_per_pixel")) for r in pts]
    cu = [c for c in cu if math.isfinite(c)]
    if not cu:
        return f"{codec} {rate}"
    unmet = any(_num(r.get("budget_unmet")) > 0 for r in pts)
    over = any(_num(r.get("budget_exceeded")) > 0 for r in pts)
    budget = rate.split("=", 1)[1]
    tail = (f" of {budget}, over budget" if over else
            f" of {budget}, budget unmet" if unmet else "")
    return f"{codec} cu/px={float(np.mean(cu)):.3g}{tail}"


def ref_key(codec: str, row: dict[str, Any]) -> tuple[str, str]:
    # Error-free rows of a bandwidth ratio are labelled by their byte budget.
    rate = row["rate"]
    if rate.startswith("cu/px") and row.get("budget_bytes") not in (None, ""):
        rate = f"bytes={round(float(row['budget_bytes']))}"
    elif rate.startswith("cu/px") and row.get("target_bpp") not in (None, ""):
        rate = f"bpp={float(row['target_bpp']):g}"
    elif rate.startswith("cu/px") and row.get("knob") not in (None, ""):
        rate = f"knob={float(row['knob']):g}"  # analog codecs: the ratio is their knob
    return codec, rate


def bpp_plot(rows: list[dict[str, Any]], out_dir: Path, cfg: PlotsConfig,
             styles: dict[str, tuple[Any, str]]) -> list[Path]:
    """``miou_vs_bpp``: error-free mIoU against achieved bpp, one line per codec."""
    ef = [r for r in rows if r["kind"] == "error-free"]
    if not ef:
        return []
    fig, ax = plt.subplots(figsize=cfg.figsize)
    for codec in dict.fromkeys(r["codec"] for r in ef):
        pts = sorted((r for r in ef if r["codec"] == codec), key=lambda r: _num(r["bpp"]))
        colour, marker = styles[codec]
        x = np.array([_num(r["bpp"]) for r in pts])
        ax.plot(x, [_num(r.get("miou")) for r in pts], color=colour, marker=marker, ms=3.5,
                label=codec)
        lo = np.array([_num(r.get("miou_lo")) for r in pts])
        hi = np.array([_num(r.get("miou_hi")) for r in pts])
        if np.isfinite(lo).any():
            ax.fill_between(x, lo, hi, color=colour, alpha=0.15, lw=0)
    original = [_num(r.get("miou")) for r in rows if r["kind"] == "original"]
    if original and math.isfinite(original[0]):
        ax.axhline(original[0], color="k", ls="--", lw=0.8, label="original")
    ax.set_xlabel(_label(cfg, "bpp", _DEFAULT_LABELS["bpp"]))
    ax.set_ylabel(_label(cfg, "miou", _DEFAULT_LABELS["miou"]))
    ax.grid(alpha=0.3)
    _legend_outside(ax)
    return _save(fig, out_dir, "miou_vs_bpp", cfg)


def gallery_stem(link: str | None) -> str:
    """``gallery`` (no link: error-free only) or ``gallery_<link>``."""
    from semcomm.runner.sweep import safe_name

    return "gallery" if link is None else f"gallery_{safe_name(link)}"


def gallery_plot(run_dir: Path, rows: list[dict[str, Any]], snrs: list[float],
                 link: str | None, cfg: PlotsConfig, out_dir: Path | None = None) -> list[Path]:
    """``gallery_<link>``: original + each codec (first rate on that link), error-free
    and at ``snrs``; image 0. ``link=None``: error-free only (runs without links)."""
    from semcomm.runner.sweep import gallery_path

    original = gallery_path(run_dir, "original", "-", None, None, 0)
    if not original.exists():
        return []
    first_rate: dict[str, str] = {}
    for r in rows:
        if r["kind"] == "link" and r["link"] == link or r["kind"] == "error-free" and link is None:
            first_rate.setdefault(r["codec"], r["rate"])
    cols: list[float | None] = [None, *(snrs if link is not None else [])]
    fig, axes = plt.subplots(len(first_rate) + 1, len(cols),
                             figsize=(2.6 * len(cols), 1.5 * (len(first_rate) + 1)),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    axes[0][0].imshow(np.asarray(Image.open(original)))
    axes[0][0].set_title("original", fontsize=7)
    for row, (codec, rate) in enumerate(first_rate.items(), start=1):
        for col, snr in enumerate(cols):
            path = gallery_path(run_dir, codec, rate, link, snr, 0)
            if path.exists():
                axes[row][col].imshow(np.asarray(Image.open(path)))
                where = "error-free" if snr is None else f"{snr:g} dB"
                axes[row][col].set_title(f"{codec} {rate} {where}", fontsize=6)
    if link is not None and len(cols) > 1:  # beside the original (a suptitle leaves a gap)
        axes[0][1].text(0.0, 0.5, f"link: {link}", fontsize=8, va="center",
                        transform=axes[0][1].transAxes)
    return _save(fig, out_dir or run_dir, gallery_stem(link),
                 cfg.model_copy(update={"title": None}))


def all_plots(run_dir: Path, rows: list[dict[str, Any]], snr_label: str,
              gallery_snrs: list[float], cfg: PlotsConfig | None = None,
              out_dir: Path | None = None, links: dict[str, Any] | None = None,
              adaptation: dict[str, Any] | None = None, workers: int = 1,
              judge: str = "judge") -> list[Path]:
    """Every figure of a run into ``out_dir`` (default ``run_dir``); returns the files.

    ``links``: label -> ``channels.LinkConfig`` of the run's links (for the capacity bound;
    None draws no bound). ``adaptation``: summary.json's ``adaptation`` section, drawn as
    ``adaptation.png`` (:func:`semcomm.runner.adaptation.plot`); None: no such figure.
    ``workers > 1`` draws the figures on forked workers
    (:func:`semcomm.runner.pool.fork_map`), one file (figure and format) per task, the
    galleries, the slowest, first.
    ``judge``: the network that scored mIoU, named on its axis ("mIoU (judge on x_hat)")
    unless ``cfg.labels`` sets the label.
    """
    from semcomm.runner.pool import can_split, fork_map

    cfg = cfg or PlotsConfig()
    if "miou" not in cfg.labels:
        cfg = cfg.model_copy(update={"labels": {**cfg.labels, "miou": miou_label(judge)}})
    out = out_dir or run_dir
    out.mkdir(parents=True, exist_ok=True)
    styles = codec_styles(r["codec"] for r in rows)
    labels = list(dict.fromkeys(r["link"] for r in rows if r["kind"] == "link"))
    figures: list[tuple[str, Any]] = [("snr", m) for m in ("miou", "psnr", "bler")]
    figures += [("bpp", None)] + [("gallery", link) for link in labels or [None]]
    if cfg.class_iou:  # semantic UEP by class: named vs other classes (class_iou.py)
        figures.append(("class_iou", None))
    if adaptation is not None:  # the link-adaptation envelopes (adaptation.py)
        figures.append(("adaptation", None))
    split = workers > 1 and can_split()
    formats: list[str | None] = list(cfg.formats) if split else [None]  # None: all at once
    jobs = [(kind, what, fmt) for kind, what in figures for fmt in formats]
    jobs.sort(key=lambda job: job[0] != "gallery")  # stable: the slowest first
    state = (run_dir, rows, snr_label, gallery_snrs, cfg, out, links, styles, adaptation, judge)
    with plt.style.context(cfg.style):  # inherited by forked workers
        drawn = dict(zip(jobs, fork_map(_figure, jobs, state, workers), strict=True))
    return [path for kind, what in figures for fmt in formats
            for path in drawn[(kind, what, fmt)]]


def _figure(state: tuple[Any, ...], job: tuple[str, Any, str | None]) -> list[Path]:
    """One figure of :func:`all_plots` (``job``: its kind, metric or link, and format;
    None: every format of the config), in the config's style (also where the style
    context of :func:`all_plots` is not inherited: a Ray actor)."""
    cfg = state[4]
    with plt.style.context(cfg.style):
        return _draw(state, job)


def _draw(state: tuple[Any, ...], job: tuple[str, Any, str | None]) -> list[Path]:
    run_dir, rows, snr_label, snrs, cfg, out, links, styles, adapted, judge = state
    kind, what, fmt = job
    if fmt is not None:  # one file of the figure (formats are validated already)
        cfg = cfg.model_copy(update={"formats": [fmt]})
    if kind == "snr":
        return snr_plot(rows, what, out, snr_label, cfg, styles, links)
    if kind == "bpp":
        return bpp_plot(rows, out, cfg, styles)
    if kind == "class_iou":
        from semcomm.runner.class_iou import class_plot

        return class_plot(run_dir, out, cfg, snr_label, styles, judge)
    if kind == "adaptation":
        from semcomm.runner.adaptation import plot as adaptation_plot

        return adaptation_plot(rows, adapted, out, cfg, snr_label)
    return gallery_plot(run_dir, rows, snrs, what, cfg, out)


def gallery_snrs(snrs: list[float]) -> list[float]:
    """Lowest, middle and highest SNR of the sweep (the gallery's columns)."""
    if not snrs:
        return []
    values = sorted(snrs)
    return list(dict.fromkeys([values[0], values[len(values) // 2], values[-1]]))


def snr_axis_label(config: dict[str, Any]) -> str:
    """'Es/N0 [dB]' or 'Eb/N0 [dB]' from a resolved config mapping."""
    snr = config.get("snr") or {}
    return "Eb/N0 [dB]" if snr.get("ebno_db") is not None else "Es/N0 [dB]"


def load_summary(run_dir: Path) -> dict[str, Any]:
    """``summary.json`` of a finished run; ValueError (one line) if it is not one."""
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise ValueError(f"{str(run_dir)!r}: no summary.json there (not a finished run folder; "
                         "finish it with semcomm run --resume)")
    try:
        summary: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if "rows" not in summary or "config" not in summary:
        raise ValueError(f"{path}: has no 'rows'/'config' (not written by semcomm run)")
    return summary


def replot(run_dir: Path, cfg: PlotsConfig | None = None,
           out_dir: Path | None = None) -> list[Path]:
    """Redraw every figure of a finished run from its ``summary.json`` (no recompute).

    ``cfg`` defaults to the run's own ``plots:`` section.
    """
    summary = load_summary(run_dir)
    config = summary["config"]
    if cfg is None:
        cfg = PlotsConfig.model_validate(config.get("plots") or {})
    snrs = _snr_values(config)
    from semcomm.runner.config import expand_links, judge_name

    links = dict(expand_links(config.get("links") or []))
    return all_plots(Path(run_dir), summary["rows"], snr_axis_label(config), gallery_snrs(snrs),
                     cfg, out_dir, links, summary.get("adaptation"), judge=judge_name(config))


def _snr_values(config: dict[str, Any]) -> list[float]:
    snr = config.get("snr")
    if not snr:
        return []
    from semcomm.runner.config import SnrConfig

    return SnrConfig.model_validate(snr).values()
