"""class_iou.csv: per-class pooled IoU from points.jsonl, the named/other groups, the plot."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from semcomm.data import CLASS_NAMES
from semcomm.runner import class_iou
from semcomm.runner.config import PlotsConfig

PERSON, ROAD, CAR = (CLASS_NAMES.index(c) for c in ("person", "road", "car"))


def _line(codec: str, snr: float, image: int, inter: dict[int, int], union: dict[int, int],
          realization: int = 0) -> dict:
    i, u = [0] * 19, [0] * 19
    for c, v in inter.items():
        i[c] = v
    for c, v in union.items():
        u[c] = v
    return {"kind": "link", "codec": codec, "rate": "knob=0.15", "link": "L", "snr_db": snr,
            "image": image, "realization": realization, "inter": i, "union": u,
            "map_inter": i, "map_union": u}


def _write(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_pooled_per_class_and_group_rows(tmp_path: Path) -> None:
    lines = [
        _line("uep", 4.0, 0, {PERSON: 10, ROAD: 50}, {PERSON: 20, ROAD: 100}),
        _line("uep", 4.0, 1, {PERSON: 30, ROAD: 0, CAR: 5}, {PERSON: 40, ROAD: 100, CAR: 10}),
        _line("uep", 4.0, 1, {PERSON: 0}, {PERSON: 99}),  # a repeated key: first line wins
        _line("plain", 4.0, 0, {ROAD: 80}, {ROAD: 100, PERSON: 5}),
    ]
    path = _write(tmp_path / "points.jsonl", lines)
    rows = class_iou.class_rows(path, {"uep": ("person",)}, n_boot=200)
    get = {(r["codec"], r["class"]): r for r in rows}
    person, road = get[("uep", "person")], get[("uep", "road")]
    assert person["iou"] == pytest.approx(40 / 60) and person["protected"]
    assert road["iou"] == pytest.approx(50 / 200) and not road["protected"]
    assert person["n"] == 2 and person["union_px"] == 60
    assert person["iou_lo"] <= person["iou"] <= person["iou_hi"]
    assert person["map_iou"] == pytest.approx(person["iou"])
    other = get[("uep", "other")]  # mean over road and car (classes with pixels)
    assert other["iou"] == pytest.approx((50 / 200 + 5 / 10) / 2) and other["scope"] == "group"
    assert get[("uep", "named")]["iou"] == pytest.approx(40 / 60)
    # A codec that protects nothing: its named group is the run's named classes, unprotected.
    assert get[("plain", "named")]["iou"] == 0.0 and not get[("plain", "named")]["protected"]
    assert ("plain", "car") not in get  # no pixels of the class at that point: no row


def test_map_iou_over_the_decodes_that_returned_a_map(tmp_path: Path) -> None:
    failed = _line("uep", 0.0, 1, {ROAD: 0}, {ROAD: 100})
    del failed["map_inter"], failed["map_union"]  # a failed decode returns no map
    path = _write(tmp_path / "points.jsonl",
                  [_line("uep", 0.0, 0, {ROAD: 60}, {ROAD: 100}), failed])
    road = {r["class"]: r for r in class_iou.class_rows(path, {"uep": ("person",)})}["road"]
    assert road["iou"] == pytest.approx(60 / 200) and road["map_iou"] == pytest.approx(0.6)


def test_csv_round_trip_and_plot(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lines = [_line(codec, snr, img, {PERSON: int(rng.integers(0, 20)), ROAD: 80},
                   {PERSON: 20, ROAD: 100})
             for codec in ("a", "b") for snr in (0.0, 4.0, 8.0) for img in range(3)]
    rows = class_iou.class_rows(_write(tmp_path / "points.jsonl", lines), {"a": ("person",)},
                                n_boot=100)
    class_iou.write_csv(rows, tmp_path / "class_iou.csv")
    back = class_iou.read_csv(tmp_path / "class_iou.csv")
    assert len(back) == len(rows)
    assert all(math.isclose(b["iou"], r["iou"], rel_tol=1e-5) for b, r in zip(back, rows,
                                                                             strict=True))
    paths = class_iou.class_plot(tmp_path, tmp_path, PlotsConfig(formats=["png"]), "Es/N0",
                                 {"a": ("C0", "o"), "b": ("C1", "s")})
    assert [p.name for p in paths] == ["class_iou_vs_snr.png"] and paths[0].stat().st_size > 0
    assert class_iou.class_plot(tmp_path / "nothing", tmp_path, PlotsConfig(), "x", {}) == []
