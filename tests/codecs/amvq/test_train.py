"""Trainer: 3-step smoke test, exact resume, model file and statistics, CLI, config errors."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from semcomm.codecs.amvq.config import config_from_dict, load_config
from semcomm.codecs.amvq.train import (
    VALUE_BINS,
    ConcatDataset,
    Trainer,
    batch_indices,
    build_training_data,
    configure,
    load_model,
    run,
    sample_tau,
)
from semcomm.data.types import Sample

from .conftest import tiny_config, tiny_dict

REPO = Path(__file__).resolve().parents[3]


def _equal_states(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_sampling_and_batches() -> None:
    choices = (0.0, 0.3, 1.0)
    draws = [sample_tau(np.random.default_rng(i), choices) for i in range(300)]
    assert set(draws) == set(choices)
    # Uniform: each value 100 +- 5 sd (sd = sqrt(300 * 1/3 * 2/3) = 8.2).
    assert all(abs(draws.count(c) - 100) < 41 for c in choices)
    idx = [i for step in range(3) for i in batch_indices(6, 2, step, 0)]
    assert sorted(idx) == list(range(6))  # one epoch visits every image once


@pytest.mark.parametrize("commit_floats", [True, False])
def test_three_training_steps(samples: list[Sample], commit_floats: bool) -> None:
    trainer = Trainer(tiny_config(commit_floats=commit_floats), samples, seed=0)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    taus = []
    for _ in range(3):
        res = trainer.train_step()
        taus.append(res.tau)
        assert all(math.isfinite(v) for v in res.logs.values()), res.logs
        assert {"l1", "rec", "vq", "g", "d", "adv_weight", "unquantized"} <= set(res.logs)
    assert trainer.step == 3
    after = trainer.model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert any(k.startswith("encoder.") for k in changed)
    assert any(k.startswith("decoder.") for k in changed)
    assert any("codebook" in k for k in changed) and "float_range" in changed


def test_freeze_encoder_trains_only_the_decoder_from_a_grad_cam_file(
        tmp_path: Path, samples: list[Sample]) -> None:
    """``freeze_encoder``: encoder weights, batch-norm statistics and codebooks stay as
    initialised, the decoder learns; ``--init`` may switch the map to ``layercam``
    (the map has no weights) but not a weight-shaping key."""
    path = Trainer(tiny_config(steps=1), samples).fit(tmp_path / "run", progress=False,
                                                       table_images=2)
    d = tiny_dict(freeze_encoder=True)
    d["model"]["activation"] = "layercam"
    trainer = Trainer(config_from_dict(d), samples)
    trainer.init_from(path)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for _ in range(2):
        res = trainer.train_step()
        assert math.isfinite(res.logs["l1"])
    after = trainer.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert not any(k.startswith(("encoder.", "quantizers.")) for k in changed), changed
    assert any(k.startswith("decoder.") and k.endswith("weight") for k in changed)
    assert all(p.grad is None for p in trainer.model.encoder.parameters())
    d["model"]["code_dim"] = 8
    with pytest.raises(ValueError, match="model config differs"):
        Trainer(config_from_dict(d), samples).init_from(path)


def test_init_except_keeps_fresh_weights_under_a_prefix(tmp_path: Path,
                                                        samples: list[Sample]) -> None:
    """``--init-except quantizers``: a coarser codebook starts from a file's encoder and
    decoder; the codebooks keep their fresh initialisation. A tensor outside the
    excluded prefixes whose shape differs is refused, naming it."""
    path = Trainer(tiny_config(steps=1), samples).fit(tmp_path / "run", progress=False,
                                                       table_images=2)
    source = torch.load(path, weights_only=True)["state_dict"]
    d = tiny_dict()
    d["model"]["codebook_size"] = 8
    with pytest.raises(ValueError, match="model config differs"):
        Trainer(config_from_dict(d), samples).init_from(path)
    trainer = Trainer(config_from_dict(d), samples)
    fresh = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.init_from(path, exclude=["quantizers"])
    state = trainer.model.state_dict()
    assert all(torch.equal(state[k], fresh[k]) for k in state if k.startswith("quantizers."))
    loaded = [k for k in state if k.startswith(("encoder.", "decoder."))]
    assert loaded and all(torch.equal(state[k], source[k]) for k in loaded)
    assert state["quantizers.0.codebook"].shape[0] == 8
    assert math.isfinite(trainer.train_step().logs["l1"])
    d["model"]["code_dim"] = 8  # the encoder's output layer changes shape too
    with pytest.raises(ValueError, match=r"encoder\..* has shape .*add its prefix"):
        Trainer(config_from_dict(d), samples).init_from(path, exclude=["quantizers"])


def test_resume_continues_exactly(tmp_path: Path, samples: list[Sample]) -> None:
    cfg = tiny_config()
    straight = Trainer(cfg, samples, seed=3)
    for _ in range(3):
        straight.train_step()
    first = Trainer(cfg, samples, seed=3)
    for _ in range(2):
        first.train_step()
    first.save(tmp_path / "last.pt")
    resumed = Trainer(cfg, samples, seed=3)
    resumed.resume(tmp_path / "last.pt")
    assert resumed.step == 2
    assert _equal_states(resumed.model.state_dict(), first.model.state_dict())
    resumed.train_step()
    assert resumed.step == 3
    assert _equal_states(resumed.model.state_dict(), straight.model.state_dict())
    assert _equal_states(resumed.loss.disc.state_dict(), straight.loss.disc.state_dict())
    d = tiny_dict()
    d["model"]["code_dim"] = 8
    with pytest.raises(ValueError, match="model config differs"):
        Trainer(config_from_dict(d), samples).resume(tmp_path / "last.pt")


def test_fit_writes_loadable_model_file_with_statistics(tmp_path: Path,
                                                        samples: list[Sample]) -> None:
    cfg = tiny_config(steps=2)
    trainer = Trainer(cfg, samples)
    path = trainer.fit(tmp_path / "run", progress=False, table_images=4)
    log = [json.loads(ln) for ln in (tmp_path / "run" / "loss_log.jsonl").read_text()
           .splitlines()]
    assert [d["step"] for d in log] == [0, 1] and all("tau" in d for d in log)
    bundle = load_model(path)  # weights_only=True inside
    assert not bundle.model.training and bundle.meta["step"] == 2
    assert _equal_states(bundle.model.state_dict(), trainer.model.state_dict())
    d = cfg.model.code_dim
    taus = len(cfg.train.tau_choices)
    assert bundle.index_counts.shape == (2, 32) and bundle.value_counts.shape == (2, VALUE_BINS)
    # Every position of every table image at every tau is counted once: as an index
    # (A <= tau) or as d float values (A > tau).
    per_scale = bundle.index_counts.sum(1) + bundle.value_counts.sum(1) // d
    assert per_scale.tolist() == [4 * taus * 32, 4 * taus * 128]
    assert int(bundle.value_counts.sum()) > 0  # some vectors were unquantized
    lo, hi = bundle.model.float_range[0].tolist()
    assert lo < hi
    nxt = Trainer(cfg, samples)
    nxt.init_from(path)
    assert _equal_states(nxt.model.state_dict(), bundle.model.state_dict())


def test_cli_trains_and_resumes(tmp_path: Path) -> None:
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_dict(data=[{"name": "streetscenes", "count": 4}])))
    parser = argparse.ArgumentParser()
    configure(parser)
    argv = ["--config", str(cfg_path), "--out", str(tmp_path / "run"), "--no-progress",
            "--table-images", "2", "--device", "cpu"]
    assert run(parser.parse_args([*argv, "--steps", "2"])) == 0
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ckpt["step"] == 2
    with pytest.warns(UserWarning, match="resuming amvq from step 2"):
        assert run(parser.parse_args([*argv, "--steps", "3"])) == 0
    lines = (tmp_path / "run" / "loss_log.jsonl").read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in lines] == [0, 1, 2]
    assert load_model(tmp_path / "run" / "model.pt").meta["step"] == 3


def test_training_data_sources_concatenate() -> None:
    d = tiny_dict(data=[{"name": "streetscenes", "count": 3},
                        {"name": "streetscenes", "count": 2, "params": {"split": "val"}}])
    data = build_training_data(config_from_dict(d), seed=0)
    assert isinstance(data, ConcatDataset) and len(data) == 5
    assert data[3].name == "streetscenes/val/000000" and data[2].name.startswith(
        "streetscenes/train/")
    with pytest.raises(IndexError):
        data[5]


def test_shipped_configs_load_and_errors_name_the_key() -> None:
    compact = load_config(REPO / "configs" / "amvq_compact.yaml")
    assert compact.model.image_size == (128, 256) and compact.model.scale_factors == (16, 8)
    assert load_config(REPO / "configs" / "amvq_paper.yaml").model.code_dim == 256
    d = tiny_dict()
    d["train"]["batchsize"] = 4
    with pytest.raises(ValueError, match="nearest valid key: 'train.batch_size'"):
        config_from_dict(d, source="x.yaml")
    with pytest.raises(ValueError, match=r"tau_choices .* in \[0, 1\]"):
        config_from_dict(tiny_dict(tau_choices=[0.3, 1.5]))
    with pytest.raises(ValueError, match="train.commit_floats must be bool, got 'no'"):
        config_from_dict(tiny_dict(commit_floats="no"))
    with pytest.raises(ValueError, match="param 'mode'"):
        config_from_dict(tiny_dict(data=[{"name": "streetscenes", "params": {"mode": [1]}}]))
    d = tiny_dict()
    d["model"]["scales"] = 4
    with pytest.raises(ValueError, match=r"scales 4 outside \[1, 3\]"):
        config_from_dict(d)
    d = tiny_dict()
    d["train"]["data"][0]["cnt"] = 3
    with pytest.raises(ValueError, match="nearest valid key: 'train.data\\[0\\].count'"):
        config_from_dict(d)
