"""SQ-GAN model: token shapes, exact decode, de-masking of lost tokens, conditioning."""

from __future__ import annotations

import io
import math

import pytest
import torch

from semcomm.codecs.sqgan.config import load_config
from semcomm.codecs.sqgan.model import (
    SQGAN,
    BranchTokens,
    SQGANTokens,
    analytic_bpp,
    count_parameters,
    kept_count,
    labels_from_logits,
    one_hot_labels,
)

from .conftest import tiny_config


@pytest.fixture(scope="module")
def model() -> SQGAN:
    torch.manual_seed(0)
    m = SQGAN(tiny_config().model)
    # A few training-mode passes so the codebooks hold data-driven codes (not the
    # near-identical initial ones), which makes the equality tests meaningful.
    x, s = _batch(4, seed=9)
    m.train()
    for _ in range(2):
        m(x, s, 0.5, 0.5, "all")
    return m.eval()


def _batch(b: int = 2, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, 3, 32, 64, generator=g)
    s = torch.randint(0, 19, (b, 32, 64), generator=g)
    s[:, :4, :8] = 255
    return x, s


def test_kept_count_and_analytic_bpp() -> None:
    assert kept_count(0.05, 512) == 25 and kept_count(1.0, 128) == 128
    assert kept_count(0.29, 100) == 29  # binary rounding of 0.29 * 100 does not lose one
    assert kept_count(0.0, 128) == 0
    for bad in (-0.1, 1.01, float("nan")):
        with pytest.raises(ValueError, match="kept fraction"):
            kept_count(bad, 128)
    # REFERENCE.md: 256 x 512, 512 positions: m = 0.05 -> 0.0058 bpp, m = 1 -> 0.043.
    px = 256 * 512
    assert analytic_bpp(kept_count(0.05, 512), 512, px) == pytest.approx(0.0058, abs=5e-5)
    assert analytic_bpp(512, 512, px) == pytest.approx(0.043, abs=5e-4)
    with pytest.raises(ValueError, match="kept"):
        analytic_bpp(513, 512, px)


def test_one_hot_round_trip_and_validation() -> None:
    s = torch.tensor([[[0, 18, 255], [7, 6, 255]]])
    oh = one_hot_labels(s)
    assert oh.shape == (1, 20, 2, 3) and torch.equal(oh.sum(1), torch.ones(1, 2, 3))
    assert oh[0, 19, 0, 2] == 1.0  # void is the last channel
    assert torch.equal(labels_from_logits(oh), s)
    with pytest.raises(ValueError, match="allowed"):
        one_hot_labels(torch.tensor([[[19]]]))


@pytest.mark.parametrize("m_x,m_s", [(0.05, 1.0), (0.5, 0.2875), (1.0, 0.0)])
def test_token_shapes_counts_and_order(model: SQGAN, m_x: float, m_s: float) -> None:
    x, s = _batch()
    tok = model.encode_tokens(x, s, m_x, m_s)
    for br, m, k_max in ((tok.image, m_x, 32), (tok.semantic, m_s, 32)):
        assert br.indices.shape == (2, 8, 16) and br.indices.dtype == torch.int64
        assert br.kept.shape == (2, 8, 16) and br.kept.dtype == torch.bool
        assert torch.equal(br.kept.sum((1, 2)), torch.full((2,), math.floor(m * 128)))
        assert int(br.indices.min()) >= 0 and int(br.indices.max()) < k_max
        assert (br.indices[~br.kept] == 0).all()
        assert torch.equal(br.sequence(1), br.indices[1][br.kept[1]])  # raster order
        rebuilt = BranchTokens.from_sequences(br.kept, [br.sequence(0), br.sequence(1)])
        assert torch.equal(rebuilt.indices, br.indices) and torch.equal(rebuilt.kept, br.kept)
    with pytest.raises(ValueError, match="indices for"):
        BranchTokens.from_sequences(tok.image.kept, [tok.image.sequence(0)[:-1],
                                                     tok.image.sequence(1)])


def test_kept_positions_are_the_top_scores(model: SQGAN) -> None:
    x, s = _batch()
    onehot = one_hot_labels(s)
    assert model.image.pos_embed is not None
    with torch.no_grad():
        z = model.image.encoder(2 * x - 1, model.image.pos_embed(onehot))
        scores = model.image.samm.score(z, onehot)
    tok = model.encode_tokens(x, s, 0.25, 0.25)
    for b in range(2):
        kept_scores = scores[b][tok.image.kept[b].flatten()]
        dropped = scores[b][~tok.image.kept[b].flatten()]
        assert kept_scores.min() >= dropped.max()



def test_select_overrides_samm_choice_with_the_same_count(model: SQGAN) -> None:
    """select_x / select_s keep exactly the given positions (the masking ablation);
    SAMM's own top-k given back reproduces its tokens; a wrong count fails."""
    x, s = _batch()
    ref = model.encode_tokens(x, s, 0.25, 0.5)
    k_x, k_s = (int(br.kept[0].sum()) for br in (ref.image, ref.semantic))
    sel_x = torch.stack([torch.randperm(128, generator=torch.Generator().manual_seed(b))[:k_x]
                         for b in range(2)])
    tok = model.encode_tokens(x, s, 0.25, 0.5, select_x=sel_x)
    for b in range(2):
        assert set(tok.image.kept[b].flatten().nonzero()[:, 0].tolist()) == set(
            sel_x[b].tolist())
    assert torch.equal(tok.semantic.indices, ref.semantic.indices)
    own_s = torch.stack([ref.semantic.kept[b].flatten().nonzero()[:, 0] for b in range(2)])
    same = model.encode_tokens(x, s, 0.25, 0.5, select_s=own_s.flip(1))
    assert torch.equal(same.semantic.indices, ref.semantic.indices)
    assert torch.equal(same.semantic.kept, ref.semantic.kept)
    with pytest.raises(ValueError, match=r"select must be int64 \[2, 32\]"):
        model.encode_tokens(x, s, 0.25, 0.5, select_x=sel_x[:, :5])

def test_decode_tokens_reproduces_forward_exactly(model: SQGAN) -> None:
    x, s = _batch(3, seed=2)
    with torch.no_grad():
        ref = model(x, s, 0.5, 0.2875, "all")
    ref_grad = model(x, s, 0.5, 0.2875, "all")  # autograd on: same numbers
    dec = model.decode_tokens(model.encode_tokens(x, s, 0.5, 0.2875))
    assert ref.image is not None and ref.semantic is not None and ref_grad.image is not None
    assert torch.equal(dec.x_hat, ref.image.output)
    assert torch.equal(dec.x_hat, ref_grad.image.output)
    assert torch.equal(dec.s_logits, ref.semantic.output)
    assert torch.equal(dec.s_hat, labels_from_logits(ref.semantic.output))
    assert dec.x_hat.shape == (3, 3, 32, 64) and dec.s_hat.dtype == torch.int64


def test_lost_tokens_are_filled_like_unkept_ones(model: SQGAN) -> None:
    x, s = _batch(2, seed=3)
    tok = model.encode_tokens(x, s, 0.7625, 0.7625)
    g = torch.Generator().manual_seed(0)
    lost_x = tok.image.kept & (torch.rand(2, 8, 16, generator=g) < 0.3)
    lost_s = tok.semantic.kept & (torch.rand(2, 8, 16, generator=g) < 0.3)
    assert lost_x.any() and lost_s.any()
    # Garbage at lost positions (what a corrupted packet leaves) must be ignored.
    garbage = SQGANTokens(
        BranchTokens(torch.where(lost_x, 10**6, tok.image.indices), tok.image.kept),
        BranchTokens(torch.where(lost_s, -7, tok.semantic.indices), tok.semantic.kept))
    lossy = model.decode_tokens(garbage, lost_x, lost_s)
    unkept = model.decode_tokens(SQGANTokens(
        BranchTokens(tok.image.indices, tok.image.kept & ~lost_x),
        BranchTokens(tok.semantic.indices, tok.semantic.kept & ~lost_s)))
    clean = model.decode_tokens(tok)
    assert torch.equal(lossy.x_hat, unkept.x_hat) and torch.equal(lossy.s_hat, unkept.s_hat)
    assert (lossy.x_hat - clean.x_hat).abs().max() > 1e-4  # losses did change the output
    assert torch.isfinite(lossy.x_hat).all()
    everything_lost = model.decode_tokens(tok, tok.image.kept, tok.semantic.kept)
    assert everything_lost.x_hat.shape == clean.x_hat.shape


def test_decode_rejects_bad_tokens(model: SQGAN) -> None:
    x, s = _batch()
    tok = model.encode_tokens(x, s, 0.5, 0.5)
    bad = SQGANTokens(BranchTokens(torch.where(tok.image.kept, 99, 0), tok.image.kept),
                      tok.semantic)
    with pytest.raises(ValueError, match="allowed"):
        model.decode_tokens(bad)
    with pytest.raises(ValueError, match="missing_x must be bool"):
        model.decode_tokens(tok, missing_x=torch.zeros(2, 8, 15, dtype=torch.bool))
    with pytest.raises(ValueError, match="multiples of 4"):
        model.encode_tokens(x[..., :30], s[..., :30], 0.5, 0.5)
    with pytest.raises(ValueError, match="kept fraction"):
        model.encode_tokens(x, s, 1.5, 0.5)


def test_gradients_reach_the_samm_scorer() -> None:
    torch.manual_seed(0)
    m = SQGAN(tiny_config().model).train()
    x, s = _batch()
    for out in (m.forward_image(x, s, 0.5), m.forward_semantic(s, 0.5)):
        (out.output.square().mean() + out.encoding.vq.loss).backward()
    for samm in (m.image.samm, m.semantic.samm):
        for p in (samm.conv2.weight, samm.conv1.weight, samm.norm1.gamma.weight):
            assert p.grad is not None and p.grad.abs().sum() > 0


def test_spade_decoder_follows_the_map(model: SQGAN) -> None:
    x, s = _batch()
    tok = model.encode_tokens(x, s, 0.5, 0.5)
    present = tok.image.kept
    road = torch.zeros_like(s)
    with torch.no_grad():
        a = model.image.decode_indices(tok.image.indices, present, one_hot_labels(s))
        b = model.image.decode_indices(tok.image.indices, present, one_hot_labels(road))
    assert (a - b).abs().mean() > 1e-3


def test_same_seed_same_model_and_training_mode_warning() -> None:
    torch.manual_seed(5)
    a = SQGAN(tiny_config().model)
    torch.manual_seed(5)
    b = SQGAN(tiny_config().model)
    x, s = _batch()
    with pytest.warns(UserWarning, match="training mode"):
        ta = a.encode_tokens(x, s, 0.5, 0.5)
    assert a.training  # restored after the call
    tb = b.eval().encode_tokens(x, s, 0.5, 0.5)
    assert torch.equal(ta.image.indices, tb.image.indices)
    assert torch.equal(a.eval().decode_tokens(ta).x_hat, b.decode_tokens(tb).x_hat)


def test_compact_config_size_budget() -> None:
    cfg = load_config("configs/sqgan_compact.yaml").model
    assert cfg.grid_size == (8, 16) and cfg.image.downsampling == 16
    torch.manual_seed(0)
    m = SQGAN(cfg)
    counts = count_parameters(m)
    assert 1_500_000 <= counts["semantic"] <= 5_000_000
    assert 2_000_000 <= counts["image"] <= 5_000_000
    assert counts["total"] == counts["image"] + counts["semantic"]
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    assert len(buf.getvalue()) <= 20 * 2**20  # the shipped file must stay <= 20 MB


def test_paper_config_shapes() -> None:
    cfg = load_config("configs/sqgan_paper.yaml")
    assert cfg.model.grid_size == (16, 32) and cfg.model.image.codebook_size == 1024
    assert cfg.model.image.bits_per_index == 10 and cfg.model.image.codebook_dim == 256


def test_patch_2_has_no_full_resolution_layer_and_decodes_exactly() -> None:
    """``patch: 2``: stride-2 stem, pixel-shuffle output; same grid with one level
    fewer, every hidden feature map at most half the image size, exact decode."""
    from semcomm.codecs.sqgan.config import config_from_dict

    from .conftest import tiny_dict

    d = tiny_dict()
    for branch in ("image", "semantic"):
        d["model"][branch].update(ch_mult=[1, 2], patch=2)
    cfg = config_from_dict(d).model
    assert cfg.image.downsampling == 4 and cfg.grid_size == (8, 16)
    torch.manual_seed(0)
    m = SQGAN(cfg)
    x, s = _batch(2, seed=4)
    m.train()
    m(x, s, 0.5, 0.5, "all")
    m.eval()
    sizes: list[tuple[int, int]] = []
    hooks = [mod.register_forward_hook(
        lambda _m, _i, out: sizes.append(tuple(out.shape[-2:])))
        for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)]
    dec = m.decode_tokens(m.encode_tokens(x, s, 0.5, 0.5))
    for h in hooks:
        h.remove()
    assert max(sizes) == (16, 32)  # no convolution at 32 x 64
    with torch.no_grad():
        ref = m(x, s, 0.5, 0.5, "all")
    assert ref.image is not None and ref.semantic is not None
    assert dec.x_hat.shape == (2, 3, 32, 64) and dec.s_logits.shape == (2, 20, 32, 64)
    assert torch.equal(dec.x_hat, ref.image.output)
    assert torch.equal(dec.s_logits, ref.semantic.output)
    d["model"]["image"]["patch"] = 4
    with pytest.raises(ValueError, match=r"patch 4 not in \(1, 2\)"):
        config_from_dict(d)
