"""DeepJSCC through the experiment runner: symbol payloads over the links' analog twins."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from semcomm.codecs.deepjscc.train import train
from semcomm.runner.config import resolve
from semcomm.runner.run import run_experiment
from semcomm.runner.sweep import transmission_seed
from tests.codecs.deepjscc.conftest import tiny_config


def _experiment(tmp_path: Path, **rates: Any) -> Any:
    model = train(tiny_config(steps=1, val_images=0), tmp_path / "model")
    return resolve({
        "name": "analog", "dataset": {"count": 2, "size": [32, 64], "split": "test"},
        "segmenter": {"name": "ground-truth"},
        "codecs": [{"name": "deepjscc", "params": {"checkpoint": str(model)}, **rates}],
        "links": [{"modulation": "qpsk", "code_rate": 0.5, "k": 256,
                   "channel": ["awgn", "rayleigh-block"]}],
        "snr": {"esno_db": [0, 10]}, "metrics": {"ms_ssim": False, "bootstrap": 20},
        "failure": {"policy": "grey"}})


def test_sweep_sends_symbols_and_reports_channel_uses(tmp_path: Path) -> None:
    run = run_experiment(_experiment(tmp_path, bandwidth_ratio=[0.125]), tmp_path / "out",
                         progress=False)
    with open(run.run_dir / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    link = [r for r in rows if r["kind"] == "link"]
    assert len(link) == 4 and {r["rate"] for r in link} == {"cu/px=0.125"}
    for r in link:  # exactly r * H * W symbols; no bits, blocks or bpp
        assert float(r["cu_per_pixel"]) == 0.125 and float(r["channel_uses"]) == 256
        assert r["ber"] == r["bler"] == r["outage"] == r["bpp"] == ""
        assert r["failed"] == "0" and float(r["psnr"]) > 0
    assert [r["rate"] for r in rows if r["kind"] == "error-free"] == ["knob=0.125"]
    lines = [json.loads(t) for t in (run.run_dir / "points.jsonl").read_text().splitlines()]
    link_lines = [ln for ln in lines if ln["kind"] == "link"]
    assert len(link_lines) == 8 and all(ln["payload"] == "symbols" for ln in link_lines)
    for ln in link_lines:  # the digital codecs' seeds: same noise and fading draws
        assert ln["seed"] == transmission_seed(0, ln["image"], ln["link"], ln["snr_db"], 0)


def test_bpp_target_or_unknown_ratio_is_refused_before_compute(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sends complex symbols, not bits"):
        run_experiment(_experiment(tmp_path, bpp=[0.5]), tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="bandwidth ratio 0.3 not available"):
        run_experiment(_experiment(tmp_path, bandwidth_ratio=[0.3]), tmp_path / "b",
                       progress=False)
