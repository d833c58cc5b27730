"""Link adaptation: at each SNR of each channel, the (MCS row, codec rate) pair with the
best metric among those that fit a channel-use budget per image.

::

    adaptation: {metric, goal, budget_cu | budget_cu_per_pixel, mcs: {table, indices}}
       │ expand(): each codec entry x MCS row -> one candidate entry "<label>@mcs<i>"
       │           with link: {mcs_table, mcs_index, modulation} (TS 38.214 5.1.3.1)
       ▼
    the sweep: every candidate x its rates x run link x SNR. A candidate keeps the run
       link's label, so every candidate sees the same noise and fading (common random
       numbers: the choice is not decided by luckier draws)
       ▼
    summary rows ─► candidates_from_rows() ─► select() (pure) ─► choices
       ─► adaptation.csv, summary.json["adaptation"], adaptation.png, report.html

Selection rule (:func:`select`), per (codec family, run link, SNR):

* the metric of a candidate is its summary-row value (a mean over the point's
  transmissions; mIoU pooled over them, as everywhere in the summary);
* it is **feasible** when its mean channel uses per image, every HARQ retransmission
  counted (``effective_channel_uses``), are at most the budget (``budget_cu``, or
  ``budget_cu_per_pixel`` times the image's pixels);
* the best metric wins (largest for ``goal: max``, smallest for ``goal: min``); exact
  ties go to the fewest channel uses, then the lowest MCS index (the more robust
  row), then the rate listed first: deterministic, whatever the row order;
* a point where no candidate fits is reported ``infeasible``; where some fit but none
  has a finite metric, ``no_metric``. Neither is dropped.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from channels.mcs import MCS_TABLES, decode_mcs

if TYPE_CHECKING:
    from semcomm.runner.config import Experiment, PlotsConfig

#: Summary columns that name a point rather than measure it (not selectable).
_NOT_METRICS = ("kind", "codec", "rate", "link", "snr_db", "esno_db", "stop_reason",
                "stopped_early")
#: Metrics where smaller is better: the default ``goal`` for them is ``min``.
LOWER_IS_BETTER = ("lpips", "fid", "ber", "bler", "outage", "undetected", "failed",
                   "concealed", "unreachable", "budget_unmet", "budget_exceeded",
                   "transmissions", "channel_uses", "effective_channel_uses",
                   "cu_per_pixel", "bpp", "target_bpp", "budget_bytes")
#: Columns of adaptation.csv, in order.
CSV_COLUMNS = ("family", "link", "snr_db", "status", "label", "mcs_index", "modulation",
               "code_rate", "rate", "metric", "value", "value_lo", "value_hi",
               "effective_channel_uses", "cu_per_pixel", "bler", "feasible", "candidates")


def metric_columns() -> list[str]:
    """Every summary column a metric may name (numeric columns of summary.csv)."""
    from semcomm.runner.summary import COLUMNS, SPHERE_METRICS

    sphere = [f"{m}{s}" for m in SPHERE_METRICS for s in ("", "_lo", "_hi")]
    return [c for c in COLUMNS if c not in _NOT_METRICS] + sphere


class McsCandidates(BaseModel):
    """Rows of one TS 38.214 MCS table (``channels.mcs``) to try."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str = "qam64"
    indices: list[NonNegativeInt] = Field(min_length=1)

    @model_validator(mode="after")
    def _rows_exist(self) -> McsCandidates:
        if self.table not in MCS_TABLES:
            raise ValueError(f"table {self.table!r} not supported; choose one of "
                             f"{list(MCS_TABLES)}")
        for i in self.indices:
            decode_mcs(self.table, i)  # ValueError naming the index and the range
        if len(set(self.indices)) != len(self.indices):
            raise ValueError(f"indices {self.indices} repeat; give each row once")
        return self


class AdaptationConfig(BaseModel):
    """The ``adaptation:`` section of an experiment (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = "miou"
    #: max | min; default: min for error-like columns (LOWER_IS_BETTER), else max.
    goal: Literal["max", "min"] | None = None
    #: The budget: mean channel uses per image (HARQ retransmissions counted), or the
    #: same per pixel of the image. Exactly one.
    budget_cu: PositiveInt | None = None
    budget_cu_per_pixel: PositiveFloat | None = None
    mcs: McsCandidates

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        from semcomm.runner.config import did_you_mean

        valid = metric_columns()
        if metric not in valid:
            raise ValueError(f"metric {metric!r} is not a summary column; "
                             f"{did_you_mean(metric, valid)}choose one of {', '.join(valid)}")
        return metric

    @model_validator(mode="after")
    def _one_budget(self) -> AdaptationConfig:
        if (self.budget_cu is None) == (self.budget_cu_per_pixel is None):
            raise ValueError("give exactly one of budget_cu (channel uses per image) and "
                             "budget_cu_per_pixel")
        return self

    @property
    def resolved_goal(self) -> str:
        if self.goal is not None:
            return self.goal
        base = self.metric.removesuffix("_lo").removesuffix("_hi")
        return "min" if base in LOWER_IS_BETTER else "max"

    @property
    def budget(self) -> float:
        """The budget in its own unit (channel uses per image, or per pixel)."""
        return float(self.budget_cu if self.budget_cu is not None
                     else self.budget_cu_per_pixel)  # type: ignore[arg-type]

    @property
    def budget_unit(self) -> str:
        return "cu" if self.budget_cu is not None else "cu/px"


# --------------------------------------------------------------------------- config


def candidate_label(family: str, index: int) -> str:
    """Codec label of one candidate: the codec entry's label and the MCS row."""
    return f"{family}@mcs{index}"


def _override(table: str, index: int) -> dict[str, Any]:
    # The run link's modulation gives way to the row's (codec_links keeps keys the
    # override does not name, and LinkConfig refuses a modulation the row contradicts).
    return {"mcs_table": table, "mcs_index": index, "modulation": decode_mcs(table, index)[0]}


def check_experiment(exp: Experiment) -> None:
    """What ``adaptation:`` needs of the rest of the experiment; ValueError with an
    ``@key.path: message`` the loader reports as one line."""
    from semcomm.codecs.registry import codec_factory
    from semcomm.runner.config import _check_packet_bytes, codec_links

    ad = exp.adaptation
    assert ad is not None
    if not exp.links:
        raise ValueError("@adaptation: needs links (the channels to adapt over)")
    if exp.snr is not None and exp.snr.kind != "esno":
        raise ValueError("@adaptation: compares MCS rows at one channel SNR; give "
                         "snr.esno_db, not ebno_db (Eb/N0 differs per row)")
    for i, c in enumerate(exp.codecs):
        if c.link is not None:
            raise ValueError(f"@codecs[{i}].link: cannot be combined with adaptation (its "
                             "MCS rows replace the codec's modulation and code)")
        if getattr(codec_factory(c.name), "payload_kind", "bytes") == "symbols":
            raise ValueError(f"@codecs[{i}].name: {c.name!r} sends complex symbols, not "
                             "bits: it has no MCS to adapt (leave it out of this run)")
        if "@mcs" in c.display:
            raise ValueError(f"@codecs[{i}].label: {c.display!r}: '@mcs' is reserved for "
                             "the adaptation candidates")
        for index in ad.mcs.indices:
            own = codec_links(exp.links, _override(ad.mcs.table, index), i)
            _check_packet_bytes(i, c, own)


def expand(exp: Experiment) -> Experiment:
    """The experiment the sweep runs: each codec entry once per MCS row of
    ``adaptation.mcs`` (label ``<label>@mcs<i>``, its own ``link:`` the row), without
    the ``adaptation`` section; ``exp`` itself when it has none."""
    from semcomm.runner.config import Experiment

    ad = exp.adaptation
    if ad is None:
        return exp
    data = exp.model_dump(mode="json")
    data["adaptation"] = None
    data["codecs"] = [
        {**c, "label": candidate_label(c["label"] or c["name"], index),
         "link": _override(ad.mcs.table, index)}
        for c in data["codecs"] for index in ad.mcs.indices]
    return Experiment.model_validate(data)


# --------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class Candidate:
    """One (MCS row, codec rate) of a codec family at one (link, SNR) point.

    ``cost``: mean channel uses per image in the budget's unit (retransmissions
    counted); ``rate_order``: the rate's position in the codec entry (tie-break);
    ``row``: the summary row it came from (not compared)."""

    family: str
    link: str
    snr_db: float
    mcs_index: int
    rate: str
    rate_order: int
    metric: float
    cost: float
    row: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Choice:
    """The pick at one (family, link, SNR): ``status`` chosen | infeasible | no_metric;
    ``best`` None unless chosen; ``feasible`` of ``total`` candidates fit the budget."""

    family: str
    link: str
    snr_db: float
    status: str
    best: Candidate | None
    feasible: int
    total: int


def _rank(c: Candidate, goal: str) -> tuple[float, float, int, int]:
    """Sort key, smallest best: metric, then cost, MCS index, rate order."""
    return (-c.metric if goal == "max" else c.metric, c.cost, c.mcs_index, c.rate_order)


def select(candidates: Iterable[Candidate], budget: float, goal: str = "max"
           ) -> list[Choice]:
    """One :class:`Choice` per (family, link, SNR) of ``candidates``: the best feasible
    candidate (cost <= budget) by the module's rule. Families and links in the order
    they first appear, SNRs ascending."""
    if goal not in ("max", "min"):
        raise ValueError(f"goal {goal!r} must be 'max' or 'min'")
    if not (math.isfinite(budget) and budget > 0):
        raise ValueError(f"budget {budget!r} must be a positive finite number")
    groups: dict[tuple[str, str, float], list[Candidate]] = {}
    for c in candidates:
        groups.setdefault((c.family, c.link, c.snr_db), []).append(c)
    families = list(dict.fromkeys(k[0] for k in groups))
    links = list(dict.fromkeys(k[1] for k in groups))
    out = []
    for key in sorted(groups, key=lambda k: (families.index(k[0]), links.index(k[1]), k[2])):
        group = groups[key]
        fits = [c for c in group if c.cost <= budget * (1 + 1e-9)]
        scored = [c for c in fits if math.isfinite(c.metric)]
        best = min(scored, key=lambda c: _rank(c, goal)) if scored else None
        status = "chosen" if best else ("no_metric" if fits else "infeasible")
        out.append(Choice(*key, status, best, len(fits), len(group)))
    return out


# --------------------------------------------------------------------------- run files


def _num(value: Any) -> float:
    return math.nan if value is None or value == "" else float(value)


def candidate_map(exp: Experiment) -> dict[str, tuple[str, int]]:
    """Candidate codec label -> (family label, MCS index)."""
    assert exp.adaptation is not None
    return {candidate_label(c.display, i): (c.display, i)
            for c in exp.codecs for i in exp.adaptation.mcs.indices}


def _cost(row: Mapping[str, Any], unit: str) -> float:
    """Mean channel uses per image (retransmissions counted), or per pixel."""
    uses = _num(row.get("channel_uses"))
    effective = _num(row.get("effective_channel_uses"))
    effective = uses if math.isnan(effective) else effective
    if unit == "cu":
        return effective
    return effective * _num(row.get("cu_per_pixel")) / uses if uses > 0 else math.nan


def candidates_from_rows(rows: Iterable[Mapping[str, Any]], families: Mapping[str, list[str]],
                         labels: Mapping[str, tuple[str, int]], metric: str, unit: str
                         ) -> list[Candidate]:
    """The link rows of the candidates as :class:`Candidate` s. ``families``: family ->
    its rate labels in YAML order; ``labels``: candidate codec label -> (family, index)."""
    out = []
    for r in rows:
        if r.get("kind") != "link" or r.get("codec") not in labels:
            continue
        family, index = labels[r["codec"]]
        rates = families[family]
        out.append(Candidate(family, r["link"], float(r["snr_db"]), index, r["rate"],
                             rates.index(r["rate"]) if r["rate"] in rates else len(rates),
                             _num(r.get(metric)), _cost(r, unit), row=r))
    return out


def operating_label(mcs_index: int, rate: str) -> str:
    """'MCS 9 / 0.05 bpp' (rate labels bpp=0.05, knob=50, cu/px=0.1)."""
    kind, _, value = rate.partition("=")
    return f"MCS {mcs_index} / " + (f"{value} {kind}" if kind in ("bpp", "cu/px")
                                     else f"{kind} {value}")


def choice_record(ch: Choice, metric: str, table: str) -> dict[str, Any]:
    """One row of adaptation.csv / summary.json["adaptation"]["choices"]."""
    rec: dict[str, Any] = {"family": ch.family, "link": ch.link, "snr_db": ch.snr_db,
                           "status": ch.status, "metric": metric, "feasible": ch.feasible,
                           "candidates": ch.total}
    if ch.best is None:
        return rec
    b, row = ch.best, ch.best.row or {}
    modulation, rate = decode_mcs(table, b.mcs_index)
    rec.update(label=operating_label(b.mcs_index, b.rate), mcs_index=b.mcs_index,
               modulation=modulation, code_rate=round(rate, 6), rate=b.rate, value=b.metric,
               value_lo=row.get(f"{metric}_lo"), value_hi=row.get(f"{metric}_hi"),
               effective_channel_uses=row.get("effective_channel_uses",
                                              row.get("channel_uses")),
               cu_per_pixel=row.get("cu_per_pixel"), bler=row.get("bler"))
    return rec


def section(exp: Experiment, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """``summary.json["adaptation"]``: the settings, the candidates and the choices."""
    ad = exp.adaptation
    if ad is None:
        return None
    from semcomm.runner.sweep import RateSpec

    families = {c.display: [RateSpec(k, v).label for k, v in c.rate_specs()]
                for c in exp.codecs}
    labels = candidate_map(exp)
    cands = candidates_from_rows(rows, families, labels, ad.metric, ad.budget_unit)
    choices = select(cands, ad.budget, ad.resolved_goal)
    return {"metric": ad.metric, "goal": ad.resolved_goal, "budget": ad.budget,
            "budget_unit": ad.budget_unit, "mcs_table": ad.mcs.table,
            "mcs_indices": list(ad.mcs.indices), "families": list(families),
            "candidates": {k: list(v) for k, v in labels.items()},
            "choices": [choice_record(ch, ad.metric, ad.mcs.table) for ch in choices]}


def write_csv(sec: Mapping[str, Any], path: Path) -> None:
    """adaptation.csv: one row per (family, link, SNR), :data:`CSV_COLUMNS`."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for rec in sec["choices"]:
            writer.writerow({k: _cell(rec.get(k)) for k in CSV_COLUMNS})


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value


# --------------------------------------------------------------------------- figure


def plot(rows: list[dict[str, Any]], sec: Mapping[str, Any], out_dir: Path,
         cfg: PlotsConfig, snr_label: str) -> list[Path]:
    """``adaptation``: one panel per run link; per codec family its candidates (thin,
    faint) and their envelope, the chosen pair at each SNR (thick), labelled where the
    choice changes; points with no feasible pair as grey crosses on the axis."""
    import matplotlib.pyplot as plt

    from semcomm.runner.plots import (
        _DEFAULT_LABELS,
        _label,
        _legend_outside,
        _save,
        codec_styles,
    )

    choices = sec["choices"]
    panels = list(dict.fromkeys(c["link"] for c in choices))
    if not panels:
        return []
    metric = sec["metric"]
    styles = codec_styles(sec["families"])
    labels = {k: tuple(v) for k, v in sec["candidates"].items()}
    unit = "cu/px" if sec["budget_unit"] == "cu/px" else "cu per image"
    with plt.style.context(cfg.style):
        # wider and taller panels than the curve figures: room for the labels
        fig, axes = plt.subplots(1, len(panels), figsize=(1.3 * cfg.figsize[0] * len(panels),
                                                          1.15 * cfg.figsize[1]),
                                 squeeze=False, sharey=True)
        for ax, link in zip(axes[0], panels, strict=True):
            for j, family in enumerate(sec["families"]):
                colour, marker = styles[family]
                _draw_candidates(ax, rows, labels, (family, link), sec, colour)
                pts = [c for c in choices if c["family"] == family and c["link"] == link]
                _draw_envelope(ax, pts, colour, marker, family, j)
            ax.set_title(f"{link}: {sec['goal']} {metric} within {sec['budget']:g} {unit}",
                         fontsize=9)
            ax.set_xlabel(_label(cfg, "snr", snr_label))
            ax.grid(alpha=0.3)
            ax.margins(y=0.12)
        axes[0][0].set_ylabel(_label(cfg, metric, _DEFAULT_LABELS.get(metric, metric)))
        axes[0][0].plot([], [], color="0.4", lw=0.6, alpha=0.5,
                        label="candidates within budget")
        axes[0][0].plot([], [], ls="none", marker="x", color="0.4", label="no feasible pair")
        _legend_outside(axes)
    return _save(fig, out_dir, "adaptation", cfg)


def _draw_candidates(ax: Any, rows: list[dict[str, Any]], labels: Mapping[str, tuple],
                     where: tuple[str, str], sec: Mapping[str, Any], colour: Any) -> None:
    """Thin lines: each candidate of ``where`` = (family, link), drawn only at the SNRs
    where it fits the budget (so the thick line is their upper envelope)."""
    family, link = where
    curves: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in rows:
        if (r.get("kind") == "link" and r["link"] == link and r["codec"] in labels
                and labels[r["codec"]][0] == family):
            fits = _cost(r, sec["budget_unit"]) <= sec["budget"] * (1 + 1e-9)
            curves.setdefault((r["codec"], r["rate"]), []).append(
                (float(r["snr_db"]), _num(r.get(sec["metric"])) if fits else math.nan))
    for pts in curves.values():
        xs, ys = zip(*sorted(pts), strict=True)
        ax.plot(xs, ys, color=colour, lw=0.6, alpha=0.35)


def _draw_envelope(ax: Any, pts: list[Mapping[str, Any]], colour: Any, marker: str,
                   family: str, j: int) -> None:
    chosen = [p for p in pts if p["status"] == "chosen"]
    if chosen:
        ax.plot([p["snr_db"] for p in chosen], [p["value"] for p in chosen], color=colour,
                marker=marker, ms=4, lw=1.8, label=f"{family} (envelope)")
    # Label each change of choice; consecutive labels step through three heights (and
    # families alternate above and below the line) so that neighbours do not overlap.
    previous, k = None, 0
    last = max((p["snr_db"] for p in pts), default=math.nan)
    for p in chosen:
        if p["label"] != previous:
            dy = 4 + 8 * (k % 3)
            end = p["snr_db"] == last  # the last point's label ends at it (legend side)
            ax.annotate(p["label"], (p["snr_db"], p["value"]), fontsize=6, color=colour,
                        xytext=(-2 if end else 2, dy if j % 2 == 0 else -dy - 6),
                        textcoords="offset points", ha="right" if end else "left")
            previous, k = p["label"], k + 1
    missing = [p["snr_db"] for p in pts if p["status"] != "chosen"]
    if missing:
        ax.plot(missing, [0.03] * len(missing), ls="none", marker="x", color=colour,
                transform=ax.get_xaxis_transform(), clip_on=False)
