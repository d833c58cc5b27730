"""Rendered shards: the same samples as the generator, resumable rendering, guards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from semcomm.cli import main
from semcomm.data import build_dataset
from semcomm.data.shards import render_shards


def _same(a: object, b: object) -> bool:
    return (np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)  # type: ignore[attr-defined]
            and a.name == b.name)  # type: ignore[attr-defined]


@pytest.mark.parametrize("projection", ["pinhole", "equirectangular"])
def test_shards_hold_exactly_the_generated_samples(tmp_path: Path, projection: str) -> None:
    render_shards(tmp_path, count=5, size=(32, 64), split="val", seed=3, projection=projection,
                  shard_size=2, workers=1)
    assert sorted(p.name for p in tmp_path.glob("shard-*.npz")) == [
        "shard-00000.npz", "shard-00001.npz", "shard-00002.npz"]
    shards = build_dataset("shards", root=tmp_path, split="val", size=(32, 64))
    gen = build_dataset("streetscenes", split="val", count=5, size=(32, 64), seed=3,
                        projection=projection)
    assert len(shards) == 5
    for i in (4, 0, 3, 1, 2):  # out of order: shards are opened on demand
        assert _same(shards[i], gen[i])
    assert not np.array_equal(shards[0].image, shards[1].image)  # not one image repeated


def test_render_resumes_and_refuses_other_parameters(tmp_path: Path) -> None:
    render_shards(tmp_path, count=4, size=(32, 64), shard_size=2, workers=1)
    first = (tmp_path / "shard-00000.npz").stat().st_mtime_ns
    (tmp_path / "shard-00001.npz").unlink()  # an interrupted render
    render_shards(tmp_path, count=4, size=(32, 64), shard_size=2, workers=1)
    assert (tmp_path / "shard-00001.npz").is_file()
    assert (tmp_path / "shard-00000.npz").stat().st_mtime_ns == first  # kept, not redone
    with pytest.raises(ValueError, match="holds other parameters"):
        render_shards(tmp_path, count=4, size=(32, 64), seed=1, shard_size=2, workers=1)
    with pytest.raises(ValueError, match="split 'train' rendered, 'val' asked"):
        build_dataset("shards", root=tmp_path, split="val")
    with pytest.raises(ValueError, match=r"size \[32, 64\] rendered, \[64, 128\] asked"):
        build_dataset("shards", root=tmp_path, size=(64, 128))
    with pytest.raises(ValueError, match=r"count 5 outside \[1, 4\]"):
        build_dataset("shards", root=tmp_path, count=5)
    assert json.loads((tmp_path / "manifest.json").read_text())["params"]["count"] == 4


def test_cli_renders_and_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    out = tmp_path / "s"
    assert main(["data", "render", "--out", str(out), "--count", "3", "--size", "32", "64",
                 "--workers", "1"]) == 0
    assert len(build_dataset("shards", root=out)) == 3
    assert main(["data", "render", "--out", str(tmp_path / "b"), "--count", "2", "--size",
                 "30", "64"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "semcomm data render:" in err[0]
    with pytest.raises(ValueError, match="manifest.json"):
        build_dataset("shards", root=tmp_path)
