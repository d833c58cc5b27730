"""``report.html``: a finished run on one self-contained page.

::

    summary.json ─► provenance, configuration, tables (mIoU vs SNR per link, all rows)
    *.png        ─► curves and galleries, inlined as base64 data URIs

The page needs nothing else: CSS is inline, images are ``data:`` URIs, there is no
script and no link to the network, so it can be mailed, archived or opened offline.
Written at the end of every run and by ``semcomm report RUN_DIR``.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from semcomm.runner.plots import CURVE_STEMS, gallery_stem, load_summary, ref_key

#: Columns of the table of all rows: (summary key, header).
TABLE_COLUMNS = (
    ("kind", "kind"), ("codec", "codec"), ("rate", "rate"), ("link", "link"),
    ("snr_db", "SNR [dB]"), ("n", "n"), ("miou", "mIoU"), ("miou_ci", "mIoU 95% CI"),
    ("psnr", "PSNR [dB]"), ("ms_ssim", "MS-SSIM"), ("bler", "BLER"), ("bler_ci", "BLER 95% CI"),
    ("outage", "outage"), ("bpp", "bpp"), ("cu_per_pixel", "cu/px"), ("failed", "failed"),
)

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1200px;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;
margin-top:1.6em}table{border-collapse:collapse;font-size:.82em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.2em .5em;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td.t,th.t{text-align:left}tr:nth-child(even) td{background:#fafafa}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}pre{background:#f6f6f6;padding:.8em;overflow:auto;
font-size:.8em}.scroll{overflow-x:auto}.muted{color:#777}nav a{margin-right:1em}
"""


def _png_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _jpeg_uri(path: Path, quality: int = 88) -> str:
    """A photo-like PNG (the galleries, ~1.5 MB at 11 codecs) as a JPEG data URI (~10x
    smaller); the PNG/PDF beside the report keep every pixel."""
    from PIL import Image

    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return f"{value:.{digits}g}"
    return str(value)


def _ci(row: dict[str, Any], metric: str) -> str:
    lo, hi = row.get(f"{metric}_lo"), row.get(f"{metric}_hi")
    if lo is None or hi is None:
        return ""
    return f"[{_fmt(lo, 3)}, {_fmt(hi, 3)}]"


def _cell(row: dict[str, Any], key: str) -> str:
    if key.endswith("_ci"):
        return _ci(row, key.removesuffix("_ci"))
    return _fmt(row.get(key))


def _table(header: list[str], body: list[list[str]], text_cols: int) -> str:
    def cls(j: int) -> str:
        return ' class="t"' if j < text_cols else ""

    head = "".join(f"<th{cls(j)}>{html.escape(h)}</th>" for j, h in enumerate(header))
    rows = "".join("<tr>" + "".join(f"<td{cls(j)}>{html.escape(c)}</td>"
                                    for j, c in enumerate(r)) + "</tr>" for r in body)
    return f'<div class="scroll"><table><tr>{head}</tr>{rows}</table></div>'


def rows_table(rows: list[dict[str, Any]]) -> str:
    """Every summary row, the columns of :data:`TABLE_COLUMNS`."""
    body = [[_cell(r, key) for key, _ in TABLE_COLUMNS] for r in rows]
    return _table([h for _, h in TABLE_COLUMNS], body, text_cols=4)


def _reference_note(summary: dict[str, Any]) -> str:
    if summary.get("miou_reference") != "original-segmentation":
        return ""
    return ("<p>mIoU is scored against the evaluating segmenter's map of each original "
            "image (<code>reference: original-segmentation</code>, a pseudo ground truth: "
            "the images have no labels), so the originals score 1.</p>")


def miou_tables(rows: list[dict[str, Any]]) -> str:
    """Per link: one row per (codec, rate) with bpp, error-free mIoU and mIoU per SNR."""
    error_free = {(r["codec"], r["rate"]): r for r in rows if r["kind"] == "error-free"}
    by_link: dict[str, dict[tuple[str, str], dict[float, dict]]] = defaultdict(dict)
    for r in rows:
        if r["kind"] == "link":
            by_link[r["link"]].setdefault((r["codec"], r["rate"]), {})[r["snr_db"]] = r
    parts = []
    for link, curves in by_link.items():
        snrs = sorted({s for pts in curves.values() for s in pts})
        header = ["codec", "rate", "bpp", "cu/px sent", "error-free",
                  *(f"{s:g} dB" for s in snrs)]
        body = []
        for (codec, rate), pts in curves.items():
            any_pt = next(iter(pts.values()))
            ef = error_free.get(ref_key(codec, any_pt), {})
            unmet = (" (over budget)" if (any_pt.get("budget_exceeded") or 0) > 0 else
                     " (budget unmet)" if (any_pt.get("budget_unmet") or 0) > 0 else "")
            body.append([codec, rate, _fmt(any_pt.get("bpp"), 3),
                         _fmt(any_pt.get("cu_per_pixel"), 3) + unmet, _fmt(ef.get("miou"), 3),
                         *(_fmt(pts[s].get("miou"), 3) if s in pts else "" for s in snrs)])
        parts.append(f"<h3>{html.escape(link)}</h3>" + _table(header, body, text_cols=2))
    if not parts:  # error-free runs: one table of the rate points
        body = [[r["codec"], r["rate"], _fmt(r.get("bpp"), 3), _fmt(r.get("miou"), 3),
                 _ci(r, "miou"), _fmt(r.get("psnr"), 3)] for r in rows
                if r["kind"] == "error-free"]
        parts.append(_table(["codec", "rate", "bpp", "mIoU", "mIoU 95% CI", "PSNR [dB]"], body,
                            text_cols=2))
    return "".join(parts)


def provenance_table(summary: dict[str, Any]) -> str:
    """Key facts of the run, then every checkpoint with its sha256."""
    prov = summary.get("provenance", {})
    facts = [("experiment", summary.get("experiment")), ("created", summary.get("created")),
             ("wall time [s]", summary.get("wall_s")), ("workers", summary.get("workers")),
             ("measurements", summary.get("measurements")),
             ("mIoU reference", summary.get("miou_reference", "labels")),
             ("schema version", summary.get("schema_version"))]
    facts += [(k, prov.get(k)) for k in ("git_commit", "git_dirty", "seed", "device",
                                         "python", "platform", "torch_threads")]
    facts.append(("argv", " ".join(prov.get("argv", []))))
    packages = prov.get("packages", {})
    facts.append(("packages", ", ".join(f"{k} {v}" for k, v in packages.items() if v)))
    out = _table(["field", "value"], [[k, "" if v is None else str(v)] for k, v in facts],
                 text_cols=2)
    ckpts = prov.get("checkpoints", {})
    if ckpts:
        body = [[k, v["path"], str(v["bytes"]), v["sha256"]] for k, v in ckpts.items()]
        out += "<h3>Checkpoints</h3>" + _table(["used by", "file", "bytes", "sha256"], body,
                                               text_cols=4)
    return out


def _figure(path: Path, caption: str, photo: bool = False) -> str:
    uri = _jpeg_uri(path) if photo else _png_uri(path)
    return (f'<figure><img alt="{html.escape(caption)}" src="{uri}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


_CAPTIONS = {
    "miou_vs_snr": "mIoU of the segmenter on the reconstruction vs SNR, one panel per link; "
                   "bands: 95% bootstrap intervals; dotted: error-free level; dashed: "
                   "segmenter on the originals.",
    "psnr_vs_snr": "PSNR vs SNR (95% bootstrap bands; dotted: error-free level).",
    "bler_vs_snr": "Block error rate vs SNR with 95% Wilson intervals; open triangles: "
                   "points with zero block errors, drawn at their Wilson upper bound.",
    "miou_vs_bpp": "Error-free mIoU vs achieved bits per pixel.",
    "class_iou_vs_snr": "Semantic UEP by class: IoU of the classes the codecs protect "
                        "(solid) and of the others (dashed) vs SNR, 95% bootstrap bands, "
                        "dotted: error-free levels (class_iou.csv has every class).",
    "adaptation": "Link adaptation: per codec family, thin lines are its candidates (MCS "
                  "row x rate), the thick line the best one within the channel-use budget "
                  "at each SNR (labelled where the choice changes); crosses: no feasible "
                  "pair.",
}


def adaptation_table(summary: dict[str, Any]) -> str:
    """The choice table of a run with an ``adaptation:`` section ("" without one)."""
    sec = summary.get("adaptation")
    if not sec:
        return ""
    unit = "channel uses per pixel" if sec["budget_unit"] == "cu/px" else \
        "channel uses per image"
    head = (f"<p>Best {html.escape(sec['metric'])} ({sec['goal']}) per SNR within "
            f"{sec['budget']:g} {unit} (mean, retransmissions counted), over MCS rows "
            f"{sec['mcs_indices']} of {html.escape(sec['mcs_table'])} x each codec's rates.</p>")
    header = ["family", "link", "SNR [dB]", "choice", sec["metric"], "cu (effective)",
              "BLER", "feasible"]
    body = [[c["family"], c["link"], _fmt(c["snr_db"]),
             c.get("label") or c["status"].replace("_", " "), _fmt(c.get("value"), 3),
             _fmt(c.get("effective_channel_uses"), 5), _fmt(c.get("bler"), 3),
             f"{c['feasible']}/{c['candidates']}"] for c in sec["choices"]]
    return head + _table(header, body, text_cols=4)


def render(run_dir: Path, summary: dict[str, Any], title: str | None = None) -> str:
    """The HTML text of the report of ``run_dir``; ``title`` defaults to the run's
    ``plots.title``, else the experiment name."""
    rows, config = summary["rows"], summary["config"]
    name = str(summary.get("experiment", config.get("name", "run")))
    title = title or (config.get("plots") or {}).get("title") or name
    curves = [_figure(run_dir / f"{stem}.png", _CAPTIONS[stem]) for stem in CURVE_STEMS
              if (run_dir / f"{stem}.png").is_file()]
    links = list(dict.fromkeys(r["link"] for r in rows if r["kind"] == "link")) or [None]
    gallery = [_figure(run_dir / f"{gallery_stem(link)}.png",
                       f"Image 0 of the dataset on link {link}" if link else "Image 0, error-free",
                       photo=True)
               for link in links if (run_dir / f"{gallery_stem(link)}.png").is_file()]
    description = config.get("description") or ""
    sections = [
        ("curves", "Curves", "".join(curves) or '<p class="muted">no figures</p>'),
        ("tables", "mIoU tables", _reference_note(summary) + miou_tables(rows)),
        *([("adaptation", "Link adaptation", adaptation_table(summary))]
          if summary.get("adaptation") else []),
        ("gallery", "Gallery", "".join(gallery) or '<p class="muted">no gallery images</p>'),
        ("rows", "All summary rows", rows_table(rows)),
        ("provenance", "Provenance", provenance_table(summary)),
        ("config", "Configuration",
         f"<pre>{html.escape(yaml.safe_dump(config, sort_keys=False))}</pre>"),
    ]
    nav = "".join(f'<a href="#{key}">{html.escape(head)}</a>' for key, head, _ in sections)
    body = "".join(f'<h2 id="{key}">{html.escape(head)}</h2>{content}'
                   for key, head, content in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(description)}</p>"
            f'<p class="muted">run folder: {html.escape(str(run_dir))}</p><nav>{nav}</nav>'
            f"{body}</body></html>\n")


def write_report(run_dir: Path, out: Path | None = None, title: str | None = None) -> Path:
    """Write ``report.html`` (default ``run_dir/report.html``); returns its path."""
    run_dir = Path(run_dir)
    summary = load_summary(run_dir)
    path = out or run_dir / "report.html"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render(run_dir, summary, title), encoding="utf-8")
    tmp.replace(path)
    return path
