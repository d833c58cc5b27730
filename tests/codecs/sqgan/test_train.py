"""Trainer: 3-step smoke test per stage, exact resume, model file, CLI."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from semcomm.codecs.sqgan.config import config_from_dict, load_config
from semcomm.codecs.sqgan.train import (
    Trainer,
    batch_indices,
    configure,
    load_model,
    lr_at,
    run,
    sample_mask_fraction,
)
from semcomm.data.types import Sample

from .conftest import tiny_config, tiny_dict


def _equal_states(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_schedules_and_sampling() -> None:
    assert lr_at(0, 100, 1.0, 0.0, 10) == pytest.approx(0.1)
    assert lr_at(10, 100, 1.0, 0.0, 10) == pytest.approx(1.0)
    assert lr_at(100, 100, 1.0, 0.1, 10) == pytest.approx(0.1)
    fr = (0.05, 0.2875, 0.525, 0.7625, 1.0)
    draws = [sample_mask_fraction(np.random.default_rng(i), fr, -0.95, 0.4) for i in range(400)]
    assert set(draws) <= set(fr)
    # LogNormal(-0.95, 0.4) has median 0.387: the two middle-low values dominate.
    share = sum(d in (0.2875, 0.525) for d in draws) / len(draws)
    assert share > 0.6
    idx = [i for step in range(3) for i in batch_indices(6, 2, step, 0, "img")]
    assert sorted(idx) == list(range(6))  # one epoch visits every image once


@pytest.mark.parametrize("stage", ["ssm", "img", "all"])
def test_three_training_steps_per_stage(stage: str, samples: list[Sample]) -> None:
    trainer = Trainer(tiny_config(), stage, samples, seed=0)
    frozen = {k: v.clone() for k, v in trainer.model.semantic.state_dict().items()}
    before = {k: v.clone() for k, v in trainer.branch.state_dict().items()}
    for _ in range(3):
        res = trainer.train_step()
        assert all(math.isfinite(v) for v in res.logs.values()), res.logs
        assert {"rec", "d", "g"} <= set(res.logs)
    assert trainer.step == 3
    after = trainer.branch.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # it did learn
    if stage == "all":  # G_s is frozen in stage 3: weights and EMA codebook untouched
        assert _equal_states(frozen, trainer.model.semantic.state_dict())


def test_resume_continues_exactly(tmp_path: Path, samples: list[Sample]) -> None:
    cfg = tiny_config()
    straight = Trainer(cfg, "img", samples, seed=3)
    for _ in range(3):
        straight.train_step()
    first = Trainer(cfg, "img", samples, seed=3)
    for _ in range(2):
        first.train_step()
    first.save(tmp_path / "last.pt")
    resumed = Trainer(cfg, "img", samples, seed=3)
    resumed.resume(tmp_path / "last.pt")
    assert resumed.step == 2
    assert _equal_states(resumed.model.state_dict(), first.model.state_dict())
    resumed.train_step()
    assert resumed.step == 3
    assert _equal_states(resumed.model.state_dict(), straight.model.state_dict())
    assert _equal_states(resumed.loss.disc.state_dict(), straight.loss.disc.state_dict())
    with pytest.raises(ValueError, match="'ssm' training checkpoint"):
        Trainer(cfg, "ssm", samples).resume(tmp_path / "last.pt")


def test_fit_writes_loadable_model_file(tmp_path: Path, samples: list[Sample]) -> None:
    trainer = Trainer(tiny_config(steps={"ssm": 2, "img": 2, "all": 2}), "ssm", samples)
    path = trainer.fit(tmp_path / "ssm", progress=False, table_images=4)
    log = [json.loads(ln) for ln in (tmp_path / "ssm" / "loss_log.jsonl").read_text().splitlines()]
    assert [d["step"] for d in log] == [0, 1]
    bundle = load_model(path)  # weights_only=True inside
    assert not bundle.model.training and bundle.meta["step"] == 2
    for name in ("image", "semantic"):
        counts = bundle.index_counts[name]
        assert counts.shape == (32,) and counts.dtype == torch.int64
        # 4 images x 5 kept fractions x floor(m * 128) kept positions each
        assert int(counts.sum()) == 4 * sum(math.floor(m * 128 + 1e-9)
                                            for m in (0.05, 0.2875, 0.525, 0.7625, 1.0))
    assert _equal_states(bundle.model.state_dict(), trainer.model.state_dict())
    # The next stage starts from it.
    nxt = Trainer(tiny_config(), "img", samples)
    nxt.init_from(path)
    assert _equal_states(nxt.model.semantic.state_dict(), trainer.model.semantic.state_dict())
    # G_s alone from another file: the image branch stays as it was.
    torch.manual_seed(5)
    other = Trainer(tiny_config(), "img", samples)
    image_before = {k: v.clone() for k, v in other.model.image.state_dict().items()}
    assert not _equal_states(other.model.semantic.state_dict(),
                             trainer.model.semantic.state_dict())
    other.init_from(path, branch="semantic")
    assert _equal_states(other.model.semantic.state_dict(), trainer.model.semantic.state_dict())
    assert _equal_states(other.model.image.state_dict(), image_before)
    with pytest.raises(ValueError, match="branch"):
        other.init_from(path, branch="x")


def _cli(tmp_path: Path, **train: Any) -> tuple[argparse.ArgumentParser, Path]:
    """The ``semcomm train sqgan`` parser and a tiny config file in ``tmp_path``."""
    import yaml

    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_dict(train_count=4, **train)))
    parser = argparse.ArgumentParser()
    configure(parser)
    return parser, cfg_path


def test_cli_trains_and_resumes(tmp_path: Path) -> None:
    parser, cfg_path = _cli(tmp_path)
    argv = ["--stage", "ssm", "--config", str(cfg_path), "--out", str(tmp_path / "run"),
            "--no-progress", "--table-images", "2", "--device", "cpu"]
    assert run(parser.parse_args([*argv, "--steps", "2"])) == 0
    ckpt = torch.load(tmp_path / "run" / "ssm" / "last.pt", weights_only=True)
    assert ckpt["step"] == 2
    with pytest.warns(UserWarning, match="resuming ssm from step 2"):
        assert run(parser.parse_args([*argv, "--steps", "3"])) == 0
    lines = (tmp_path / "run" / "ssm" / "loss_log.jsonl").read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in lines] == [0, 1, 2]
    assert (tmp_path / "run" / "ssm" / "model.pt").is_file()


def test_stop_at_pauses_the_schedule_and_resuming_continues_it(tmp_path: Path) -> None:
    parser, cfg_path = _cli(tmp_path, log_every=1)

    def lrs(out: Path) -> list[float]:
        return [json.loads(ln)["lr"]
                for ln in (out / "ssm" / "loss_log.jsonl").read_text().splitlines()]

    common = ["--stage", "ssm", "--config", str(cfg_path), "--no-progress",
              "--table-images", "2", "--device", "cpu", "--steps", "4"]
    assert run(parser.parse_args([*common, "--out", str(tmp_path / "full")])) == 0
    paused = str(tmp_path / "paused")
    assert run(parser.parse_args([*common, "--out", paused, "--stop-at", "2"])) == 0
    assert torch.load(tmp_path / "paused" / "ssm" / "last.pt", weights_only=True)["step"] == 2
    assert (tmp_path / "paused" / "ssm" / "model.pt").is_file()
    assert lrs(tmp_path / "paused") == lrs(tmp_path / "full")[:2]
    with pytest.warns(UserWarning, match="resuming ssm from step 2"):
        assert run(parser.parse_args([*common, "--out", paused])) == 0
    assert lrs(tmp_path / "paused") == lrs(tmp_path / "full")
    full = torch.load(tmp_path / "full" / "ssm" / "last.pt", weights_only=True)["model"]
    again = torch.load(tmp_path / "paused" / "ssm" / "last.pt", weights_only=True)["model"]
    assert _equal_states(full, again)
    assert run(parser.parse_args([*common, "--out", paused, "--stop-at", "-1"])) == 2


def test_stage_all_continues_the_img_run(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """``--continue-from img/last.pt``: stage all starts at the img run's step with its
    weights, discriminator and optimiser state (Adam's step count goes on), and its own
    checkpoints then resume as usual."""
    parser, cfg_path = _cli(tmp_path, log_every=1)
    common = ["--config", str(cfg_path), "--no-progress", "--table-images", "2",
              "--device", "cpu", "--out", str(tmp_path / "run")]
    assert run(parser.parse_args(["--stage", "img", *common, "--steps", "2"])) == 0
    img_last = tmp_path / "run" / "img" / "last.pt"
    img = torch.load(img_last, weights_only=True)
    cont = ["--stage", "all", *common, "--continue-from", str(img_last), "--steps", "4"]
    assert run(parser.parse_args([*cont, "--stop-at", "3"])) == 0
    ckpt = torch.load(tmp_path / "run" / "all" / "last.pt", weights_only=True)
    assert ckpt["stage"] == "all" and ckpt["step"] == 3

    def adam_steps(state: dict[str, Any]) -> set[float]:
        return {float(v["step"]) for v in state["opt_g"]["state"].values()}

    assert adam_steps(img) == {2.0} and adam_steps(ckpt) == {3.0}  # not a fresh optimiser
    with pytest.warns(UserWarning, match="resuming all from step 3"):
        assert run(parser.parse_args(cont)) == 0
    lines = (tmp_path / "run" / "all" / "loss_log.jsonl").read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in lines] == [2, 3]
    capsys.readouterr()
    for bad in (["--stage", "img", *common, "--continue-from", str(img_last)],
                [*cont, "--init", str(tmp_path / "run" / "img" / "model.pt")]):
        assert run(parser.parse_args(bad)) == 2
        assert "--continue-from" in capsys.readouterr().err
    not_img = ["--stage", "all", *common[:-1], str(tmp_path / "other"), "--continue-from",
               str(tmp_path / "run" / "all" / "last.pt")]
    assert run(parser.parse_args(not_img)) == 2
    assert "stage 'all'" in capsys.readouterr().err
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    assert run(parser.parse_args([*not_img[:-1], str(garbage)])) == 2
    assert "not a model file" in capsys.readouterr().err


def test_cli_overrides_reach_the_stored_config(tmp_path: Path) -> None:
    from semcomm.codecs.sqgan.train import _overridden

    parser, cfg_path = _cli(tmp_path)
    argv = ["--stage", "ssm", "--config", str(cfg_path), "--out", str(tmp_path / "run"),
            "--no-progress", "--table-images", "2", "--device", "cpu", "--steps", "1",
            "--lr", "6e-4", "--disc-start", "7", "--batch-size", "3"]
    assert run(parser.parse_args(argv)) == 0
    stored = torch.load(tmp_path / "run" / "ssm" / "last.pt", weights_only=True)["config"]
    assert stored["train"]["lr"] == 6e-4
    assert stored["train"]["disc_start"] == 7
    assert stored["train"]["batch_size"] == 3
    assert stored["train"]["steps"]["ssm"] == 1
    bad = parser.parse_args([*argv[:-6], "--lr", "-1"])
    with pytest.raises(ValueError, match="lr -1.0 > 0"):
        _overridden(load_config(str(cfg_path)), bad)
    bad = parser.parse_args([*argv[:-6], "--disc-start", "-2"])
    with pytest.raises(ValueError, match="disc_start -2 .* must be >= 0"):
        _overridden(load_config(str(cfg_path)), bad)


def test_config_errors_name_the_key() -> None:
    d = tiny_dict()
    d["train"]["batchsize"] = 4
    with pytest.raises(ValueError, match="nearest valid key: 'train.batch_size'"):
        config_from_dict(d, source="x.yaml")
    d = tiny_dict(l1_class_weights={"trafic light": 1.0})
    with pytest.raises(ValueError, match="did you mean 'traffic light'"):
        config_from_dict(d)
    d = tiny_dict(blend_alpha=1.5)
    with pytest.raises(ValueError, match=r"blend_alpha 1.5 outside \[0, 1\]"):
        config_from_dict(d)
