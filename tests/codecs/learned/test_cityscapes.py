"""Every learned codec's paper config trains from a Cityscapes-layout tree: 2 steps of
every stage, on the CPU, with the paper configs' training sections (SQ-GAN's rotation,
crop, colour jitter and traffic light/sign pasting included) and tiny models.

Would fail if a paper config could not read Cityscapes (as sqgan_paper.yaml once could
not: its data source took no root), if a stage's chain broke, or if the augmentation
did not run on real-layout labels.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from tests.data.test_cityscapes import _write_pair

from ..amvq.conftest import tiny_dict as amvq_tiny
from ..isc.conftest import tiny_dict as isc_tiny
from ..sqgan.conftest import tiny_dict as sqgan_tiny

ROOT = Path(__file__).resolve().parents[3]
#: labelIds painted in bands: sky, building, vegetation, road, car, void, light, sign.
_BANDS = (23, 11, 21, 7, 26, 0)


def _label_ids(k: int, h: int = 64, w: int = 128) -> np.ndarray:
    ids = np.zeros((h, w), np.uint8)
    for i, lid in enumerate(_BANDS):
        ids[i * h // len(_BANDS):(i + 1) * h // len(_BANDS)] = lid
    ids[10 + 4 * k:18 + 4 * k, 20:26] = 19  # traffic light
    ids[12:20, 60 + 8 * k:70 + 8 * k] = 20  # traffic sign
    return ids


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cityscapes")
    for k in range(3):
        _write_pair(root, "train", "aachen", f"00000{k}_000019", _label_ids(k))
    return root


def _train(codec: str, tree: Path, out: Path, *extra: str) -> Path:
    module = __import__(f"semcomm.codecs.{codec}.train", fromlist=["configure", "run"])
    model = {"sqgan": sqgan_tiny, "amvq": amvq_tiny, "isc": isc_tiny}[codec]()["model"]
    if codec == "isc":
        model["enh_stages"] = 4  # the paper config trains depths 1..4
    parser = argparse.ArgumentParser()
    module.configure(parser)
    argv = ["--config", str(ROOT / "configs" / f"{codec}_paper.yaml"), "--dataset",
            "cityscapes", "--data-root", str(tree), "--count", "3", "--steps", "2",
            "--batch-size", "2", "--set", f"model={json.dumps(model)}",
            "--set", "train.disc_start=0", "--set", "train.warmup_steps=1",
            "--out", str(out), "--no-progress", "--table-images", "2", "--device", "cpu",
            *extra]
    assert module.run(parser.parse_args(argv)) == 0
    return out


def _logged_steps(folder: Path) -> list[int]:
    return [json.loads(ln)["step"] for ln in (folder / "loss_log.jsonl").read_text().splitlines()]


def test_sqgan_paper_config_every_stage(tree: Path, tmp_path: Path) -> None:
    from semcomm.codecs.sqgan import load_model

    out = tmp_path / "sqgan"
    _train("sqgan", tree, out, "--stage", "ssm")
    _train("sqgan", tree, out, "--stage", "img", "--init", str(out / "ssm" / "model.pt"))
    _train("sqgan", tree, out, "--stage", "all", "--init", str(out / "img" / "model.pt"))
    for stage in ("ssm", "img", "all"):
        assert _logged_steps(out / stage) == [0, 1]
    assert load_model(out / "all" / "model.pt").meta["stage"] == "all"


@pytest.mark.parametrize("codec", ["amvq", "isc"])
def test_paper_config_trains(codec: str, tree: Path, tmp_path: Path) -> None:
    # The paper configs ask for LPIPS (VGG weight files cannot be downloaded here).
    out = _train(codec, tree, tmp_path / codec, "--perceptual", "segmenter")
    assert _logged_steps(out) == [0, 1] and (out / "model.pt").is_file()


def test_paper_augmentation_runs_on_cityscapes_labels(tree: Path) -> None:
    from semcomm.codecs.sqgan.augment import augment_batch
    from semcomm.codecs.sqgan.config import load_config
    from semcomm.codecs.sqgan.train import make_batch
    from semcomm.data import build_dataset

    aug = load_config(ROOT / "configs" / "sqgan_paper.yaml").train.augment
    assert aug.rotate_p > 0 and aug.zoom_p > 0 and aug.jitter_p > 0 and aug.paste_p > 0
    ds = build_dataset("cityscapes", root=tree, split="train", size=(64, 128))
    x, s = make_batch(ds, [0, 1, 2])
    y, t = augment_batch(x, s, aug, np.random.default_rng(0))
    assert y.shape == x.shape and t.shape == s.shape
    assert not np.array_equal(y.numpy(), x.numpy())  # something was done
    lights = [(t[i] == 6).sum().item() for i in range(3)]  # trainId 6: traffic light
    assert max(lights) > min((s[i] == 6).sum().item() for i in range(3))  # pasted somewhere
