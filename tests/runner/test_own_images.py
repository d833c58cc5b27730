"""Own images (``imagefolder``): resize modes, mIoU against the original's segmentation
when there are no labels, unlabelled-folder settings refused, and a fallback image that
never comes from the evaluated images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semcomm.data.imagefolder import ImageFolder
from semcomm.runner.config import ConfigError, load_experiment
from semcomm.runner.run import run_experiment


def _folder(tmp_path: Path, colour: tuple[int, int, int] = (250, 10, 10),
            wh: tuple[int, int] = (200, 80), count: int = 2) -> Path:
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(count):
        img = np.zeros((wh[1], wh[0], 3), np.uint8)
        img[...] = colour
        img[:, : wh[0] // 2] = (i * 40, 200, 30)  # left half differs (crop/pad visible)
        Image.fromarray(img).save(root / f"p{i}.png")
    return root


def test_resize_modes(tmp_path: Path) -> None:
    root = _folder(tmp_path)  # 200 x 80 (W x H), aspect 2.5
    with pytest.warns(UserWarning, match="distorted"):
        stretched = ImageFolder(root, size=(64, 64))[0].image
    assert stretched.shape == (64, 64, 3)
    crop = ImageFolder(root, size=(64, 64), resize="crop")[0].image
    assert crop.shape == (64, 64, 3)
    pad = ImageFolder(root, size=(64, 64), resize="pad")[0].image
    assert pad.shape == (64, 64, 3)
    assert (pad[0] == 128).all() and (pad[-1] == 128).all()  # grey bars above and below
    assert not (crop[0] == 128).all()
    own = ImageFolder(root, size=None, resize="none")[0].image
    assert own.shape == (80, 200, 3)
    with pytest.raises(ValueError, match="resize 'none'"):
        ImageFolder(root, size=(64, 64), resize="none")


FOLDER = """
name: own
dataset: {{name: imagefolder, root: {root}, size: [64, 128], resize: crop}}
codecs: [{{name: jpeg, knob: [5]}}]
links: [{{modulation: qpsk, code_rate: 0.5, channel: awgn}}]
snr: {{esno_db: [-10]}}
failure: {{policy: mean, mean_images: 4}}
metrics: {{bootstrap: 20, ms_ssim: false}}
{extra}
"""


def _config(tmp_path: Path, root: Path, extra: str = "") -> Path:
    path = tmp_path / "own.yaml"
    path.write_text(FOLDER.format(root=root, extra=extra))
    return path


def test_unlabelled_folder_scores_against_original_segmentation(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    exp = load_experiment(_config(tmp_path, root))
    assert exp.dataset.resolved_reference == "original-segmentation"
    run = run_experiment(exp, tmp_path / "r", progress=False)
    original = [r for r in run.rows if r["kind"] == "original"]
    assert original and original[0]["miou"] == pytest.approx(1.0)
    links = [r for r in run.rows if r["kind"] == "link"]
    assert links and np.isfinite(links[0]["miou"]) and links[0]["failed"] == 2  # -10 dB
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["miou_reference"] == "original-segmentation"
    assert "original-segmentation" in (run.run_dir / "report.html").read_text()


def test_fallback_never_from_evaluated_images(tmp_path: Path) -> None:
    """A folder of pure red images: the mean image is the street scenes' training mean
    at the same size, not red."""
    from semcomm.data import build_dataset
    from semcomm.runner.sweep import _fallback_image

    root = _folder(tmp_path, colour=(255, 0, 0), count=3)
    exp = load_experiment(_config(tmp_path, root))
    samples = [ImageFolder(root, size=(64, 128), resize="crop")[i] for i in range(3)]
    fallback = _fallback_image(exp, samples)
    train = build_dataset("streetscenes", split="train", count=4, size=(64, 128), seed=0)
    expected = np.mean([train[i].image for i in range(4)], axis=0)
    np.testing.assert_allclose(fallback, np.clip(np.rint(expected), 0, 255), atol=0)


@pytest.mark.parametrize("extra,match", [
    ("tx_semantics: ground-truth", "tx_semantics 'ground-truth' needs labelled"),
    ("segmenter: {name: ground-truth}", "segmenter 'ground-truth' needs labelled"),
])
def test_label_settings_refused_on_a_folder(tmp_path: Path, extra: str, match: str) -> None:
    root = _folder(tmp_path)
    with pytest.raises(ConfigError, match=match) as err:
        load_experiment(_config(tmp_path, root, extra))
    assert "\n" not in str(err.value)


def test_resize_and_reference_keys(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    path = _config(tmp_path, root)
    path.write_text(path.read_text().replace("resize: crop", "resize: squash"))
    with pytest.raises(ConfigError, match="resize"):
        load_experiment(path)
    path.write_text(FOLDER.format(root=root, extra="").replace(
        "name: imagefolder, root: " + str(root) + ", ", "").replace(
        "resize: crop", "resize: pad"))
    with pytest.raises(ConfigError, match="only for dataset 'imagefolder'"):
        load_experiment(path)
