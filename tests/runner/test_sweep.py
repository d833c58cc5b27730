"""The sweep runner end to end on tiny budgets: outputs, determinism, stopping,
equal channel uses, process workers, SIGKILL + --resume, every shipped YAML."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from semcomm.runner.config import load_experiment, smoke
from semcomm.runner.run import run_experiment
from semcomm.runner.store import PointStore

ROOT = Path(__file__).parents[2]
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))

TINY = """
name: tiny
dataset: {{count: {count}, size: [64, 128]}}
codecs:
  - {{name: jpeg, bpp: [1.0]}}
  - {{name: webp, bpp: [1.0]}}
links: [{{modulation: qpsk, code_rate: 0.5, channel: awgn}}]
snr: {{esno_db: {snr}}}
realizations: {reps}
failure: {{policy: mean, mean_images: 2}}
metrics: {{bootstrap: 100}}
{extra}
"""


def tiny(tmp_path: Path, count: int = 3, snr: str = "[-6, 0, 1, 6]", reps: int = 1,
         extra: str = "", name: str = "tiny.yaml") -> Path:
    path = tmp_path / name
    path.write_text(TINY.format(count=count, snr=snr, reps=reps, extra=extra))
    return path


def read_lines(run_dir: Path) -> list[dict]:
    return [json.loads(t) for t in (run_dir / "points.jsonl").read_text().splitlines()]


def read_csv(run_dir: Path) -> list[dict]:
    with open(run_dir / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["snr"] = float(r["snr_db"]) if r["snr_db"] else None
    return rows


def test_outputs_and_same_seed_same_numbers(tmp_path: Path) -> None:
    exp = load_experiment(tiny(tmp_path))
    a = run_experiment(exp, tmp_path / "a", progress=False)
    b = run_experiment(exp, tmp_path / "b", progress=False)
    for name in ("config.yaml", "points.jsonl", "summary.csv", "summary.json", "report.html",
                 "gallery_qpsk-ldpc0.5-awgn.png", "gallery_qpsk-ldpc0.5-awgn.pdf",
                 "miou_vs_snr.png", "miou_vs_snr.pdf", "psnr_vs_snr.png", "bler_vs_snr.pdf",
                 "miou_vs_bpp.png"):
        assert (a.run_dir / name).is_file(), name
    assert (a.run_dir / "summary.csv").read_text() == (b.run_dir / "summary.csv").read_text()
    lines = read_lines(a.run_dir)
    key = {json.dumps(x, sort_keys=True) for x in lines}
    assert key == {json.dumps(x, sort_keys=True) for x in read_lines(b.run_dir)}
    # 3 originals + 2 codecs x 3 images error-free + 2 x 4 SNRs x 3 images
    assert len(lines) == 3 + 6 + 24
    summary = json.loads((a.run_dir / "summary.json").read_text())
    assert summary["schema_version"] == 1 and summary["provenance"]["seed"] == 0
    assert {"git_commit", "git_dirty", "packages", "device"} <= set(summary["provenance"])
    rows = {(r["kind"], r["codec"], r["snr"]): r for r in read_csv(a.run_dir)}
    dead, clean = rows[("link", "jpeg", -6.0)], rows[("link", "jpeg", 6.0)]
    assert float(dead["bler"]) == 1.0 and int(dead["failed"]) == 3  # the link did fail
    assert float(clean["bler"]) == 0.0 and int(clean["ok"]) == 3
    assert clean["miou"] == rows[("error-free", "jpeg", None)]["miou"]
    assert float(dead["miou"]) < float(clean["miou"])
    assert float(clean["bpp"]) <= 1.0 and float(clean["cu_per_pixel"]) > 0
    # A different seed changes the channel draws (the cliff point at 1 dB).
    other = exp.model_copy(update={"seed": 1})
    c = run_experiment(other, tmp_path / "c", progress=False)
    seeds_a = {x["seed"] for x in lines if x["kind"] == "link"}
    assert seeds_a.isdisjoint({x["seed"] for x in read_lines(c.run_dir) if x["kind"] == "link"})


def test_common_random_numbers_across_codecs(tmp_path: Path) -> None:
    exp = load_experiment(tiny(tmp_path, count=2, snr="[1]"))
    lines = read_lines(run_experiment(exp, tmp_path / "r", progress=False).run_dir)
    seeds: dict[int, set[int]] = {}
    for x in lines:
        if x["kind"] == "link":
            seeds.setdefault(x["image"], set()).add(x["seed"])
    assert all(len(s) == 1 for s in seeds.values())  # jpeg and webp saw the same channel


def test_early_stop_on_block_errors(tmp_path: Path) -> None:
    extra = "stopping: {target_block_errors: 1, min_images: 2}"
    exp = load_experiment(tiny(tmp_path, count=5, snr="[-6, 8]", extra=extra))
    run = run_experiment(exp, tmp_path / "s", progress=False)
    rows = {(r["codec"], r["snr"]): r for r in read_csv(run.run_dir) if r["kind"] == "link"}
    low, high = rows[("jpeg", -6.0)], rows[("jpeg", 8.0)]
    assert (low["images"], low["stopped_early"]) == ("2", "True")
    assert (high["images"], high["stopped_early"]) == ("5", "False")


def test_equal_channel_uses(tmp_path: Path) -> None:
    path = tmp_path / "ecu.yaml"
    path.write_text(TINY.format(count=2, snr="[10]", reps=1, extra="").replace(
        "bpp: [1.0]", "bandwidth_ratio: [0.75]"))
    exp = load_experiment(path)
    run = run_experiment(exp, tmp_path / "e", progress=False)
    from channels import Link, LinkConfig

    link = Link(LinkConfig(modulation="qpsk", code_rate=0.5, channel="awgn"))
    budget = link.max_payload_bytes(int(0.75 * 64 * 128))
    links = [x for x in read_lines(run.run_dir) if x["kind"] == "link"]
    assert links and all(x["rate"] == "cu/px=0.75" for x in links)
    for x in links:
        assert x["bytes"] <= budget and x["channel_uses"] <= 0.75 * 64 * 128
        assert x["target_bpp"] == pytest.approx(8 * budget / (64 * 128))
    tiny_ratio = path.read_text().replace("0.75", "0.01")
    path.write_text(tiny_ratio)
    with pytest.raises(ValueError, match="less than one code block"):
        run_experiment(load_experiment(path), tmp_path / "f", progress=False)


def test_process_workers_match_serial(tmp_path: Path) -> None:
    exp = load_experiment(tiny(tmp_path, count=2, snr="[0, 1, 6]"))
    serial = run_experiment(exp, tmp_path / "s", progress=False)
    parallel = run_experiment(exp, tmp_path / "p", workers=2, progress=False)
    assert (serial.run_dir / "summary.csv").read_text() == \
        (parallel.run_dir / "summary.csv").read_text()


def test_store_drops_partial_last_line(tmp_path: Path) -> None:
    path = tmp_path / "points.jsonl"
    line = {"kind": "link", "codec": "c", "rate": "r", "link": "l", "snr_db": 1.0, "image": 0,
            "realization": 0, "psnr": float("inf")}
    store = PointStore(path)
    store.append([line, line])  # the duplicate is skipped
    store.close()
    with open(path, "a") as fh:
        fh.write('{"kind": "link", "cod')  # what a SIGKILL mid-write leaves
    store = PointStore(path)
    assert len(store) == 1 and path.read_text().count("\n") == 1
    assert json.loads(path.read_text())["psnr"] is None  # inf is stored as null
    store.close()


def test_sigkill_then_resume_loses_and_recomputes_nothing(tmp_path: Path) -> None:
    cfg = tiny(tmp_path, count=6, snr="[-6, -3, 0, 1, 2, 3, 4, 6, 8, 10]", reps=3)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "semcomm.cli", "run", str(cfg), "--out", str(tmp_path / "k"),
           "--quiet"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    total = 6 + 12 + 2 * 10 * 6 * 3
    points = None
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        found = list((tmp_path / "k").glob("tiny/*/points.jsonl"))
        if found and found[0].read_text().count("\n") >= 60:
            points = found[0]
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert points is not None
    run_dir = points.parent
    before = points.read_text().splitlines()
    assert 60 <= len(before) < total
    kept = before if points.read_bytes().endswith(b"\n") else before[:-1]
    res = subprocess.run([sys.executable, "-m", "semcomm.cli", "run", "--resume", str(run_dir),
                          "--quiet"], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    after = points.read_text().splitlines()
    assert after[: len(kept)] == kept  # nothing written was rewritten or recomputed
    assert len(after) == total == len({json.dumps(json.loads(t)["image"]) + t for t in after})
    fresh = run_experiment(load_experiment(cfg), tmp_path / "fresh", progress=False)
    assert (run_dir / "summary.csv").read_text() == (fresh.run_dir / "summary.csv").read_text()


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.name for p in EXPERIMENTS])
def test_every_shipped_experiment_smoke(tmp_path: Path, path: Path) -> None:
    exp = smoke(load_experiment(path))
    run = run_experiment(exp, tmp_path, progress=False)
    rows = read_csv(run.run_dir)
    assert any(r["kind"] == "error-free" for r in rows)
    assert all(r["miou"] != "" for r in rows)
    if exp.links:
        assert any(r["kind"] == "link" for r in rows)


def test_lpips_and_fid_from_local_files(tmp_path: Path) -> None:
    import torch

    from semcomm import metrics

    torch.manual_seed(0)
    backbone, heads = tmp_path / "alex.pt", tmp_path / "heads.pt"
    torch.save(metrics._alexnet_features().state_dict(), backbone)
    _, channels = metrics._LPIPS_TAPS["alex"]
    torch.save({f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(channels)},
               heads)
    extractor = tmp_path / "feat.pt"
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten())
    with pytest.warns(DeprecationWarning):
        torch.jit.script(net).save(str(extractor))
    extra = (f"metrics: {{bootstrap: 50, lpips: {{net: alex, backbone: {backbone}, "
             f"heads: {heads}}}, fid: {{extractor: {extractor}}}}}")
    exp = load_experiment(tiny(tmp_path, count=3, snr="[-6, 8]", extra=extra))
    run = run_experiment(exp, tmp_path / "m", progress=False)
    rows = {(r["kind"], r["codec"], r["snr"]): r for r in read_csv(run.run_dir)}
    clean, dead = rows[("link", "jpeg", 8.0)], rows[("link", "jpeg", -6.0)]
    assert float(clean["lpips"]) < float(dead["lpips"])
    assert 0 <= float(clean["fid"]) < float(dead["fid"])
    assert rows[("original", "original", None)]["lpips"] == "0"
    # A missing weight file is a one-line config error, before any compute.
    bad = tiny(tmp_path, extra="metrics: {fid: {extractor: /nope/inception.pt}}", name="bad.yaml")
    from semcomm.runner.config import ConfigError

    with pytest.raises(ConfigError,
                       match=r"metrics.fid.extractor: weight file '/nope/inception.pt'"):
        load_experiment(bad)


def test_priority_link_protects_the_base_layer(tmp_path: Path) -> None:
    """ISC marks its base layer as priority: on a link whose priority code is QPSK 1/4
    (k = 1024), at Es/N0 = -1 dB the base arrives and the enhancement (QPSK 1/2,
    k = 4096) is lost, so the image is the concealed base, not an outage; the channel
    uses count both codes. A bandwidth ratio on such a link is one total budget."""
    prio = "{modulation: qpsk, code_rate: 0.25, k: 1024}"
    path = tmp_path / "uep.yaml"
    path.write_text(TINY.format(count=2, snr="[-1, 30]", reps=1, extra="").replace(
        "  - {name: jpeg, bpp: [1.0]}\n  - {name: webp, bpp: [1.0]}",
        "  - {name: isc, knob: [2]}").replace(
        "channel: awgn}", f"channel: awgn, priority: {prio}}}"))
    run = run_experiment(load_experiment(path), tmp_path / "u", progress=False)
    from channels import Link, LinkConfig

    main = Link(LinkConfig(modulation="qpsk", code_rate=0.5))
    high = Link(LinkConfig(modulation="qpsk", code_rate=0.25, k=1024))
    lines = [x for x in read_lines(run.run_dir) if x["kind"] == "link"]
    assert {x["link"] for x in lines} == {"qpsk-ldpc0.5-awgn+prio-qpsk-ldpc0.25"}
    for x in lines:
        base = x["priority_bytes"]
        assert 0 < base < x["bytes"]
        assert x["channel_uses"] == (high.channel_uses(base)
                                     + main.channel_uses(x["bytes"] - base))
        if x["snr_db"] == -1:
            assert x["status"] == "concealed" and x["lost_bytes"] == x["bytes"] - base
        else:
            assert x["status"] == "ok" and x["lost_bytes"] == 0
    # Payloads read back from payloads/ (process workers, --resume) keep their priority.
    from semcomm.codecs.base import RatePoint
    from semcomm.runner.sweep import Context, Encoder

    enc = Encoder(Context(load_experiment(path), run.run_dir)).get("isc", 0, RatePoint(knob=2))
    assert enc.payload.priority_bytes == next(
        x["priority_bytes"] for x in lines if x["image"] == 0)
    path.write_text(path.read_text().replace("knob: [2]", "bandwidth_ratio: [0.5]"))
    run = run_experiment(load_experiment(path), tmp_path / "v", progress=False)
    budget = [x for x in read_lines(run.run_dir) if x["kind"] == "link"]
    assert budget and all(x["priority_bytes"] > 0 for x in budget)
    assert all(x["channel_uses"] <= int(0.5 * 64 * 128) for x in budget)


def test_ebno_is_converted_per_link(tmp_path: Path) -> None:
    text = TINY.format(count=1, snr="[5]", reps=1, extra="").replace(
        "snr: {esno_db: [5]}", "snr: {ebno_db: [5]}").replace(
        "{modulation: qpsk, code_rate: 0.5, channel: awgn}",
        "{modulation: [qpsk, 16qam], code_rate: 0.5, channel: awgn}")
    path = tmp_path / "eb.yaml"
    path.write_text(text)
    lines = read_lines(run_experiment(load_experiment(path), tmp_path / "o",
                                      progress=False).run_dir)
    esno = {x["link"]: x["esno_db"] for x in lines if x["kind"] == "link"}
    # Es/N0 = Eb/N0 + 10 log10(bits per symbol * code rate)
    assert esno["qpsk-ldpc0.5-awgn"] == pytest.approx(5.0)
    assert esno["16qam-ldpc0.5-awgn"] == pytest.approx(5.0 + 10 * math.log10(2.0))
    assert all(x["snr_db"] == 5.0 for x in lines if x["kind"] == "link")


def _register_fields_codec(monkeypatch: pytest.MonkeyPatch) -> None:
    """A JPEG codec that reports a codec-specific field (as SQ-GAN's analytic bpp),
    registered for this test only."""
    from semcomm.codecs import registry

    base = registry.codec_factory("jpeg")

    class FieldsCodec(base):  # type: ignore[misc, valid-type]
        def payload_fields(self, payload):  # type: ignore[no-untyped-def]
            return {"half_bytes": len(payload.data) / 2}

    monkeypatch.setitem(registry._REGISTRY, "test-fields", FieldsCodec)


def test_codec_fields_and_sphere_metrics_for_panoramas(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _register_fields_codec(monkeypatch)
    cfg = tmp_path / "pano.yaml"
    cfg.write_text("""
name: pano
dataset: {count: 2, size: [32, 64], projection: equirectangular}
codecs: [{name: test-fields, bpp: [2.0]}]
links: [{modulation: qpsk, code_rate: 0.5, channel: awgn}]
snr: {esno_db: [-6, 6]}
failure: {policy: mean, mean_images: 2}
metrics: {bootstrap: 50}
""")
    run = run_experiment(load_experiment(cfg), tmp_path / "out", progress=False)
    lines = [ln for ln in read_lines(run.run_dir) if ln["kind"] != "original"]
    assert lines and all(ln["x_half_bytes"] == ln["bytes"] / 2 for ln in lines)
    for ln in lines:
        assert math.isfinite(ln["vpsnr"]) and 0 < ln["vssim"] <= 1
        assert math.isfinite(ln["ws_psnr"]) and abs(ln["ws_psnr"] - ln["psnr"]) < 6
    rows = read_csv(run.run_dir)
    coded = [r for r in rows if r["kind"] != "original"]
    assert all(float(r["x_half_bytes"]) > 0 and r["vpsnr"] != "" for r in coded)
    assert float(coded[0]["vpsnr_lo"]) <= float(coded[0]["vpsnr"]) <= float(coded[0]["vpsnr_hi"])
    # Pinhole experiments keep the plain column set.
    plain = run_experiment(load_experiment(tiny(tmp_path, count=1, snr="[6]")),
                           tmp_path / "plain", progress=False)
    header = (plain.run_dir / "summary.csv").read_text().splitlines()[0]
    assert "vpsnr" not in header and "x_" not in header


def test_projection_only_for_streetscenes(tmp_path: Path) -> None:
    cfg = tiny(tmp_path, extra="").read_text().replace(
        "dataset: {count: 3, size: [64, 128]}",
        "dataset: {name: imagefolder, root: /nonexistent, projection: equirectangular}")
    path = tmp_path / "bad.yaml"
    path.write_text(cfg)
    with pytest.raises(ValueError, match="projection"):
        load_experiment(path)


def test_harq_link_columns(tmp_path: Path) -> None:
    """Links take mcs_table/mcs_index and harq; summary.csv reports the transmissions a
    payload needed and the channel uses with every retransmission counted."""
    path = tmp_path / "harq.yaml"
    path.write_text(TINY.format(count=3, snr="[3, 30]", reps=2, extra="").replace(
        "links: [{modulation: qpsk, code_rate: 0.5, channel: awgn}]",
        "links: [{mcs_table: qam64, mcs_index: 4, k: 1024, channel: rayleigh-block, "
        "harq: [null, {max_transmissions: 3, combining: ir}]}]"))
    run = run_experiment(load_experiment(path), tmp_path / "h", progress=False)
    rows = {(r["link"], r["codec"], r["snr"]): r for r in read_csv(run.run_dir)
            if r["kind"] == "link"}
    off = "qpsk-ldpc0.301-rayleigh-block-mcs:qam64:4"
    on = f"{off}-harq3ir"
    for codec in ("jpeg", "webp"):
        a, b = rows[(off, codec, 3.0)], rows[(on, codec, 3.0)]
        assert float(a["transmissions"]) == 1.0
        assert float(a["effective_channel_uses"]) == float(a["channel_uses"])
        assert float(b["transmissions"]) > 1.0  # fades at 3 dB: retransmissions
        assert float(b["effective_channel_uses"]) > float(b["channel_uses"])
        assert float(b["bler"]) < float(a["bler"])
        high = rows[(on, codec, 30.0)]
        assert float(high["transmissions"]) < float(b["transmissions"])
