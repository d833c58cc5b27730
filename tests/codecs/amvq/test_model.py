"""AM-VQ model: shapes per scale, training pass (masks, STE, EMA, float range), eval purity."""

from __future__ import annotations

import pytest
import torch

from semcomm.codecs.amvq.config import config_from_dict
from semcomm.codecs.amvq.model import AMVQ, count_parameters

from .conftest import synthetic_samples, tiny_config, tiny_dict


def _batch(n: int = 2) -> torch.Tensor:
    data = synthetic_samples(n, seed=7)
    return torch.stack([torch.from_numpy(d.image).permute(2, 0, 1) for d in data]).float() / 255


@pytest.mark.parametrize("scales", [1, 2, 3])
def test_shapes_per_scale(scales: int) -> None:
    d = tiny_dict()
    d["model"]["scales"] = scales
    model = AMVQ(config_from_dict(d).model).eval()
    x = _batch()
    assert model.grid_shapes((32, 64)) == [(4, 8), (8, 16), (16, 32)][:scales]
    analysis = model.analyze(x)
    assert [tuple(a.z.shape) for a in analysis] == [
        (2, 4, 4, 8), (2, 4, 8, 16), (2, 4, 16, 32)][:scales]
    assert all(a.indices.dtype == torch.int64 and a.a.shape == a.indices.shape
               for a in analysis)
    x_hat = model.decode([a.z for a in analysis])
    assert x_hat.shape == x.shape
    counts = count_parameters(model)
    assert counts["total"] == counts["encoder"] + counts["decoder"] + counts["codebooks"]
    with pytest.raises(ValueError, match="multiple of the AM-VQ downsampling 8"):
        model.grid_shapes((36, 64))
    with pytest.raises(ValueError, match=f"decoder needs {scales} latent grids"):
        model.decoder([a.z for a in analysis] + [analysis[0].z])


def test_res_width_input_keeps_level_widths_and_shapes() -> None:
    """``res_width: input``: each downsample block's residual blocks run at the block's
    input width and the strided conv widens; same grids and outputs, fewer operations."""
    d = tiny_dict()
    d["model"]["res_width"] = "input"
    model = AMVQ(config_from_dict(d).model).eval()
    widths = [4, 8, 8, 16]
    for i, block in enumerate(model.encoder.blocks):
        convs = [m for m in block.res.modules() if isinstance(m, torch.nn.Conv2d)]
        assert {c.out_channels for c in convs} == {widths[i]}
        assert (block.down.conv.in_channels, block.down.conv.out_channels) == (
            widths[i], widths[i + 1])
    x = _batch()
    analysis = model.analyze(x)
    assert [tuple(a.z.shape) for a in analysis] == [(2, 4, 4, 8), (2, 4, 8, 16)]
    assert model.decode([a.z for a in analysis]).shape == x.shape
    wide = AMVQ(tiny_config().model)
    assert count_parameters(model)["encoder"] < count_parameters(wide)["encoder"]
    d["model"]["res_width"] = "middle"
    with pytest.raises(ValueError, match=r"res_width 'middle' not in \('output', 'input'\)"):
        config_from_dict(d)


def test_training_pass_masks_ste_and_statistics() -> None:
    torch.manual_seed(0)
    model = AMVQ(tiny_config().model).train()
    x = _batch(4)
    codebook0 = model.quantizer(0).codebook.clone()
    out = model(x, tau=0.3)
    assert out.x_hat.shape == x.shape
    assert int(model.range_updates) == 1
    assert not torch.equal(codebook0, model.quantizer(0).codebook)  # EMA (data init)
    lo, hi = model.float_range[0].tolist()
    assert lo < hi
    for a, m in zip(out.maps, out.masks, strict=True):
        assert torch.equal(m, a > 1.0 - 0.3)
    assert 0.0 < out.unquantized_fraction < 1.0
    (out.x_hat.mean() + out.vq_loss).backward()
    enc_grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None for g in enc_grads)  # straight-through VQ and SQ
    assert any(float(g.abs().sum()) > 0 for g in enc_grads if g is not None)
    plain = model(x, tau=0.0)
    assert not any(bool(m.any()) for m in plain.masks)
    with pytest.raises(ValueError, match="tau"):
        model(x, tau=1.2)


def test_scalar_quantizer_follows_the_float_range() -> None:
    model = AMVQ(tiny_config().model)
    model.float_range[1] = torch.tensor([-2.0, 3.0])
    q = model.scalar_quantizer(1)
    assert (q.lo, q.hi, q.bits) == (-2.0, 3.0, 4)
    assert model.scalar_quantizer(1, bits=7).levels == 128
    # The training twin of the quantizer matches the NumPy one.
    z = torch.linspace(-3, 4, 101).reshape(1, 1, 1, 101)
    twin = model._sq(z, 1, None)
    expected = torch.from_numpy(q.dequantize(q.quantize(z.numpy())))
    torch.testing.assert_close(twin, expected, atol=1e-6, rtol=0)


def test_commitment_only_at_quantized_positions_when_asked() -> None:
    """``commit_floats=False``: each scale's commitment counts the quantized positions
    only (sum over them / (N d), times beta), so the vectors sent unquantized get no
    commitment gradient; at tau = 0 (plain VQ) it equals the usual loss."""
    torch.manual_seed(0)
    model = AMVQ(tiny_config().model).eval()  # eval: no EMA, same codebooks for each pass
    x = _batch(4)
    plain_all = model(x, tau=0.0)
    plain_masked = model(x, tau=0.0, commit_floats=False)
    torch.testing.assert_close(plain_all.vq_loss, plain_masked.vq_loss)

    zs: list[torch.Tensor] = []
    hooks = [model.encoder.head(s).register_forward_hook(
        lambda _m, _i, z: zs.append(z)) for s in range(model.config.scales)]
    out = model(x, tau=1.0, commit_floats=False)
    for h in hooks:
        h.remove()
    zs = zs[:model.config.scales]  # the forward pass's latents (the map reuses the heads)
    assert all(bool(m.any()) and not bool(m.all()) for m in out.masks)
    for s, (z, m) in enumerate(zip(zs, out.masks, strict=True)):
        q = model.quantizer(s)
        rows = z.detach().permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        e = model.lookup(s, q.nearest(rows).reshape(m.shape))
        expected = q.beta * ((z.detach() - e).pow(2) * (~m)[:, None]).sum() / z.numel()
        torch.testing.assert_close(out.vq[s].loss.detach(), expected)
        grad = torch.autograd.grad(out.vq[s].loss, z, retain_graph=True)[0]
        assert float(grad.abs().sum()) > 0
        assert float(grad.permute(0, 2, 3, 1)[m].abs().max()) == 0.0
    full = model(x, tau=1.0)
    assert all(f.loss.item() > p.loss.item() for f, p in zip(full.vq, out.vq, strict=True))
