"""Link adaptation: the pure selection against a brute-force argmax on random metric
tables (ties and infeasible points included), the config checks, and one tiny run that
must write the choice table, the summary section and the envelope figure."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from semcomm.runner import adaptation
from semcomm.runner.adaptation import Candidate, select
from semcomm.runner.config import ConfigError, load_experiment

# --------------------------------------------------------------------------- selection


def _random_table(rng: np.random.Generator, n_mcs: int = 4, n_rates: int = 3
                  ) -> list[Candidate]:
    """Families x links x SNRs x MCS x rates with coarse metrics and costs (many exact
    ties), some NaN metrics."""
    out = []
    for family in ("jpeg", "sqgan"):
        for link in ("awgn", "rayleigh-block"):
            for snr in (0.0, 5.0, 10.0):
                for m in rng.choice(28, n_mcs, replace=False):
                    for r in range(n_rates):
                        metric = float(np.round(rng.uniform(0, 1), 1))
                        if rng.uniform() < 0.1:
                            metric = math.nan
                        cost = float(rng.choice([2000, 4000, 6000, 8000, 12000]))
                        out.append(Candidate(family, link, snr, int(m), f"bpp={r}", r,
                                             metric, cost))
    order = rng.permutation(len(out))  # row order must not matter
    return [out[i] for i in order]


def _better(a: Candidate, b: Candidate | None, goal: str) -> bool:
    """Brute-force comparison written out rule by rule (not the module's sort key)."""
    if b is None:
        return True
    if a.metric != b.metric:
        return a.metric > b.metric if goal == "max" else a.metric < b.metric
    if a.cost != b.cost:
        return a.cost < b.cost
    if a.mcs_index != b.mcs_index:
        return a.mcs_index < b.mcs_index
    return a.rate_order < b.rate_order


def _brute_force(cands: list[Candidate], budget: float, goal: str
                 ) -> dict[tuple[str, str, float], tuple[str, Candidate | None]]:
    out: dict[tuple[str, str, float], tuple[str, Candidate | None]] = {}
    for key in {(c.family, c.link, c.snr_db) for c in cands}:
        group = [c for c in cands if (c.family, c.link, c.snr_db) == key]
        best = None
        for c in group:
            if c.cost <= budget and not math.isnan(c.metric) and _better(c, best, goal):
                best = c
        fits = any(c.cost <= budget for c in group)
        out[key] = ("chosen" if best else "no_metric" if fits else "infeasible", best)
    return out


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("goal", ["max", "min"])
def test_select_equals_brute_force_argmax(seed: int, goal: str) -> None:
    rng = np.random.default_rng(seed)
    cands = _random_table(rng)
    budget = float(rng.choice([1000, 3000, 5000, 9000]))
    choices = select(cands, budget, goal)
    expected = _brute_force(cands, budget, goal)
    assert len(choices) == len(expected) == 2 * 2 * 3  # every point reported, none dropped
    for ch in choices:
        status, best = expected[(ch.family, ch.link, ch.snr_db)]
        assert ch.status == status
        assert ch.best == best
        group = [c for c in cands if (c.family, c.link, c.snr_db) ==
                 (ch.family, ch.link, ch.snr_db)]
        assert ch.total == len(group)
        assert ch.feasible == sum(c.cost <= budget for c in group)


def test_random_tables_exercise_every_rule() -> None:
    """The brute-force test is not vacuous: over its tables there are exact metric ties
    among feasible candidates, infeasible points and chosen points."""
    statuses, ties = set(), 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        cands = _random_table(rng)
        budget = float(rng.choice([1000, 3000, 5000, 9000]))
        for ch in select(cands, budget):
            statuses.add(ch.status)
            if ch.best is not None:
                ties += sum(c.metric == ch.best.metric and c.cost <= budget
                            for c in cands if (c.family, c.link, c.snr_db) ==
                            (ch.family, ch.link, ch.snr_db)) > 1
    assert {"chosen", "infeasible"} <= statuses
    assert ties > 10


def test_ties_go_to_fewest_channel_uses_then_lowest_mcs() -> None:
    def cand(mcs: int, rate: int, metric: float, cost: float) -> Candidate:
        return Candidate("jpeg", "awgn", 10.0, mcs, f"bpp={rate}", rate, metric, cost)

    cands = [cand(17, 0, 0.5, 3000), cand(9, 0, 0.5, 5000), cand(4, 1, 0.5, 3000),
             cand(2, 0, 0.7, 9000)]
    (ch,) = select(cands, budget=8000)
    assert (ch.best.mcs_index, ch.best.cost) == (4, 3000)  # type: ignore[union-attr]
    (none,) = select(cands, budget=100)
    assert none.status == "infeasible" and none.best is None and none.feasible == 0
    (nan,) = select([cand(4, 0, math.nan, 10)], budget=100)
    assert nan.status == "no_metric" and nan.feasible == 1


def test_select_refuses_bad_goal_and_budget() -> None:
    with pytest.raises(ValueError, match="goal 'best'"):
        select([], 1.0, "best")
    with pytest.raises(ValueError, match="budget -1"):
        select([], -1.0)


def test_operating_labels() -> None:
    assert adaptation.operating_label(9, "bpp=0.05") == "MCS 9 / 0.05 bpp"
    assert adaptation.operating_label(4, "knob=50") == "MCS 4 / knob 50"
    assert adaptation.operating_label(4, "cu/px=0.1") == "MCS 4 / 0.1 cu/px"


# --------------------------------------------------------------------------- config

TINY = """
name: tiny_adapt
dataset: {{count: 2, size: [64, 128]}}
codecs:
  - {{name: jpeg, bpp: [0.5, 1.0]}}
links: [{{name: awgn, channel: awgn}}]
snr: {{esno_db: [0, 8]}}
failure: {{policy: mean, mean_images: 2}}
metrics: {{bootstrap: 50}}
gallery_images: 0
plots: {{formats: [png]}}
adaptation: {adaptation}
"""
GOOD = "{metric: psnr, budget_cu: 10000, mcs: {table: qam64, indices: [4, 13]}}"


def _yaml(tmp_path: Path, adapt: str = GOOD, replace: tuple[str, str] = ("", "")) -> Path:
    path = tmp_path / "adapt.yaml"
    path.write_text(TINY.format(adaptation=adapt).replace(*replace))
    return path


def test_expand_makes_one_candidate_per_mcs_row(tmp_path: Path) -> None:
    exp = load_experiment(_yaml(tmp_path))
    assert exp.adaptation is not None and exp.adaptation.resolved_goal == "max"
    sweep = adaptation.expand(exp)
    assert sweep.adaptation is None and adaptation.expand(sweep) is sweep
    assert [c.display for c in sweep.codecs] == ["jpeg@mcs4", "jpeg@mcs13"]
    assert sweep.codecs[1].link == {"mcs_table": "qam64", "mcs_index": 13,
                                    "modulation": "16qam"}
    assert [c.bpp for c in sweep.codecs] == [[0.5, 1.0], [0.5, 1.0]]


def test_smoke_keeps_first_and_last_mcs_row() -> None:
    from semcomm.runner.config import smoke

    shipped = load_experiment(Path(__file__).parents[2] / "experiments" / "adaptation.yaml")
    assert shipped.adaptation is not None and len(shipped.adaptation.mcs.indices) == 5
    tiny = smoke(shipped).adaptation
    assert tiny is not None and tiny.mcs.indices == [4, 20]


@pytest.mark.parametrize(("adapt", "replace", "message"), [
    ("{metric: mio, budget_cu: 1, mcs: {indices: [4]}}", ("", ""),
     "adaptation.metric: metric 'mio' is not a summary column; did you mean 'miou'?"),
    ("{budget_cu: 1, budget_cu_per_pixel: 0.1, mcs: {indices: [4]}}", ("", ""),
     "adaptation: give exactly one of budget_cu"),
    ("{budget_cu: 1, mcs: {indices: [29]}}", ("", ""),
     "adaptation.mcs: mcs_index 29 must be an int in [0, 28]"),
    ("{budget_cu: 1, mcs: {table: qam16, indices: [2]}}", ("", ""),
     "adaptation.mcs: table 'qam16' not supported"),
    ("{budget_cu: 1, mcs: {indices: [4, 4]}}", ("", ""), "indices [4, 4] repeat"),
    ("{budget_cu: 1, mcs: {indices: [4]}, mertic: psnr}", ("", ""),
     "adaptation.mertic: unknown key; did you mean 'metric'?"),
    (GOOD, ("esno_db", "ebno_db"), "adaptation: compares MCS rows at one channel SNR"),
    (GOOD, ("bpp: [0.5, 1.0]}", "bpp: [0.5], link: {code_rate: 0.5}}"),
     "codecs[0].link: cannot be combined with adaptation"),
    (GOOD, ("{name: jpeg, bpp: [0.5, 1.0]}", "{name: deepjscc, bandwidth_ratio: [0.1]}"),
     "codecs[0].name: 'deepjscc' sends complex symbols"),
    (GOOD, ("links: [{name: awgn, channel: awgn}]", "links: []"), "adaptation: needs links"),
])
def test_bad_adaptation_is_one_line(tmp_path: Path, adapt: str, replace: tuple[str, str],
                                    message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_experiment(_yaml(tmp_path, adapt, replace))
    text = str(err.value)
    assert "\n" not in text and message in text, text


def test_bad_metric_exits_2_before_compute(tmp_path: Path, capsys: pytest.CaptureFixture
                                           ) -> None:
    from semcomm.cli import main

    path = _yaml(tmp_path, "{metric: nope, budget_cu: 1, mcs: {indices: [4]}}")
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "adaptation.metric: metric 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- a run


def test_tiny_run_writes_choice_table_and_envelope(tmp_path: Path) -> None:
    """jpeg, 2 images, MCS 4 (QPSK 0.30) and 13 (16-QAM 0.48) x 0.5 and 1 bpp, 0 and
    8 dB on AWGN, budget 10000 channel uses: 1 bpp at MCS 4 needs ~19000 (infeasible)."""
    from semcomm.runner.plots import replot
    from semcomm.runner.run import run_experiment

    exp = load_experiment(_yaml(tmp_path))
    run_dir = run_experiment(exp, tmp_path / "res", progress=False).run_dir
    for name in ("adaptation.csv", "adaptation.png", "report.html"):
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    with open(run_dir / "adaptation.csv") as fh:
        table = list(csv.DictReader(fh))
    assert [(r["link"], float(r["snr_db"])) for r in table] == [("awgn", 0.0), ("awgn", 8.0)]
    assert len(summary["adaptation"]["choices"]) == 2
    # the choice is the best PSNR among the rows that fit, recomputed from summary rows
    for rec in table:
        rows = [r for r in summary["rows"] if r["kind"] == "link"
                and r["snr_db"] == float(rec["snr_db"])]
        assert len(rows) == 4
        fits = [r for r in rows if r["effective_channel_uses"] <= 10000]
        assert 0 < len(fits) < 4 and int(rec["feasible"]) == len(fits)
        best = max(fits, key=lambda r: r["psnr"])
        assert rec["status"] == "chosen"
        assert float(rec["value"]) == pytest.approx(best["psnr"], rel=1e-5)
        assert f"jpeg@mcs{rec['mcs_index']}" == best["codec"] and rec["rate"] == best["rate"]
    assert "Link adaptation" in (run_dir / "report.html").read_text()
    # --resume reloads config.yaml (the section as written), expands it again and
    # recomputes nothing: the same choice table
    from semcomm.runner.run import load_run_config

    measured = (run_dir / "points.jsonl").read_text()
    again = run_experiment(load_run_config(run_dir), tmp_path / "res", resume_dir=run_dir,
                           progress=False)
    assert (run_dir / "points.jsonl").read_text() == measured
    with open(again.run_dir / "adaptation.csv") as fh:
        assert list(csv.DictReader(fh)) == table
    # a budget nothing fits: every point is reported infeasible, none dropped
    tight = load_experiment(_yaml(tmp_path, GOOD.replace("10000", "100")))
    sec = adaptation.section(tight, summary["rows"])
    assert sec is not None
    assert [c["status"] for c in sec["choices"]] == ["infeasible", "infeasible"]
    assert adaptation.plot(summary["rows"], sec, tmp_path, tight.plots, "Es/N0 [dB]") == [
        tmp_path / "adaptation.png"]  # drawn as crosses, no envelope
    # semcomm plot redraws the envelope from summary.json alone
    paths = replot(run_dir, out_dir=tmp_path / "replot")
    assert tmp_path / "replot" / "adaptation.png" in paths
