"""Trainer: 3 steps, exact resume, model file (weights_only) that codes an image, CLI,
config errors."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from semcomm.codecs.base import RatePoint, ReceivedPayload
from semcomm.codecs.isc.codec import ISCCodec
from semcomm.codecs.isc.config import config_from_dict, load_config
from semcomm.codecs.isc.model import ISC, count_parameters
from semcomm.codecs.isc.train import (
    MODEL_FORMAT,
    Trainer,
    configure,
    run,
    sample_depth,
)
from semcomm.data.types import Sample

from .conftest import STAGES, tiny_config, tiny_dict

REPO = Path(__file__).resolve().parents[3]


def _equal_states(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_depth_sampling() -> None:
    draws = [sample_depth(np.random.default_rng(i), (1, 2, 3)) for i in range(300)]
    # Uniform: each value 100 +- 5 sd (sd = sqrt(300 * 1/3 * 2/3) = 8.2).
    assert all(abs(draws.count(c) - 100) < 41 for c in (1, 2, 3))


def test_three_steps_and_exact_resume(tmp_path: Path, samples: list[Sample]) -> None:
    cfg = tiny_config()
    straight = Trainer(cfg, samples, seed=3)
    before = {k: v.clone() for k, v in straight.model.state_dict().items()}
    for _ in range(3):
        res = straight.train_step()
        assert all(math.isfinite(v) for v in res.logs.values()), res.logs
        assert {"base_l1", "enh_l1", "vq", "base_g", "enh_g", "d"} <= set(res.logs)
    after = straight.model.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert {"base_encoder", "base_vq", "generator", "res_encoder", "stages",
            "res_decoder"} <= changed
    first = Trainer(cfg, samples, seed=3)
    for _ in range(2):
        first.train_step()
    first.save(tmp_path / "last.pt")
    resumed = Trainer(cfg, samples, seed=3)
    resumed.resume(tmp_path / "last.pt")
    assert resumed.step == 2
    resumed.train_step()
    assert _equal_states(resumed.model.state_dict(), straight.model.state_dict())


def test_fit_resume_export_and_code(tmp_path: Path, samples: list[Sample]) -> None:
    out = tmp_path / "run"
    trainer = Trainer(tiny_config(steps=2), samples, seed=0)
    trainer.fit(out, progress=False, table_images=4)
    again = Trainer(tiny_config(steps=3), samples, seed=0)
    with pytest.warns(UserWarning, match="resuming isc from step 2"):
        path = again.fit(out, progress=False, table_images=4)
    lines = [json.loads(ln) for ln in (out / "loss_log.jsonl").read_text().splitlines()]
    assert [ln["step"] for ln in lines] == [0, 1, 2]
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["format"] == MODEL_FORMAT and ckpt["stage_counts"].shape[0] == STAGES
    codec = ISCCodec(path, packet_bytes=64)
    smp = samples[0]
    enc = codec.encode_detailed(smp.image, smp.labels, RatePoint(knob=2))
    rec = codec.decode(ReceivedPayload(enc.payload.data, enc.payload.shape))
    assert rec.ok and np.array_equal(rec.image, enc.x_hat)


def test_cli(tmp_path: Path) -> None:
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_dict(steps=1, batch_size=1,
                                                 data=[{"name": "streetscenes", "count": 2}])))
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args(["--config", str(cfg_path), "--out", str(tmp_path / "o"),
                              "--no-progress", "--table-images", "2"])
    assert run(args) == 0
    assert (tmp_path / "o" / "model.pt").is_file()


@pytest.mark.parametrize(("patch", "message"), [
    ({"model": {"map_factr": 4}}, "unknown key 'model.map_factr'; nearest valid key: "
                                  "'model.map_factor'"),
    ({"model": {"map_factor": 3}}, r"map_factor 3 not in \(1, 2, 4, 8, 16\)"),
    ({"model": {"enh_stages": 0}}, r"enh_stages 0 outside \[1, 16\]"),
    ({"model": {"latent_factor": 12}}, "latent_factor 12 must be a power of two"),
    ({"model": {"gen_ch": [8, 8, 8, 8, 8]}}, r"gen_ch .* needs 1 to log2\(latent_factor\) \+ 1"),
    ({"train": {"perceptual": "vgg"}}, r"perceptual 'vgg' not in \('segmenter', 'lpips'"),
    ({"train": {"depth_choices": [1, 4]}}, r"exceed model.enh_stages 3; allowed depths 1..3"),
    ({"model": {"image_size": [30, 64]}}, "not a positive multiple of 8"),
])
def test_config_errors_name_key_and_allowed(patch: dict, message: str) -> None:
    data = tiny_dict()
    for section, values in patch.items():
        data[section].update(values)
    with pytest.raises(ValueError, match=message):
        config_from_dict(data, source="x.yaml")


@pytest.mark.parametrize("name", ["isc_compact", "isc_paper"])
def test_shipped_configs(name: str) -> None:
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    n = count_parameters(ISC(cfg.model))["total"]
    if name == "isc_compact":
        assert cfg.model.image_size == (128, 256) and 1e6 <= n <= 3e6, n
    else:
        assert cfg.model.image_size == (256, 512) and n > 3e6, n
