"""The trainer: exact resume, wall-time mode, and the model file it writes."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from semcomm.codecs.deepjscc.codec import DeepJSCCCodec, load_model
from semcomm.codecs.deepjscc.train import configure, draw_step, run, train
from tests.codecs.deepjscc.conftest import tiny_config, tiny_dict

ROOT = Path(__file__).resolve().parents[3]


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def _lines(out: Path) -> list[dict[str, float]]:
    """Log lines without their wall-clock entry."""
    return [{k: v for k, v in json.loads(ln).items() if k != "seconds"}
            for ln in (out / "log.jsonl").read_text().splitlines()]


def _argv(config: Path, out: Path, *extra: str) -> list[str]:
    return ["--config", str(config), "--out", str(out), "--device", "cpu", *extra]


def test_two_plus_two_steps_in_two_processes_equal_four(tmp_path: Path) -> None:
    """4 steps straight == steps 0-1 in a fresh interpreter, then 2-3 here with two
    DataLoader workers (bit for bit: weights, losses, learning rates, channel counts,
    validation PSNR); the second half did change the weights (not vacuous)."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_dict()))
    parser = argparse.ArgumentParser()
    configure(parser)
    assert run(parser.parse_args(_argv(config, tmp_path / "full"))) == 0
    cmd = [sys.executable, "-c", "import sys; from semcomm.cli import main; "
           "sys.exit(main(sys.argv[1:]))", "train", "deepjscc",
           *_argv(config, tmp_path / "split", "--stop-at", "2")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    mid = _state(tmp_path / "split" / "ckpt.pt")
    with pytest.warns(UserWarning, match="from step 2"):
        assert run(parser.parse_args(_argv(config, tmp_path / "split", "--workers", "2"))) == 0
    full, split = _lines(tmp_path / "full"), _lines(tmp_path / "split")
    assert [d["step"] for d in full if "loss" in d] == [1, 2, 3, 4]  # steps done
    assert split == full
    a, b = _state(tmp_path / "full" / "ckpt.pt"), _state(tmp_path / "split" / "ckpt.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], mid[k]) for k in a)


def test_resumed_run_keeps_its_fixed_step_count(tmp_path: Path) -> None:
    """A finished run rerun into its folder trains no further step and keeps its log."""
    cfg = tiny_config()
    train(cfg, tmp_path)
    before = (tmp_path / "log.jsonl").read_text()
    with pytest.warns(UserWarning, match="from step 4"):
        train(cfg, tmp_path)
    assert (tmp_path / "log.jsonl").read_text() == before
    assert torch.load(tmp_path / "ckpt.pt", weights_only=True)["step"] == 4


def test_draws_depend_on_seed_and_step_only() -> None:
    cfg = tiny_config()
    assert draw_step(cfg, 5) == draw_step(cfg, 5)
    assert draw_step(cfg, 5) != draw_step(cfg, 6)
    d = draw_step(cfg, 5)
    assert d.channels in (1, 2) and all(-2.0 <= s <= 22.0 for s in d.esno_db)


def test_model_file_loads_weights_only_and_codes(tmp_path: Path) -> None:
    path = train(tiny_config(steps=2), tmp_path)
    model, cfg, info = load_model(path)
    assert cfg == tiny_config().model and info["train"]["steps"] == 2
    codec = DeepJSCCCodec(path)
    assert codec.ratios == [0.0625, 0.125]
    assert not model.training


def test_wall_time_mode_fixes_steps_and_stops(tmp_path: Path) -> None:
    cfg = tiny_config(steps=10_000, warmup_steps=4)
    train(cfg, tmp_path, max_seconds=3.0)
    ck = torch.load(tmp_path / "ckpt.pt", map_location="cpu", weights_only=True)
    assert ck["meta"]["steps_fixed"] and 4 <= ck["config"]["train"]["steps"] < 10_000
    assert ck["step"] <= ck["config"]["train"]["steps"]
