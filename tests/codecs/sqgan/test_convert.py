"""Warm start of a patch-2 SQ-GAN from a patch-1 model (semcomm.codecs.sqgan.convert)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from semcomm.codecs.sqgan.config import config_from_dict
from semcomm.codecs.sqgan.convert import main, patch2_from_patch1, source_key
from semcomm.codecs.sqgan.model import SQGAN
from semcomm.codecs.sqgan.train import export_model, load_model

from .conftest import tiny_dict


def _pair(old_ch: int = 16, old_mult: tuple[int, ...] = (1, 1, 1)) -> tuple[SQGAN, SQGAN]:
    d1 = tiny_dict()  # widths old_ch * old_mult from full resolution
    d2 = tiny_dict()
    for branch in ("image", "semantic"):
        d1["model"][branch].update(ch=old_ch, ch_mult=list(old_mult))
        d2["model"][branch].update(ch=16, ch_mult=[1, 1], patch=2)  # 16, 16 from half
    torch.manual_seed(0)
    old = SQGAN(config_from_dict(d1).model)
    torch.manual_seed(1)
    return old, SQGAN(config_from_dict(d2).model)


def test_levels_shift_and_output_conv_repeats_per_sub_pixel() -> None:
    old, new = _pair()
    assert source_key("image.encoder.levels.0.blocks.0.conv1.weight") == (
        "image.encoder.levels.1.blocks.0.conv1.weight")
    assert source_key("image.decoder.levels.0.blocks.0.conv1.weight") == (
        "image.decoder.levels.0.blocks.0.conv1.weight")
    report = patch2_from_patch1(old, new)
    src, dst = old.state_dict(), new.state_dict()
    assert torch.equal(dst["semantic.encoder.levels.0.blocks.0.conv1.weight"],
                       src["semantic.encoder.levels.1.blocks.0.conv1.weight"])
    assert torch.equal(dst["image.quantizer.codebook"], src["image.quantizer.codebook"])
    w_old, w_new = src["image.decoder.conv_out.weight"], dst["image.decoder.conv_out.weight"]
    assert w_new.shape[0] == 4 * w_old.shape[0]
    for c in range(w_old.shape[0]):
        for sub in range(4):
            assert torch.equal(w_new[4 * c + sub], w_old[c])
    assert set(report.expanded) == {f"{b}.decoder.conv_out.{p}" for b in ("image", "semantic")
                                    for p in ("weight", "bias")}
    assert not report.initialised
    assert any(".decoder.levels.2." in k for k in report.dropped)  # full-resolution level
    assert not any(k in dst for k in report.dropped if ".decoder.levels.2." in k)


def test_tensors_of_another_shape_keep_their_initialisation() -> None:
    old, new = _pair(8, (1, 2, 2))  # widths 8, 16, 16: the first 16-wide block takes 8
    before = {k: v.clone() for k, v in new.state_dict().items()}
    report = patch2_from_patch1(old, new)
    assert "image.encoder.conv_in.0.weight" in report.initialised
    assert "image.encoder.levels.0.blocks.0.conv1.weight" in report.initialised
    after = new.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in report.initialised)
    assert "image.encoder.levels.1.blocks.0.conv1.weight" in report.copied


def test_cli_writes_a_loadable_model_and_rejects_wrong_direction(tmp_path: Path) -> None:
    old, new = _pair()
    src = export_model(old, tmp_path / "old.pt", {"image": torch.ones(32),
                                                  "semantic": torch.ones(32)}, {"step": 5})
    cfg = tmp_path / "p2.yaml"
    d2 = tiny_dict()
    for branch in ("image", "semantic"):
        d2["model"][branch].update(ch=16, ch_mult=[1, 1], patch=2)
    cfg.write_text(yaml.safe_dump(d2))
    assert main(["--from", str(src), "--config", str(cfg), "--out", str(tmp_path / "p2.pt")]) == 0
    bundle = load_model(tmp_path / "p2.pt")
    assert bundle.model.config.image.patch == 2 and bundle.meta["source_meta"] == {"step": 5}
    assert torch.equal(bundle.index_counts["image"], torch.ones(32))
    with pytest.raises(ValueError, match="needs patch 1 -> 2"):
        patch2_from_patch1(new, old)
