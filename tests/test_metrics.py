"""Metrics: pooled mIoU, pixel accuracy, PSNR, MS-SSIM, LPIPS, FID."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from semcomm import metrics


def test_confusion_and_iou_by_hand() -> None:
    s = np.array([[0, 0, 1, 255]], np.uint8)
    s_hat = np.array([[0, 1, 1, 7]], np.uint8)
    conf = metrics.confusion_matrix(s_hat, s, num_classes=3)
    assert conf.shape == (3, 4) and conf.sum() == 3  # void pixel ignored
    inter, union = metrics.iou_counts(conf)
    assert inter.tolist() == [1, 1, 0] and union.tolist() == [2, 2, 0]
    assert metrics.mean_iou(inter, union) == pytest.approx(0.5)  # class 2 absent: skipped
    assert metrics.pixel_accuracy(2, 3) == pytest.approx(2 / 3)
    # Predictions outside [0, C) (e.g. 255) count as wrong, not ignored.
    conf = metrics.confusion_matrix(np.array([[255, 0]], np.uint8), np.array([[0, 0]], np.uint8), 3)
    assert metrics.iou_counts(conf)[0].tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match="label values"):
        metrics.confusion_matrix(s_hat, np.array([[0, 0, 20, 1]], np.uint8), 3)


def test_miou_is_pooled_not_mean_of_images() -> None:
    inter = np.array([[1, 0], [50, 0]])
    union = np.array([[10, 0], [50, 0]])
    assert metrics.mean_iou(inter, union) == pytest.approx(51 / 60)
    per_image = np.mean([0.1, 1.0])
    assert metrics.mean_iou(inter, union) != pytest.approx(per_image)
    assert math.isnan(metrics.mean_iou(np.zeros(3), np.zeros(3)))


def test_psnr_known_value() -> None:
    x = np.zeros((8, 8, 3), np.uint8)
    y = x.copy()
    y[0, 0, 0] = 255  # mse = 255^2 / 192
    assert metrics.psnr(x, y) == pytest.approx(10 * math.log10(192))
    assert metrics.psnr(x, x) == math.inf
    with pytest.raises(ValueError, match="both be"):
        metrics.psnr(x, y[:4])


def _image(h: int = 128, w: int = 256, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.uniform(0, 255, (h, w, 3)), (3, 3, 0))
    return np.clip((base - base.mean()) * 4 + 128, 0, 255).astype(np.uint8)


def test_ms_ssim_identity_and_monotone_in_noise() -> None:
    x = _image()
    assert metrics.ms_ssim(x, x) == pytest.approx(1.0, abs=1e-12)
    rng = np.random.default_rng(1)
    values = []
    for sigma in (2, 5, 10, 20, 40):
        noisy = np.clip(x + rng.normal(0, sigma, x.shape), 0, 255).astype(np.uint8)
        values.append(metrics.ms_ssim(x, noisy))
    assert all(a > b for a, b in zip(values, values[1:], strict=False)), values
    assert 0.0 <= values[-1] < values[0] < 1.0


def test_ms_ssim_scale_choice() -> None:
    assert metrics.ms_ssim_scales(128, 256) == 4  # 128, 64, 32, 16 (8 < 11)
    assert metrics.ms_ssim_scales(256, 512) == 5
    assert metrics.ms_ssim_scales(32, 64) == 2
    with pytest.raises(ValueError, match="smaller than"):
        metrics.ms_ssim_scales(8, 64)


def _ssim_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Single-scale SSIM (Wang 2004) written independently with scipy, valid borders."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    t = np.arange(11) - 5.0
    g = np.exp(-t * t / (2 * 1.5**2))
    g /= g.sum()

    def blur(z: np.ndarray) -> np.ndarray:
        return ndimage.correlate1d(ndimage.correlate1d(z, g, axis=0), g, axis=1)[5:-5, 5:-5]

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma**2, blur(b * b) - mb**2, blur(a * b) - ma * mb
    ssim = (2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    return float(ssim.mean())


def test_single_scale_matches_independent_ssim() -> None:
    """With an image only large enough for one scale, MS-SSIM is plain SSIM."""
    x = _image(16, 40, seed=2)
    y = np.clip(x + np.random.default_rng(3).normal(0, 12, x.shape), 0, 255).astype(np.uint8)
    assert metrics.ms_ssim_scales(16, 40) == 1
    expected = np.mean([_ssim_reference(x[..., c], y[..., c]) for c in range(3)])
    assert metrics.ms_ssim(x, y) == pytest.approx(expected, rel=1e-9)


def _lpips_files(tmp_path: Path, net: str) -> tuple[Path, Path]:
    torch.manual_seed(0)
    features = metrics._vgg16_features() if net == "vgg" else metrics._alexnet_features()
    backbone = tmp_path / f"{net}.pt"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, backbone)
    _, channels = metrics._LPIPS_TAPS[net]
    heads = tmp_path / f"{net}_heads.pt"
    torch.save({f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(channels)},
               heads)
    return backbone, heads


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_from_local_files(tmp_path: Path, net: str) -> None:
    backbone, heads = _lpips_files(tmp_path, net)
    lp = metrics.Lpips(net, backbone, heads)
    x, y = _image(64, 64, 0), _image(64, 64, 1)
    assert lp(x, x) == pytest.approx(0.0, abs=1e-7)
    d_xy = lp(x, y)
    assert d_xy > 0 and d_xy == pytest.approx(lp(y, x), rel=1e-5)
    noisy = np.clip(x + np.random.default_rng(0).normal(0, 8, x.shape), 0, 255).astype(np.uint8)
    assert 0 < lp(x, noisy) < d_xy


def test_lpips_and_fid_missing_files_are_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="LPIPS backbone weight file .*nope.pt.* not found"):
        metrics.Lpips("vgg", tmp_path / "nope.pt", tmp_path / "heads.pt")
    with pytest.raises(FileNotFoundError, match="FID feature extractor"):
        metrics.FeatureExtractor(tmp_path / "inception.pt")
    with pytest.raises(ValueError, match="lpips net"):
        metrics.Lpips("resnet", tmp_path / "a", tmp_path / "b")


def test_fid_extractor_and_distance(tmp_path: Path) -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten())
    path = tmp_path / "feat.pt"
    with pytest.warns(DeprecationWarning):  # TorchScript is what users export today
        torch.jit.script(net).save(str(path))
    fx = metrics.FeatureExtractor(path)
    feats = fx(np.stack([_image(32, 32, s) for s in range(3)]))
    assert feats.shape == (3, 4)
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (4000, 3))
    b = rng.normal(0, 1, (4000, 3)) + np.array([1.0, 0, 0])
    # Identical Gaussians up to a mean shift of 1: FID -> 1 (sampling error ~ 0.1).
    assert metrics.frechet_distance(a, b) == pytest.approx(1.0, abs=0.15)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    c = rng.normal(0, 2, (4000, 3))  # std 2: trace term 3 * (1 + 4 - 2 * 2) = 3
    assert metrics.frechet_distance(a, c) == pytest.approx(3.0, rel=0.1)
