"""SegNet config round trip, config validation (the codecs' pydantic schema), and exact
resume of a tiny training run on the shared loop (2 + 2 steps in two processes == 4)."""

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from semcomm.segmentation import BundledSegmenter
from semcomm.segmentation.config import SegmenterConfig
from semcomm.segmentation.model import SegNet, SegNetConfig
from semcomm.segmentation.train import load_config, run

ROOT = Path(__file__).resolve().parents[2]

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


def _error(tmp_path, data):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError) as err:
        load_config(path)
    return str(err.value).replace(str(path), "c.yaml")


def test_config_errors_are_one_line_naming_file_key_and_nearest(tmp_path):
    # The same wording as the codecs' configs (semcomm.codecs.config_schema).
    assert _error(tmp_path, {"train": {"step": 3}}) == (
        "c.yaml: unknown key 'train.step'; nearest valid key: 'train.steps'")
    assert _error(tmp_path, {"exprot": "x.pt"}) == (
        "c.yaml: unknown key 'exprot'; nearest valid key: 'export'")
    assert _error(tmp_path, {"train": {"jpeg_prob": 1.5}}) == (
        "c.yaml: train: jpeg_prob 1.5 outside [0, 1]")
    assert _error(tmp_path, {"train": {"steps": "4"}}) == "c.yaml: train.steps must be int, got '4'"
    assert _error(tmp_path, {"model": {"arch": "unet"}}) == (
        "c.yaml: model: arch 'unet' not one of segnet, judgenet")
    assert _error(tmp_path, {"model": {"widths": [8, 8, 8]}}) == (
        "c.yaml: model.widths must have 4 items, got [8, 8, 8]")
    assert _error(tmp_path, {"data": {"dataset": "kitti"}}) == (
        "c.yaml: data: dataset 'kitti' not one of streetscenes, cityscapes")
    with pytest.raises(ValueError, match="does not exist"):
        load_config(tmp_path / "nowhere.yaml")


def test_shipped_configs_load():
    seg = load_config(ROOT / "configs" / "segmenter.yaml")
    judge = load_config(ROOT / "configs" / "judge.yaml")
    assert isinstance(seg, SegmenterConfig) and seg.model.arch == "segnet"
    assert judge.model.arch == "judgenet" and judge.train.seed == 1 and judge.data.seed == 1
    assert seg.model.widths == (24, 48, 64, 128) and seg.train.jpeg_quality == (3, 95)
    assert judge.export == "semcomm/assets/judge.pt"
    # Every shipped segmenter config validates (strict types, no unknown keys).
    for path in sorted((ROOT / "configs").glob("segmenter*.yaml")):
        assert load_config(path).model.arch == "segnet", path


def _args(cfg_path, out, resume=False, stop=None, workers=None):
    return argparse.Namespace(config=str(cfg_path), out=str(out), resume=resume,
                              no_export=False, stop_after=stop, workers=workers,
                              no_progress=True)


def _columns(log_path):
    """(step, loss, lr, val_miou) of every line of a log.csv (seconds left out)."""
    lines = log_path.read_text().splitlines()
    assert lines[0] == "step,loss,lr,seconds,val_miou"
    return [(r[0], r[1], r[2], r[4]) for r in (ln.split(",") for ln in lines[1:])]


@pytest.mark.parametrize("arch", ["segnet", "judgenet"])
def test_two_plus_two_steps_in_two_processes_equal_four(tmp_path, arch):
    model = dict(TINY["model"], arch=arch)
    cfg = dict(TINY, model=model, export=str(tmp_path / "full.pt"))
    cfg["train"] = dict(TINY["train"], jpeg_prob=0.5)  # the JPEG draws are resumed too
    full_cfg = tmp_path / "full.yaml"
    full_cfg.write_text(yaml.safe_dump(cfg))
    assert run(_args(full_cfg, tmp_path / "full")) == 0
    cfg["export"] = str(tmp_path / "split.pt")
    split_cfg = tmp_path / "split.yaml"
    split_cfg.write_text(yaml.safe_dump(cfg))
    # Steps 0-1 in a fresh interpreter, then 2-3 here with two batch workers.
    cmd = [sys.executable, "-c", "import sys; from semcomm.cli import main; "
           "sys.exit(main(sys.argv[1:]))", "train", "segmenter", "--config", str(split_cfg),
           "--out", str(tmp_path / "split"), "--stop-after", "2", "--no-progress"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / "split.pt").exists()
    with pytest.warns(UserWarning, match="from step 2"):
        assert run(_args(split_cfg, tmp_path / "split", resume=True, workers=2)) == 0
    full, split = _columns(tmp_path / "full" / "log.csv"), _columns(tmp_path / "split" / "log.csv")
    assert [r[0] for r in full] == ["1", "2", "3", "4"] and full[-1][3] != ""
    assert split == full  # every loss, learning rate and the final mIoU
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit for bit
    assert (tmp_path / "full.pt").read_bytes() != b""
    ea = torch.load(tmp_path / "full.pt", weights_only=True)["state_dict"]
    eb = torch.load(tmp_path / "split.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(ea[k], eb[k]) for k in ea)
    seg = BundledSegmenter(tmp_path / "split.pt")
    weights = torch.load(tmp_path / "split.pt", weights_only=True)["logit_bias"].neg().exp()
    assert weights.shape == (19,) and torch.all(weights > 0)
    assert seg.segment(torch.rand(1, 3, 32, 64)).shape == (1, 32, 64)
    # Another architecture may not continue this checkpoint.
    cfg["model"] = dict(model, widths=[8, 8, 8, 8])
    split_cfg.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match="model config differs"):
        run(_args(split_cfg, tmp_path / "split", resume=True))


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


def test_cli_refuses_bad_input_in_one_line_with_exit_2(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"train": {"step": 3}}))
    assert run(_args(path, tmp_path / "out")) == 2
    assert capsys.readouterr().err == (
        f"error: {path}: unknown key 'train.step'; nearest valid key: 'train.steps'\n")
    path.write_text(yaml.safe_dump(TINY))
    assert run(_args(path, tmp_path / "out", resume=True)) == 2
    assert capsys.readouterr().err.startswith("error: --resume: no checkpoint at")
    assert run(_args(path, tmp_path / "out", stop=0)) == 2
    assert not (tmp_path / "out").exists()  # refused before any output
