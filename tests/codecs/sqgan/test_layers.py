"""Shared layers (semcomm.codecs.layers): each test says what failure it would catch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from semcomm.codecs.layers import (
    Downsample,
    EMAVectorQuantizer,
    PatchDiscriminator,
    ResBlock,
    SelfAttention,
    SPADEGroupNorm,
    Upsample,
    adaptive_adversarial_weight,
    bce_d_loss,
    bce_g_loss,
    hinge_d_loss,
    hinge_g_loss,
    num_groups,
)


def _onehot(labels: torch.Tensor, c: int) -> torch.Tensor:
    return F.one_hot(labels, c).permute(0, 3, 1, 2).float()


def test_num_groups_divides() -> None:
    for c in (1, 8, 20, 48, 64, 96, 256):
        g = num_groups(c)
        assert c % g == 0 and 1 <= g <= 32
    assert num_groups(256) == 32
    with pytest.raises(ValueError, match="channels"):
        num_groups(0)


def test_spade_conditions_on_the_map() -> None:
    torch.manual_seed(0)
    spade = SPADEGroupNorm(16, 5, hidden=8, kernel_size=3)
    x = torch.randn(2, 16, 8, 16)
    s1 = _onehot(torch.zeros(2, 32, 64, dtype=torch.long), 5)
    s2 = _onehot(torch.randint(0, 5, (2, 32, 64)), 5)
    y1, y2 = spade(x, s1), spade(x, s2)
    assert y1.shape == x.shape
    assert (y1 - y2).abs().max() > 1e-3  # a different map must change the output
    # A uniform map gives the same gamma/beta at every interior pixel: away from the
    # zero-padded border, the output is an affine function of the normalised input.
    assert torch.isfinite(y1).all()
    with pytest.raises(ValueError, match="label map shape"):
        spade(x, torch.zeros(2, 4, 32, 64))


def test_resblock_shapes_and_condition_required() -> None:
    plain = ResBlock(8, 16)
    assert plain(torch.randn(1, 8, 4, 4)).shape == (1, 16, 4, 4)
    cond = ResBlock(8, 8, label_channels=3, spade_hidden=4)
    s = torch.rand(1, 3, 4, 4)
    assert cond(torch.randn(1, 8, 4, 4), s).shape == (1, 8, 4, 4)
    with pytest.raises(ValueError, match="label map s is required"):
        cond(torch.randn(1, 8, 4, 4))


def test_attention_key_weight_is_multiply_then_renormalise() -> None:
    torch.manual_seed(1)
    attn = SelfAttention(8)
    x = torch.randn(2, 8, 3, 5)
    w = torch.rand(2, 15) * 0.9 + 0.05
    # Reference: softmax weights multiplied by w on keys, renormalised per query.
    b, c, n = 2, 8, 15
    q, k, v = attn.qkv(attn.norm(x)).reshape(b, 3, c, n).unbind(1)
    p = torch.softmax(torch.bmm(q.transpose(1, 2), k) * c ** -0.5, dim=-1) * w.unsqueeze(1)
    p = p / p.sum(-1, keepdim=True)
    ref = x + attn.proj(torch.bmm(v, p.transpose(1, 2)).reshape(b, c, 3, 5))
    torch.testing.assert_close(attn(x, w), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(attn(x, torch.ones(2, 15)), attn(x))
    assert (attn(x, w) - attn(x)).abs().max() > 1e-4


def test_down_and_upsample_shapes() -> None:
    x = torch.randn(1, 4, 16, 32)
    assert Downsample(4)(x).shape == (1, 4, 8, 16)
    assert Upsample(4)(x).shape == (1, 4, 32, 64)


def test_vq_nearest_and_eval_is_frozen() -> None:
    torch.manual_seed(2)
    vq = EMAVectorQuantizer(16, 4).eval()
    vq.codebook.copy_(torch.randn(16, 4))
    z = torch.randn(50, 4)
    out = vq(z)
    brute = torch.cdist(z, vq.codebook).argmin(dim=1)
    assert torch.equal(out.indices, brute)
    assert torch.equal(out.z_q, vq.codebook[brute])  # eval: exact codebook rows
    before = vq.codebook.clone()
    vq(z)
    assert torch.equal(vq.codebook, before) and out.restarted == 0
    with pytest.raises(ValueError, match=r"allowed \[0, 16\)"):
        vq.lookup(torch.tensor([16]))


def test_vq_ema_update_moves_codes_toward_their_vectors() -> None:
    torch.manual_seed(3)
    vq = EMAVectorQuantizer(4, 2, decay=0.5, dead_threshold=1e-3).train()
    centres = torch.tensor([[5.0, 0.0], [0.0, 5.0], [-5.0, 0.0], [0.0, -5.0]])
    z = centres.repeat_interleave(25, dim=0) + 0.1 * torch.randn(100, 2)
    means = z.view(4, 25, 2).mean(dim=1)
    start = centres + torch.tensor([1.0, -1.0])  # alive codes, off their clusters
    vq.codebook.copy_(start)
    vq.cluster_size.fill_(25.0)
    vq.embed_sum.copy_(start * 25.0)
    for _ in range(20):
        out = vq(z)
    # EMA with decay 0.5 forgets the start within 20 steps: codes = cluster means.
    assert out.restarted == 0 and float(out.perplexity) == pytest.approx(4.0, rel=1e-4)
    torch.testing.assert_close(vq.codebook, means, atol=1e-3, rtol=0)


def test_vq_first_training_step_initialises_from_data() -> None:
    torch.manual_seed(5)
    vq = EMAVectorQuantizer(16, 2).train()
    z = torch.randn(64, 2) * 3.0 + 20.0
    out = vq(z)
    # All codes start dead (zero usage): those not chosen restart from batch vectors.
    assert out.restarted >= 16 - int((torch.bincount(out.indices) > 0).sum())
    assert (vq.codebook.norm(dim=1) > 5.0).all()


def test_vq_restarts_dead_codes_from_batch_vectors() -> None:
    torch.manual_seed(4)
    vq = EMAVectorQuantizer(8, 3, dead_threshold=0.5).train()
    z = torch.randn(40, 3) + 10.0  # far from the initial codebook (|c| <= 1/8)
    vq(z)
    vq.cluster_size[:3] = 0.0  # kill three codes
    vq.codebook[:3] = -100.0
    out = vq(z)
    assert out.restarted >= 3
    assert (vq.codebook[:3] > 5.0).all()  # re-initialised near batch vectors (~10)
    assert (vq.cluster_size >= 0.5).all()


def test_vq_straight_through_and_commitment() -> None:
    vq = EMAVectorQuantizer(8, 3, beta=0.25).train()
    z = torch.randn(10, 3, requires_grad=True)
    out = vq(z)
    (out.z_q * torch.arange(3.0)).sum().backward()
    # Straight-through: dL/dz = dL/dz_q (the commitment term is not in this loss).
    torch.testing.assert_close(z.grad, torch.arange(3.0).expand(10, 3))
    z2 = torch.randn(10, 3, requires_grad=True)
    loss = vq(z2).loss
    loss.backward()
    assert loss > 0 and z2.grad is not None and z2.grad.abs().sum() > 0


def test_vq_empty_batch() -> None:
    vq = EMAVectorQuantizer(8, 3).train()
    out = vq(torch.zeros(0, 3))
    assert out.indices.shape == (0,) and out.z_q.shape == (0, 3) and out.restarted == 0
    assert float(out.loss) == 0.0


def test_patch_discriminator() -> None:
    d = PatchDiscriminator(3, ndf=8, n_layers=3)
    assert d(torch.randn(2, 3, 64, 64)).shape == (2, 1, 6, 6)  # 70x70 patches on 64x64
    assert PatchDiscriminator(20, 8, 2, "group")(torch.randn(1, 20, 32, 64)).shape[1] == 1
    with pytest.raises(ValueError, match="norm"):
        PatchDiscriminator(3, norm="instance")


def test_adversarial_losses_known_values() -> None:
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.5])
    # relu(1 - real) = [0, 1], relu(1 + fake) = [0, 1.5]
    assert float(hinge_d_loss(real, fake)) == pytest.approx(0.5 * (0.5 + 0.75))
    assert float(hinge_g_loss(fake)) == pytest.approx(0.75)
    sp = F.softplus
    assert float(bce_d_loss(real, fake)) == pytest.approx(
        float(0.5 * (sp(-real).mean() + sp(fake).mean())))
    assert float(bce_g_loss(fake)) == pytest.approx(float(sp(-fake).mean()))


def test_adaptive_weight_is_gradient_norm_ratio() -> None:
    layer = torch.nn.Linear(3, 2)
    x = torch.randn(5, 3)
    y = layer(x)
    rec, g = y.pow(2).mean(), -3.0 * y.mean()
    gr = torch.autograd.grad(rec, layer.weight, retain_graph=True)[0].norm()
    gg = torch.autograd.grad(g, layer.weight, retain_graph=True)[0].norm()
    lam = adaptive_adversarial_weight(rec, g, layer.weight, scale=0.5)
    assert float(lam) == pytest.approx(0.5 * float(gr / (gg + 1e-4)), rel=1e-5)
    capped = adaptive_adversarial_weight(rec, g, layer.weight, scale=1e6, max_weight=0.2)
    assert float(capped) == pytest.approx(0.2)
    assert not lam.requires_grad
