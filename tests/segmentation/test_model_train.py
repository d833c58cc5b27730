"""SegNet config round trip, config validation, and exact resume of a tiny training run."""

import argparse

import pytest
import torch
import yaml

from semcomm.segmentation import BundledSegmenter
from semcomm.segmentation.model import SegNet, SegNetConfig
from semcomm.segmentation.train import load_config, run

TINY = {
    "model": {"widths": [4, 8, 8, 8], "blocks8": 1, "blocks16": 1},
    "data": {"size": [32, 64]},
    "train": {
        "steps": 4,
        "batch": 2,
        "ckpt_every": 2,
        "eval_every": 4,
        "eval_count": 2,
        "workers": 0,
    },
}


def test_segnet_config_round_trip_and_shapes():
    cfg = SegNetConfig(widths=(8, 8, 16, 16), blocks8=1, blocks16=2)
    assert SegNetConfig.from_dict(cfg.to_dict()) == cfg
    out = SegNet(cfg).eval()(torch.rand(2, 3, 37, 61))
    assert out.shape == (2, 19, 37, 61)
    with pytest.raises(ValueError, match="unknown SegNetConfig keys"):
        SegNetConfig.from_dict({"width": [8, 8, 8, 8]})
    with pytest.raises(ValueError, match="widths"):
        SegNetConfig(widths=(8, 8, 8))  # type: ignore[arg-type]


def test_config_unknown_key_names_nearest(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"train": {"step": 3}}))
    with pytest.raises(ValueError, match=r"train\.step.*'steps'"):
        load_config(path)
    path.write_text(yaml.safe_dump({"train": {"jpeg_prob": 1.5}}))
    with pytest.raises(ValueError, match="jpeg_prob"):
        load_config(path)


def _args(cfg_path, out, resume=False, stop=None):
    return argparse.Namespace(
        config=str(cfg_path), out=str(out), resume=resume, no_export=False, stop_after=stop
    )


def test_resume_reproduces_uninterrupted_run(tmp_path):
    cfg = dict(TINY, export=str(tmp_path / "full.pt"))
    full_cfg = tmp_path / "full.yaml"
    full_cfg.write_text(yaml.safe_dump(cfg))
    assert run(_args(full_cfg, tmp_path / "full")) == 0
    cfg["export"] = str(tmp_path / "split.pt")
    split_cfg = tmp_path / "split.yaml"
    split_cfg.write_text(yaml.safe_dump(cfg))
    assert run(_args(split_cfg, tmp_path / "split", stop=2)) == 0
    assert not (tmp_path / "split.pt").exists()
    assert run(_args(split_cfg, tmp_path / "split", resume=True)) == 0
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    seg = BundledSegmenter(tmp_path / "split.pt")
    weights = torch.load(tmp_path / "split.pt", weights_only=True)["logit_bias"].neg().exp()
    assert weights.shape == (19,) and torch.all(weights > 0)
    assert seg.segment(torch.rand(1, 3, 32, 64)).shape == (1, 32, 64)
    log = (tmp_path / "split" / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,loss") and len(log) == 5


def test_trains_on_a_cityscapes_tree(tmp_path):
    from tests.data.test_cityscapes import _block_ids, _write_pair

    for split in ("train", "val"):
        for k in range(2):
            _write_pair(tmp_path / "cs", split, "aachen", f"00000{k}_000019", _block_ids(k))
    cfg = {
        "model": TINY["model"],
        "data": {"dataset": "cityscapes", "root": str(tmp_path / "cs"), "size": [32, 64]},
        "train": dict(TINY["train"], steps=2, eval_count=2),
        "export": str(tmp_path / "cs.pt"),
    }
    path = tmp_path / "cs.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert run(_args(path, tmp_path / "out")) == 0
    assert BundledSegmenter(tmp_path / "cs.pt").segment(torch.rand(1, 3, 32, 64)).shape == (
        1,
        32,
        64,
    )


def test_init_from_exported_weights(tmp_path):
    cfg = dict(TINY, export=str(tmp_path / "a.pt"))
    cfg["train"] = dict(TINY["train"], steps=1)
    path = tmp_path / "a.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert run(_args(path, tmp_path / "a")) == 0
    # Another seed: without init the weights would start elsewhere.
    cfg["train"] = dict(cfg["train"], init=str(tmp_path / "a.pt"), lr=1e-12, seed=1)
    cfg["export"] = str(tmp_path / "b.pt")
    path.write_text(yaml.safe_dump(cfg))
    assert run(_args(path, tmp_path / "b")) == 0
    a = torch.load(tmp_path / "a.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b.pt", weights_only=True)["state_dict"]
    # With a negligible learning rate the fine-tuned weights stay those it started from.
    conv = "s2.0.weight"
    torch.testing.assert_close(a[conv].float(), b[conv].float(), rtol=0, atol=1e-3)
    cfg["train"]["init"] = str(tmp_path / "missing.pt")
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match="missing.pt"):
        run(_args(path, tmp_path / "c"))
