"""SQ-GAN losses: class weights (20 for 20 channels), blend, perceptual terms."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from semcomm.codecs.sqgan.config import CLASS_NAMES, class_weight_vector
from semcomm.codecs.sqgan.losses import (
    LPIPS,
    FeatureDistance,
    ModuleFeatures,
    SQGANLoss,
    build_perceptual,
    semantic_aware_fake,
    weighted_cross_entropy,
    weighted_l1,
)
from semcomm.codecs.sqgan.model import SQGAN, one_hot_labels

from .conftest import tiny_config


def test_class_weight_vector_has_one_weight_per_channel() -> None:
    w = class_weight_vector({"default": 0.15, "traffic light": 1.0, "sky": 0.0, "void": 0.3})
    assert len(w) == 20 == len(CLASS_NAMES)
    assert w[6] == 1.0 and w[10] == 0.0 and w[19] == 0.3 and w[0] == 0.15


def test_weighted_l1_ignores_zero_weight_classes() -> None:
    s = torch.zeros(1, 4, 4, dtype=torch.long)
    s[0, :2] = 10  # sky: weight 0
    onehot = one_hot_labels(s)
    w = torch.tensor(class_weight_vector({"default": 1.0, "sky": 0.0}))
    x = torch.zeros(1, 3, 4, 4)
    x_hat = x.clone()
    x_hat[..., :2, :] = 0.7  # error only on sky
    assert float(weighted_l1(x, x_hat, onehot, w)) == 0.0
    x_hat[..., 3, 3] = 0.5  # one road pixel wrong by 0.5 in 3 channels
    assert float(weighted_l1(x, x_hat, onehot, w)) == pytest.approx(0.5 * 3 / 48)


def test_weighted_cross_entropy_matches_reference() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 20, 3, 5)
    s = torch.randint(0, 19, (2, 3, 5))
    s[0, 0, 0] = 255
    w = torch.rand(20) + 0.1
    target = torch.where(s == 255, 19, s)
    ref = F.cross_entropy(logits, target, weight=w)
    assert float(weighted_cross_entropy(logits, one_hot_labels(s), w)) == pytest.approx(float(ref))


def test_semantic_aware_fake_never_passes_the_real_image() -> None:
    s = torch.tensor([[[8, 10, 0]]])  # vegetation, sky, road
    onehot = one_hot_labels(s)
    x, x_hat = torch.ones(1, 3, 1, 3), torch.zeros(1, 3, 1, 3)
    fake = semantic_aware_fake(x, x_hat, onehot, [8, 10], 0.85)
    assert torch.allclose(fake[0, :, 0, :2], torch.full((3, 2), 0.85))
    assert torch.equal(fake[0, :, 0, 2], torch.zeros(3))
    assert fake.max() <= 1.0  # between x_hat and x (the public code reached 1.275)
    with pytest.raises(ValueError, match="alpha"):
        semantic_aware_fake(x, x_hat, onehot, [8], 1.5)


class _TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.b = nn.Conv2d(4, 6, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


def test_feature_distance_on_a_frozen_network() -> None:
    torch.manual_seed(0)
    feats = ModuleFeatures(_TinyNet(), ["a", "b"])
    dist = FeatureDistance(feats).train()
    assert not feats.net.training  # frozen BatchNorm stays in eval mode
    x = torch.rand(2, 3, 8, 8)
    y = (x + 0.2 * torch.randn_like(x)).clamp(0, 1).requires_grad_(True)
    assert float(dist(x, x)) == pytest.approx(0.0, abs=1e-10)
    d = dist(x, y)
    d.backward()
    assert d > 0 and y.grad is not None and y.grad.abs().sum() > 0
    assert all(p.grad is None for p in feats.net.parameters())
    with pytest.raises(ValueError, match="not found"):
        ModuleFeatures(_TinyNet(), ["s16"])


def _fake_lpips_files(tmp: Path) -> tuple[Path, Path]:
    """Random weights in the two files' real key layouts (torchvision VGG16, LPIPS v0.1)."""
    torch.manual_seed(0)
    vgg: dict[str, torch.Tensor] = {}
    c_in, idx = 3, 0
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512):
        if v == "M":
            idx += 1
            continue
        vgg[f"features.{idx}.weight"] = torch.randn(int(v), c_in, 3, 3) * (2 / (9 * c_in)) ** 0.5
        vgg[f"features.{idx}.bias"] = torch.zeros(int(v))
        c_in, idx = int(v), idx + 2
    vgg["classifier.0.weight"] = torch.zeros(1)  # ignored
    lin = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1)
           for k, c in enumerate((64, 128, 256, 512, 512))}
    torch.save(vgg, tmp / "vgg16.pth")
    torch.save(lin, tmp / "vgg.pth")
    return tmp / "vgg16.pth", tmp / "vgg.pth"


def test_lpips_loads_user_weight_files(tmp_path: Path) -> None:
    vgg, lin = _fake_lpips_files(tmp_path)
    lp = build_perceptual("lpips", lpips_vgg=vgg, lpips_lin=lin)
    assert isinstance(lp, LPIPS)
    x = torch.rand(1, 3, 32, 32)
    y = (x + 0.3 * torch.randn_like(x)).clamp(0, 1)
    assert float(lp(x, x)) == pytest.approx(0.0, abs=1e-8)
    assert float(lp(x, y)) > 0 and float(lp(x, y)) == pytest.approx(float(lp(y, x)), rel=1e-4)
    torch.save({"lin0.model.1.weight": torch.zeros(1, 64, 1, 1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="incomplete"):
        LPIPS(vgg, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="weight files"):
        build_perceptual("lpips")
    assert build_perceptual("none") is None


def test_stage_losses_are_finite_and_use_the_right_discriminator() -> None:
    torch.manual_seed(0)
    cfg = tiny_config()
    model = SQGAN(cfg.model).train()
    x = torch.rand(2, 3, 32, 64)
    s = torch.randint(0, 19, (2, 32, 64))
    onehot = one_hot_labels(s)
    for stage, out, branch in (("ssm", model.forward_semantic(s, 0.5), model.semantic),
                               ("img", model.forward_image(x, s, 0.5), model.image)):
        loss = SQGANLoss(cfg.train, stage)
        assert loss.disc.main[0].in_channels == (20 if stage == "ssm" else 3)
        gen = loss.generator(x, onehot, out, branch.decoder.last_layer, step=0)
        dis = loss.discriminator(x, onehot, out)
        assert torch.isfinite(gen.loss) and torch.isfinite(dis.loss)
        assert {"rec", "g", "adv_weight", "vq"} <= set(gen.logs) and "d" in dis.logs
