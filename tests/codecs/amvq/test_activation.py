"""The activation map: Grad-CAM of the quantization loss, normalised, no weight gradients."""

from __future__ import annotations

import pytest
import torch

from semcomm.codecs.amvq.activation import activation_map, check_tau, unquantized_mask

from .conftest import trained_tiny_model


def _analytic(z: torch.Tensor, e: torch.Tensor, f: torch.Tensor | None = None,
              weight: torch.Tensor | None = None) -> torch.Tensor:
    """d/dz sum ||z - e||^2 = 2 (z - e), through a 1x1 conv z = W f + b:
    d/df = W^T 2 (z - e); GAP; ReLU of the weighted sum of f; / max per image."""
    grad = 2 * (z - e)
    if f is None or weight is None:
        f = z
    else:
        grad = torch.einsum("dc,bdhw->bchw", weight[:, :, 0, 0], grad)
    alpha = grad.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((alpha * f).sum(dim=1))
    peak = cam.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, cam / peak, torch.zeros_like(cam))


def test_map_is_the_normalised_grad_cam_of_the_quantization_loss() -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 5, 4, 6, generator=g)
    e = z + 0.3 * torch.randn(3, 5, 4, 6, generator=g)
    a = activation_map(z, e)
    assert a.shape == (3, 4, 6) and not a.requires_grad
    torch.testing.assert_close(a, _analytic(z, e))
    assert float(a.min()) >= 0.0
    torch.testing.assert_close(a.amax(dim=(1, 2)), torch.ones(3))
    # Each image's map depends on that image alone.
    torch.testing.assert_close(activation_map(z[1:2], e[1:2]), a[1:2])
    # An all-zero map (no position with a positive weighted sum) stays 0, not NaN.
    assert torch.equal(activation_map(torch.zeros(1, 5, 4, 6), e[:1]), torch.zeros(1, 4, 6))


@pytest.mark.parametrize("context", ["plain", "no_grad", "inference_mode"])
def test_analyze_works_in_eval_under_any_grad_mode_without_touching_weights(
        context: str) -> None:
    model, data = trained_tiny_model()
    x = torch.from_numpy(data[0].image).permute(2, 0, 1)[None].float() / 255
    before = {k: v.clone() for k, v in model.state_dict().items()}
    if context == "no_grad":
        with torch.no_grad():
            out = model.analyze(x)
    elif context == "inference_mode":
        with torch.inference_mode():
            out = model.analyze(x)
    else:
        out = model.analyze(x)
    assert len(out) == 2 and out[0].a.shape == (1, 4, 8) and out[1].a.shape == (1, 8, 16)
    feats = model.encoder.features(2 * x - 1)
    for s, an in enumerate(out):
        assert float(an.a.max()) in (0.0, pytest.approx(1.0))
        head = model.encoder.head(s)
        assert isinstance(head, torch.nn.Conv2d)
        with torch.no_grad():
            expected = _analytic(an.z, model.lookup(s, an.indices), feats[s], head.weight)
        torch.testing.assert_close(an.a, expected)
    assert float(out[0].a.max()) == pytest.approx(1.0)  # not vacuous
    assert all(p.grad is None for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # EMA, BN, ranges untouched


def test_threshold_masks_are_nested_and_tau_zero_is_plain_vq() -> None:
    a = torch.rand(2, 8, 16, generator=torch.Generator().manual_seed(1))
    a = a / a.amax(dim=(1, 2), keepdim=True)
    masks = [unquantized_mask(a, t) for t in (0.0, 0.1, 0.3, 0.5, 0.7, 1.0)]
    counts = [int(m.sum()) for m in masks]
    assert counts == sorted(counts) and counts[-1] > counts[1] > 0
    assert all(bool((lo | hi).eq(hi).all()) for lo, hi in zip(masks, masks[1:], strict=False))
    assert counts[0] == 0  # A <= 1 everywhere: tau = 0 is plain VQ
    assert counts[-1] == int((a > 0).sum())  # tau = 1: every position with A > 0
    for bad in (-0.1, 1.5, True, "0.3"):
        with pytest.raises(ValueError, match="tau"):
            check_tau(bad)  # type: ignore[arg-type]


def test_layercam_weights_each_position_by_its_own_gradient() -> None:
    """A = sum_c ReLU(g_c) F_c per position, normalised (LayerCAM); through a 1x1 conv
    g = W^T 2 (z - e). Unlike the pooled map, a position's value does not change when
    another position's residual changes."""
    g = torch.Generator().manual_seed(1)
    f = torch.rand(2, 6, 4, 5, generator=g)
    head = torch.nn.Conv2d(6, 3, 1)
    with torch.no_grad():
        z = head(f)
    e = z + 0.3 * torch.randn(z.shape, generator=g)
    a = activation_map(f, e, head, "layercam")
    grad = torch.einsum("dc,bdhw->bchw", head.weight[:, :, 0, 0].detach(), 2 * (z - e))
    cam = (torch.relu(grad) * f).sum(dim=1)
    torch.testing.assert_close(a, cam / cam.amax(dim=(1, 2), keepdim=True))
    assert float(a.min()) >= 0.0 and not a.requires_grad
    e2 = e.clone()
    e2[:, :, 0, 0] += 5.0  # move one position's code: other positions keep their raw map
    assert not torch.equal(activation_map(f, e2, head, "layercam"), a)
    raw = a * cam.amax(dim=(1, 2))[:, None, None]
    raw2 = (torch.relu(torch.einsum("dc,bdhw->bchw", head.weight[:, :, 0, 0].detach(),
                                    2 * (z - e2))) * f).sum(dim=1)
    torch.testing.assert_close(raw.flatten(1)[:, 1:], raw2.flatten(1)[:, 1:])
    with pytest.raises(ValueError, match="kind 'cam' not in"):
        activation_map(f, e, head, "cam")


def test_layercam_ranks_positions_by_quantization_error_better_than_grad_cam() -> None:
    """On features whose residual varies by position, LayerCAM's map follows ||z - e||^2
    (Spearman > 0.5) while the pooled map does not (its rank correlation is lower)."""
    g = torch.Generator().manual_seed(2)
    f = torch.rand(4, 8, 8, 8, generator=g)
    head = torch.nn.Conv2d(8, 4, 1, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.eye(4, 8)[:, :, None, None])
        z = head(f)
    scale = torch.rand(4, 1, 8, 8, generator=g)  # per-position residual size
    e = z - scale * torch.randn(z.shape, generator=g).abs()  # z - e > 0: gradients > 0
    err = (z - e).pow(2).sum(dim=1)

    def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
        ra, rb = a.flatten().argsort().argsort().float(), b.flatten().argsort().argsort().float()
        return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])

    layer = [spearman(activation_map(f[i:i + 1], e[i:i + 1], head, "layercam"), err[i])
             for i in range(4)]
    pooled = [spearman(activation_map(f[i:i + 1], e[i:i + 1], head), err[i]) for i in range(4)]
    assert min(layer) > 0.5, layer
    assert sum(layer) > sum(pooled) + 0.5, (layer, pooled)
