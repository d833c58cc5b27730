"""Equal channel uses, exactly: integer byte budgets from the link, codecs that leave
them unspent flagged (``budget_unmet``), packets sized from the link (``packet_bytes:
auto``), explicit packet sizes checked against the link, payload cache keyed by packets."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest

from semcomm.codecs.base import RatePoint
from semcomm.codecs.registry import build_codec
from semcomm.runner.config import ConfigError, load_experiment
from semcomm.runner.run import run_experiment

# 96 x 160 on 16-QAM LDPC 1/2 (k = 4096: 509 payload bytes, 2048 symbols per block):
# 0.2 cu/px = 3072 channel uses = one block = 509 bytes. As a bpp, 8 * 509 / 15360
# floors back to 508 bytes (the off-by-one the exact budget removes).
H, W, RATIO, BUDGET = 96, 160, 0.2, 509

ECU = """
name: ecu
dataset: {{count: 1, size: [{h}, {w}]}}
codecs:
  - {{name: jpeg, bandwidth_ratio: [{ratio}]}}
  {more}
links: [{{modulation: 16qam, code_rate: 0.5, channel: awgn}}]
snr: {{esno_db: [20]}}
failure: {{policy: grey}}
metrics: {{bootstrap: 20, ms_ssim: false}}
"""


def _write(tmp_path: Path, more: str = "", ratio: float = RATIO, h: int = H, w: int = W,
           links: str | None = None) -> Path:
    text = ECU.format(h=h, w=w, ratio=ratio, more=more)
    if links is not None:
        text = text.replace("links: [{modulation: 16qam, code_rate: 0.5, channel: awgn}]",
                            links)
    path = tmp_path / "ecu.yaml"
    path.write_text(text)
    return path


def _lines(run_dir: Path) -> list[dict]:
    return [json.loads(t) for t in (run_dir / "points.jsonl").read_text().splitlines()]


def test_rate_point_byte_budget() -> None:
    assert RatePoint(max_bytes=509).byte_budget(H * W) == 509
    assert RatePoint(max_bytes=509).label == "bytes=509"
    # The round trip the exact budget avoids: 509 bytes as a bpp floor back to 508.
    assert math.floor(RatePoint(bpp=8 * 509 / (H * W)).byte_budget(H * W)) == 508
    assert RatePoint(max_bytes=509).unreachable(510, H * W)
    assert not RatePoint(max_bytes=509).unreachable(509, H * W)
    with pytest.raises(ValueError, match="exactly one"):
        RatePoint(bpp=1.0, max_bytes=3)
    with pytest.raises(ValueError, match="max_bytes 0"):
        RatePoint(max_bytes=0)


def test_budget_is_exact_at_96x160_and_unmet_is_flagged(tmp_path: Path) -> None:
    """JPEG fills the 509-byte block; SQ-GAN at m = 1 sends one 509-byte packet of a
    two-block budget (0.3 cu/px = 4608 uses = 1018 bytes): flagged, warned, achieved cu/px shown."""
    path = _write(tmp_path, more="- {name: sqgan, bandwidth_ratio: [0.3]}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = run_experiment(load_experiment(path), tmp_path / "r", progress=False)
    lines = [x for x in _lines(run.run_dir) if x["kind"] != "original"]
    jpeg = [x for x in lines if x["codec"] == "jpeg"]
    sqgan = [x for x in lines if x["codec"] == "sqgan"]
    assert {x["budget_bytes"] for x in jpeg} == {BUDGET}
    assert {x["rate"] for x in jpeg if x["kind"] == "error-free"} == {f"bytes={BUDGET}"}
    assert all(BUDGET - 509 < x["bytes"] <= BUDGET and not x["budget_unmet"] for x in jpeg)
    assert {x["budget_bytes"] for x in sqgan} == {2 * BUDGET}
    assert all(x["bytes"] == BUDGET and x["budget_unmet"] for x in sqgan)
    assert all(x["achieved_cu_per_pixel"] == pytest.approx(2048 / (H * W)) for x in sqgan)
    assert any("budget_unmet" in str(w.message) and "sqgan" in str(w.message)
               for w in caught)
    rows = [r for r in run.rows if r["codec"] == "sqgan" and r["kind"] == "link"]
    assert rows and rows[0]["budget_unmet"] == 1
    assert rows[0]["cu_per_pixel"] == pytest.approx(2048 / (H * W))
    from semcomm.runner.plots import curve_label

    assert curve_label("sqgan", "cu/px=0.3", rows) == \
        f"sqgan cu/px={2048 / (H * W):.3g} of 0.3, budget unmet"
    report = (run.run_dir / "report.html").read_text()
    assert "budget unmet" in report


def test_packet_bytes_auto_follows_the_link(tmp_path: Path) -> None:
    """k = 1024 (125-byte blocks): AM-VQ's payload is whole 125-byte packets; with the
    default k (509) another run gives 509-byte packets; the cache names the geometry."""
    sizes = {}
    for k, pb in ((1024, 125), (None, 509)):
        k_key = f", k: {k}" if k else ""
        links = f"links: [{{modulation: 16qam, code_rate: 0.5, channel: awgn{k_key}}}]"
        path = _write(tmp_path, more="- {name: amvq, knob: [0.3]}", links=links)
        run = run_experiment(load_experiment(path), tmp_path / f"r{pb}", progress=False)
        amvq = [x for x in _lines(run.run_dir) if x["codec"] == "amvq"]
        assert amvq and all(x["bytes"] % pb == 0 for x in amvq)
        cached = sorted(p.name for p in (run.run_dir / "payloads" / "amvq").iterdir())
        assert cached and all(name.endswith(f"_pkt{pb}.json") for name in cached)
        sizes[pb] = amvq[0]["bytes"]
    assert sizes[125] != sizes[509]


@pytest.mark.parametrize("value,ok", [(509, True), (510, False), (0, False), ("big", False),
                                      (None, True), ("auto", True)])
def test_explicit_packet_bytes_must_fit_a_block(tmp_path: Path, value: object, ok: bool) -> None:
    more = f"- {{name: amvq, knob: [0.3], params: {{packet_bytes: {json.dumps(value)}}}}}"
    path = _write(tmp_path, more=more)
    if ok:
        load_experiment(path)
        return
    with pytest.raises(ConfigError, match=r"codecs\[1\]\.params\.packet_bytes") as err:
        load_experiment(path)
    assert "\n" not in str(err.value)


def test_priority_code_bounds_the_packet_size(tmp_path: Path) -> None:
    links = ("links: [{modulation: 16qam, code_rate: 0.5, channel: awgn, "
             "priority: {modulation: qpsk, code_rate: 0.333, k: 1024}}]")
    path = _write(tmp_path, more="- {name: amvq, knob: [0.3], params: {packet_bytes: 509}}",
                  links=links.replace("channel: awgn,", "channel: awgn,"))
    path.write_text(path.read_text().replace("bandwidth_ratio: [0.2]", "bpp: [1.0]"))
    with pytest.raises(ConfigError, match="125 payload bytes"):
        load_experiment(path)


def test_jpeg_fills_an_exact_budget() -> None:
    from semcomm.data import build_dataset

    image = build_dataset("streetscenes", split="val", count=1, size=(H, W))[0].image
    payload = build_codec("jpeg").encode(image, None, RatePoint(max_bytes=BUDGET))
    assert 400 < len(payload.data) <= BUDGET


def test_bandwidth_ratio_with_uep_is_one_total_budget(tmp_path: Path) -> None:
    """SQ-GAN marks its semantic packets priority: they go on QPSK LDPC 1/3 (k = 1024),
    the rest on 16-QAM 1/2; priority and main blocks together stay within 0.3 cu/px."""
    links = ("links: [{modulation: 16qam, code_rate: 0.5, channel: awgn, "
             "priority: {modulation: qpsk, code_rate: 0.333, k: 1024}}]")
    path = _write(tmp_path, more="- {name: sqgan, bandwidth_ratio: [0.3], "
                                 "params: {m_s_ratio: 4.0}}", links=links)
    run = run_experiment(load_experiment(path), tmp_path / "u", progress=False)
    lines = [x for x in _lines(run.run_dir) if x["codec"] == "sqgan"]
    budget = int(0.3 * H * W)
    assert lines and all(x["budget_cu"] == budget for x in lines)
    assert all(x["achieved_cu"] <= budget for x in lines)
    assert all(x["priority_bytes"] > 0 for x in lines)
    sent = [x["channel_uses"] for x in lines if x["kind"] == "link"]
    assert sent and all(s <= budget for s in sent)
    assert all(x["achieved_cu"] == s for x, s in zip(
        [x for x in lines if x["kind"] == "link"], sent, strict=True))


def test_per_codec_link_override_under_the_same_budget(tmp_path: Path) -> None:
    """jpeg-robust sends on QPSK LDPC 1/3 (k = 1024: 125 bytes per block) in the same
    0.2 cu/px (3072 uses) and the same panel as jpeg on 16-QAM 1/2."""
    more = ("- {name: jpeg, label: jpeg-robust, bandwidth_ratio: [0.2], "
            "link: {modulation: qpsk, code_rate: 0.333, k: 1024}}")
    path = _write(tmp_path, more=more)
    run = run_experiment(load_experiment(path), tmp_path / "o", progress=False)
    lines = [x for x in _lines(run.run_dir) if x["kind"] == "link"]
    plain = [x for x in lines if x["codec"] == "jpeg"]
    robust = [x for x in lines if x["codec"] == "jpeg-robust"]
    assert plain and robust and {x["link"] for x in robust} == {x["link"] for x in plain}
    assert {x["budget_bytes"] for x in plain} == {BUDGET}
    from channels import Link, LinkConfig

    own = Link(LinkConfig(modulation="qpsk", code_rate=0.333, k=1024, channel="awgn"))
    assert {x["budget_bytes"] for x in robust} == {own.max_payload_bytes(3072)} != {BUDGET}
    assert all(x["codec_link"].startswith("qpsk-ldpc0.333") for x in robust)
    # JPEG cannot get down to 125 bytes at 96 x 160: flagged, never hidden.
    assert all(x["unreachable"] and x["budget_exceeded"] for x in robust)
    assert not any(x["budget_exceeded"] for x in plain)
    assert all("codec_link" not in x for x in plain)
    bad = path.read_text().replace("k: 1024}}", "k: 1024, modulation: 8psk}}")
    path.write_text(bad.replace("modulation: qpsk, ", ""))
    with pytest.raises(ConfigError, match=r"codecs\[1\]\.link"):
        load_experiment(path)
