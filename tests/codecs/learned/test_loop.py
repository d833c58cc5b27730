"""The shared training loop: exact resume across processes (2 + 2 steps == 4 steps) for
every learned codec, batches independent of the worker count, EMA, bf16 autocast."""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from semcomm.codecs.learned.data import step_loader
from semcomm.codecs.learned.trainer import RunOptions

from ..amvq.conftest import tiny_dict as amvq_tiny
from ..isc.conftest import tiny_dict as isc_tiny
from ..sqgan.conftest import tiny_dict as sqgan_tiny

ROOT = Path(__file__).resolve().parents[3]
#: Keys of a loss-log line that measure time, not numbers.
TIMING = ("sec_per_step", "data_sec")


def _config(codec: str, tmp_path: Path, **train: Any) -> Path:
    data = {"sqgan": lambda: sqgan_tiny(train_count=4, **train),
            "amvq": lambda: amvq_tiny(data=[{"name": "streetscenes", "count": 4}], **train),
            "isc": lambda: isc_tiny(data=[{"name": "streetscenes", "count": 4}], **train),
            }[codec]()
    path = tmp_path / f"{codec}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _argv(codec: str, config: Path, out: Path, *extra: str) -> list[str]:
    stage = ["--stage", "img"] if codec == "sqgan" else []
    return [*stage, "--config", str(config), "--out", str(out), "--no-progress",
            "--table-images", "2", "--device", "cpu", "--steps", "4", *extra]


def _run_here(codec: str, argv: list[str]) -> None:
    module = __import__(f"semcomm.codecs.{codec}.train", fromlist=["configure", "run"])
    parser = argparse.ArgumentParser()
    module.configure(parser)
    assert module.run(parser.parse_args(argv)) == 0


def _losses(out: Path) -> list[dict[str, float]]:
    log = out / "loss_log.jsonl"
    return [{k: v for k, v in json.loads(ln).items() if k not in TIMING}
            for ln in log.read_text().splitlines()]


@pytest.mark.parametrize("codec", ["sqgan", "amvq", "isc"])
def test_two_plus_two_steps_in_two_processes_equal_four(codec: str, tmp_path: Path) -> None:
    config = _config(codec, tmp_path)
    sub = "img" if codec == "sqgan" else ""
    _run_here(codec, _argv(codec, config, tmp_path / "full"))
    # Steps 0-1 in a fresh interpreter, then 2-3 here with two DataLoader workers.
    cmd = [sys.executable, "-c", "import sys; from semcomm.cli import main; "
           "sys.exit(main(sys.argv[1:]))", "train", codec,
           *_argv(codec, config, tmp_path / "split", "--stop-at", "2", "--threads", "1")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with pytest.warns(UserWarning, match="from step 2"):
        _run_here(codec, _argv(codec, config, tmp_path / "split", "--workers", "2"))
    full, split = _losses(tmp_path / "full" / sub), _losses(tmp_path / "split" / sub)
    assert [d["step"] for d in full] == [0, 1, 2, 3]
    assert split == full  # every loss value, learning rate and knob, bit for bit
    a = torch.load(tmp_path / "full" / sub / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "split" / sub / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_batches_do_not_depend_on_the_worker_count() -> None:
    from semcomm.codecs.amvq.train import AMVQBatches

    from ..amvq.conftest import synthetic_samples, tiny_config
    cfg = tiny_config()
    make = AMVQBatches(cfg.train, synthetic_samples(5), seed=4)
    inline = list(step_loader(make, 3, 9, workers=0))
    spread = list(step_loader(make, 3, 9, workers=2, prefetch=1))
    assert len(inline) == len(spread) == 6
    for a, b in zip(inline, spread, strict=True):
        assert a.knobs == b.knobs and torch.equal(a.tensors[0], b.tensors[0])
    # Not vacuous: the steps differ from one another.
    assert not torch.equal(inline[0].tensors[0], inline[1].tensors[0])


def test_ema_is_exported_and_resumed_exactly(tmp_path: Path) -> None:
    from semcomm.codecs.amvq.train import Trainer, load_model

    from ..amvq.conftest import synthetic_samples, tiny_config
    cfg, data = tiny_config(steps=2, ema_decay=0.5), synthetic_samples(4)
    straight = Trainer(cfg, data, seed=1)
    path = straight.fit(tmp_path / "a", progress=False, table_images=2)
    exported = load_model(path).model.encoder.state_dict()
    trained = straight.model.encoder.state_dict()
    assert any(not torch.equal(exported[k], trained[k]) for k in trained)  # EMA, not last
    first = Trainer(cfg, data, seed=1)
    first.fit(tmp_path / "b", progress=False, table_images=2, stop_at=1)
    with pytest.warns(UserWarning, match="from step 1"):
        path_b = Trainer(cfg, data, seed=1).fit(tmp_path / "b", progress=False, table_images=2)
    again = load_model(path_b).model.encoder.state_dict()
    assert all(torch.equal(exported[k], again[k]) for k in exported)


@pytest.mark.parametrize("codec", ["sqgan", "amvq", "isc"])
def test_bf16_autocast_and_channels_last_step(codec: str) -> None:
    # The CUDA options run on the CPU too: no dtype or layout error in any hook.
    import importlib

    conf = importlib.import_module(f"tests.codecs.{codec}.conftest")
    train = importlib.import_module(f"semcomm.codecs.{codec}.train")
    data = conf.synthetic_samples(4)
    opts = RunOptions(precision="bf16", channels_last=True)
    args = (conf.tiny_config(), "img", data) if codec == "sqgan" else (conf.tiny_config(), data)
    trainer = train.Trainer(*args, options=opts)
    res = trainer.train_step()
    assert all(math.isfinite(v) for v in res.logs.values()), res.logs
    with pytest.raises(ValueError, match="precision 'fp16' not in"):
        RunOptions(precision="fp16")


def test_command_line_overrides_are_validated_like_the_file(tmp_path: Path) -> None:
    from semcomm.codecs.isc.config import config_from_dict, load_config
    from semcomm.codecs.learned import cli

    config = _config("isc", tmp_path)
    parser = argparse.ArgumentParser()
    cli.configure(parser, "isc")

    def load(*extra: str) -> Any:
        args = parser.parse_args(["--config", str(config), *extra])
        return cli.load_overridden(args, load_config, config_from_dict)

    cfg = load("--set", "train.ema_decay=0.9", "--set", "model.enh_codes=8",
               "--dataset", "cityscapes", "--count", "3")
    assert cfg.train.ema_decay == 0.9 and cfg.model.enh_codes == 8
    assert [(s.name, s.count) for s in cfg.train.data] == [("cityscapes", 3)]
    with pytest.raises(ValueError, match="nearest valid key: 'train.batch_size'"):
        load("--set", "train.batchsize=3")
    with pytest.raises(ValueError, match="'foo' is not a section"):
        load("--set", "foo.bar=1")
    with pytest.raises(ValueError, match="expected KEY.PATH=VALUE"):
        load("--set", "train.lr")
    with pytest.raises(ValueError, match=r"ema_decay 1.0 outside \[0, 1\)"):
        load("--set", "train.ema_decay=1.0")


@pytest.mark.parametrize(("patch", "message"), [
    ({"train": {"lr": "fast"}}, "x.yaml: train.lr must be float, got 'fast'"),
    ({"train": {"steps": {"ssm": 1.5}}}, "x.yaml: train.steps.ssm must be int, got 1.5"),
    ({"model": {"image_size": [1, 2, 3]}}, "x.yaml: model.image_size must have 2 items"),
    ({"model": {"image": {"ch": True}}}, "x.yaml: model.image.ch must be int, got True"),
    ({"train": 7}, "x.yaml: train must be a mapping, got 7"),
    ({"model": {"image": {"chh": 3}}},
     "x.yaml: unknown key 'model.image.chh'; nearest valid key: 'model.image.ch'"),
    ({"train": {"augment": {"rotate_p": 2}}},
     r"x.yaml: train.augment: augment.rotate_p 2.0 outside \[0, 1\]"),
])
def test_config_errors_are_one_line(patch: dict[str, Any], message: str) -> None:
    # pydantic validates (strictly) and the first error becomes one line.
    from semcomm.codecs.sqgan.config import config_from_dict

    with pytest.raises(ValueError, match=message) as info:
        config_from_dict(patch, source="x.yaml")
    assert "\n" not in str(info.value)
