"""The trainer: exact resume, wall-time mode, and the model file it writes."""

from __future__ import annotations

from pathlib import Path

import torch

from semcomm.codecs.deepjscc.codec import DeepJSCCCodec, load_model
from semcomm.codecs.deepjscc.train import draw_step, train
from tests.codecs.deepjscc.conftest import tiny_config


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def test_resume_is_the_run_that_never_stopped(tmp_path: Path) -> None:
    """4 steps straight == 3 steps, killed, resumed to 4 (bit for bit); the runs did
    change the weights (not vacuous)."""
    cfg = tiny_config()
    train(cfg, tmp_path / "a")
    train(cfg, tmp_path / "b", stop_at=3)
    mid = _state(tmp_path / "b" / "ckpt.pt")
    train(cfg, tmp_path / "b")
    a, b = _state(tmp_path / "a" / "ckpt.pt"), _state(tmp_path / "b" / "ckpt.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], mid[k]) for k in a)
    log = (tmp_path / "b" / "log.jsonl").read_text().splitlines()
    assert len([ln for ln in log if '"loss"' in ln]) == 4  # none lost or doubled


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
