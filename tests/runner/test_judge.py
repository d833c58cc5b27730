"""The experiment's judge: the network that scores x_hat, apart from the tx segmenter."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from semcomm.runner.config import judge_name, load_experiment
from semcomm.runner.plots import miou_label
from semcomm.runner.run import run_experiment
from semcomm.runner.sweep import Context
from semcomm.segmentation import JUDGE_PATH

EXP = """
name: judged
dataset: {{count: 2, size: [64, 128]}}
{judge}
codecs:
  - {{name: jpeg, bpp: [1.0]}}
links: [{{modulation: qpsk, code_rate: 0.5, channel: awgn}}]
snr: {{esno_db: [10]}}
metrics: {{bootstrap: 50}}
"""


def _exp(tmp_path: Path, judge: str) -> Path:
    path = tmp_path / "judged.yaml"
    path.write_text(EXP.format(judge=judge))
    return path


def _originals(run_dir: Path) -> list[dict]:
    lines = [json.loads(t) for t in (run_dir / "points.jsonl").read_text().splitlines()]
    return [ln for ln in lines if ln["kind"] == "original"]


def test_ground_truth_judge_scores_originals_perfectly_but_tx_uses_the_segmenter(
        tmp_path: Path) -> None:
    exp = load_experiment(_exp(tmp_path, "judge: {name: ground-truth}"))
    ctx = Context(exp, tmp_path / "ctx")
    assert ctx.judge is not ctx.segmenter and ctx.segmenter.name == "bundled"
    # The transmitter's map is the bundled segmenter's, not the ground truth the judge sees.
    for s, tx in zip(ctx.samples, ctx.tx_labels, strict=True):
        assert tx is not None
        want = ctx.segmenter.segment_uint8(s.image[None], None)[0]
        assert np.array_equal(tx, want) and not np.array_equal(tx, s.labels)
    run = run_experiment(exp, tmp_path / "run", progress=False)
    for line in _originals(run.run_dir):  # ground truth scored against itself
        assert line["correct"] == line["labelled"] > 0


def test_the_judge_is_the_default_and_is_named_in_summary_report_and_axis(
        tmp_path: Path) -> None:
    exp = load_experiment(_exp(tmp_path, ""))  # no judge: key
    assert exp.judge is not None and exp.judge.name == "judge" and exp.scorer.name == "judge"
    run = run_experiment(exp, tmp_path / "run", progress=False)
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["judge"] == "judge"
    assert summary["provenance"]["checkpoints"]["judge"]["path"] == str(JUDGE_PATH.resolve())
    report = (run.run_dir / "report.html").read_text()
    assert "mIoU judged by <code>judge</code>" in report
    assert 'mIoU judge</td><td class="t">judge<' in report
    assert miou_label("judge") == "mIoU (judge on x_hat)"


@pytest.mark.parametrize("judge", ["judge: {name: bundled}", "judge: null"])
def test_bundled_judge_or_null_is_the_tx_segmenter_itself(tmp_path: Path, judge: str) -> None:
    """The old behaviour: one network (shared, with its cache) segments x and scores x_hat."""
    exp = load_experiment(_exp(tmp_path, judge))
    assert exp.scorer == exp.segmenter
    ctx = Context(exp, tmp_path / "ctx")
    assert ctx.judge is ctx.segmenter and ctx.judge.name == "bundled"
    assert judge_name(exp.model_dump(mode="json")) == "bundled"


def test_the_judge_scores_differently_from_the_teacher(tmp_path: Path) -> None:
    """Not vacuous: on the same points the default judge and the bundled one disagree."""
    scores = {}
    for judge in ("", "judge: {name: bundled}"):
        run = run_experiment(load_experiment(_exp(tmp_path, judge)),
                             tmp_path / f"run{len(scores)}", progress=False)
        scores[judge] = sorted(ln["correct"] for ln in _originals(run.run_dir))
    assert scores[""] != scores["judge: {name: bundled}"]


def test_unknown_judge_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="judge"):
        load_experiment(_exp(tmp_path, "judge: {name: deeplab}"))


def test_default_judge_on_another_dataset_warns_and_ground_truth_judge_needs_labels(
        tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    base = (f"name: mine\ndataset: {{name: imagefolder, root: {folder}, size: [64, 128]}}\n"
            "codecs: [{name: jpeg, bpp: [1.0]}]\n")
    path = tmp_path / "mine.yaml"
    path.write_text(base)
    with pytest.warns(UserWarning, match="trained on the built-in street scenes only"):
        load_experiment(path)
    path.write_text(base + "judge: {name: bundled}\n")  # explicit: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_experiment(path)
    path.write_text(base + "judge: {name: ground-truth}\n")
    with pytest.raises(Exception, match="judge 'ground-truth' needs labelled images"):
        load_experiment(path)
