"""Figures, re-plot, report.html (self-contained, opened in headless Chromium),
provenance and the gallery per link, on one tiny run shared by the module."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from semcomm.runner.config import ConfigError, PlotsConfig, load_experiment
from semcomm.runner.run import git_dirty, run_experiment

ROOT = Path(__file__).parents[2]
ASSETS = ROOT / "semcomm" / "assets"

TWO_LINKS = """
name: two_links
dataset: {count: 2, size: [64, 128]}
codecs:
  - {name: jpeg, bpp: [1.0, 0.5]}
  - {name: webp, bpp: [1.0]}
  - {name: jpeg, label: jpeg-ecu, bandwidth_ratio: [0.75]}
links: [{modulation: qpsk, code_rate: 0.5, channel: [awgn, rayleigh-block]}]
snr: {esno_db: [-6, 1, 8]}
failure: {policy: mean, mean_images: 2}
metrics: {bootstrap: 50}
plots: {formats: [png, svg], labels: {snr: "SNR per symbol [dB]"}}
"""
LINKS = ("qpsk-ldpc0.5-awgn", "qpsk-ldpc0.5-rayleigh-block")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    cfg = tmp / "two_links.yaml"
    cfg.write_text(TWO_LINKS)
    return run_experiment(load_experiment(cfg), tmp / "out", progress=False).run_dir


def _summary(run_dir: Path) -> dict[str, Any]:
    return dict(json.loads((run_dir / "summary.json").read_text()))


# --------------------------------------------------------------------------- plots


def test_codec_styles_stable_and_distinct() -> None:
    from semcomm.runner.plots import codec_styles

    names = [f"codec{j:02d}" for j in range(20)]
    a = codec_styles(names)
    assert a == codec_styles(reversed(names))  # order of rows does not matter
    assert len({tuple(c) for c, _ in a.values()}) == 20  # 20 colours, none repeated
    # Adding a codec shifts none of the others' (colour, marker) pairs out of uniqueness.
    b = codec_styles([*names, "zz"])
    assert len({(tuple(c), m) for c, m in b.values()}) == 21


def _capture_figures(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from semcomm.runner import plots

    figures: dict[str, Any] = {}

    def keep(fig: Any, out_dir: Path, stem: str, cfg: PlotsConfig) -> list[Path]:
        figures[stem] = fig
        return []

    monkeypatch.setattr(plots, "_save", keep)
    return figures


def test_one_style_per_codec_zero_errors_and_legend_outside(
        run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from semcomm.runner.plots import replot

    figures = _capture_figures(monkeypatch)
    replot(run_dir)
    assert {"miou_vs_snr", "psnr_vs_snr", "bler_vs_snr", "miou_vs_bpp"} <= set(figures)
    assert figures["miou_vs_snr"].axes[0].get_xlabel() == "SNR per symbol [dB]"  # plots:
    seen: dict[str, set[tuple[Any, str]]] = {}
    for stem in ("miou_vs_snr", "psnr_vs_snr", "bler_vs_snr", "miou_vs_bpp"):
        for ax in figures[stem].axes:
            labelled = [(c.get_label(), c.lines[0]) for c in ax.containers]  # error bars
            for label, line in labelled + [(ln.get_label(), ln) for ln in ax.get_lines()]:
                codec = str(label).split(" ")[0]
                if codec in ("jpeg", "webp", "jpeg-ecu"):
                    seen.setdefault(codec, set()).add(
                        (tuple(np.round(line.get_color(), 4)), line.get_marker()))
    assert set(seen) == {"jpeg", "webp", "jpeg-ecu"}
    assert all(len(styles) == 1 for styles in seen.values()), seen  # same in every figure
    assert len({next(iter(s)) for s in seen.values()}) == 3  # and different per codec

    # BLER: the AWGN points without block errors (all at 8 dB, so the run was not
    # vacuous) are each drawn at their Wilson upper bound (an open downward
    # triangle), not dropped from the log axis.
    rows = [r for r in _summary(run_dir)["rows"] if r["kind"] == "link"
            and r["link"] == LINKS[0] and r["bler"] == 0]
    assert {r["snr_db"] for r in rows} >= {8.0} and len(rows) >= 4
    assert all(r["bler_lo"] == 0 and r["bler_hi"] > 0 for r in rows)
    awgn = figures["bler_vs_snr"].axes[0]
    bounds = [y for line in awgn.get_lines() if line.get_marker() == "v"
              for y in line.get_ydata()]
    assert sorted(bounds) == pytest.approx(sorted(r["bler_hi"] for r in rows))
    assert awgn.get_yscale() == "log"

    # Legends sit right of the axes, never over the data.
    for stem in ("miou_vs_snr", "bler_vs_snr", "miou_vs_bpp"):
        fig = figures[stem]
        fig.canvas.draw()
        legend = fig.axes[-1].get_legend()
        assert legend is not None, stem
        box = legend.get_window_extent()
        assert box.x0 >= max(ax.get_window_extent().x1 for ax in fig.axes), stem


def test_gallery_per_link_with_error_free_column(run_dir: Path) -> None:
    for link in LINKS:
        assert (run_dir / f"gallery_{link}.png").is_file()
        # Each link's images carry the link in their name; the bandwidth-ratio codec's
        # error-free image (one per link: its byte budget depends on the link) exists.
        assert (run_dir / "gallery" / f"000_jpeg-ecu_cu_px=0.75_{link}_errorfree.png").is_file()
        for snr in ("snr-6", "snr1", "snr8"):
            assert (run_dir / "gallery" / f"000_webp_bpp=1_{link}_{snr}.png").is_file()
    assert (run_dir / "gallery" / "000_webp_bpp=1_none_errorfree.png").is_file()
    # The run's plots: section chose the formats.
    assert (run_dir / "miou_vs_snr.svg").is_file() and not list(run_dir.glob("*.pdf"))
    assert not list((run_dir / "gallery").glob("*.tmp*"))


def test_gallery_does_not_depend_on_workers(run_dir: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "two_links.yaml"
    cfg.write_text(TWO_LINKS)
    parallel = run_experiment(load_experiment(cfg), tmp_path / "p", workers=2,
                              progress=False).run_dir

    def images(d: Path) -> dict[str, bytes]:
        return {p.name: np.asarray(Image.open(p)).tobytes()
                for p in sorted((d / "gallery").glob("*.png"))}

    serial = images(run_dir)
    assert serial and images(parallel) == serial


def test_plots_section_is_validated(tmp_path: Path) -> None:
    cfg = tmp_path / "x.yaml"
    cfg.write_text(TWO_LINKS + "plots: {labels: {snrr: SNR}}\n")
    with pytest.raises(ConfigError, match=r"plots.labels.snrr: unknown label key; did you "
                                          r"mean 'snr'\?"):
        load_experiment(cfg)
    cfg.write_text(TWO_LINKS + "plots: {style: ggplott}\n")
    with pytest.raises(ConfigError, match=r"plots.style: matplotlib style 'ggplott' unknown; "
                                          r"did you mean 'ggplot'\?"):
        load_experiment(cfg)
    cfg.write_text(TWO_LINKS + "plots: {figsize: [0, 3]}\n")
    with pytest.raises(ConfigError, match=r"plots.figsize.0"):
        load_experiment(cfg)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``semcomm ARGS`` in this process: (exit status, stdout, stderr)."""
    from semcomm.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_semcomm_plot_restyles_a_finished_run(run_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    before = (copy / "miou_vs_snr.png").read_bytes()
    style = tmp_path / "paper.yaml"
    style.write_text("plots: {title: Paper figure, figsize: [3.0, 2.5], dpi: 80}\n")
    code, out, err = _cli(capsys, "plot", str(copy), "--plots", str(style), "--label",
                          "snr=SNR (dB)", "--format", "png")
    assert code == 0, err
    after = copy / "miou_vs_snr.png"
    assert after.read_bytes() != before
    # Two panels of 3.0 x 2.5 inches at 80 dpi (+ legend): narrower than the default.
    w_before = Image.open(run_dir / "miou_vs_snr.png").size[0]
    assert Image.open(after).size[0] < 0.6 * w_before
    assert "report.html" in out and "Paper figure" in (copy / "report.html").read_text()
    code, _, err = _cli(capsys, "plot", str(copy), "--label", "nope=x")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("semcomm plot: plots.labels.nope: unknown label key; "
                          "valid keys: snr, bpp, miou, psnr, bler"), err
    code, _, err = _cli(capsys, "plot", str(copy), "--figsize", "0", "3")
    assert code == 2
    assert err.startswith("semcomm plot: plots.figsize.0: Input should be greater "
                          "than 0 (got 0.0)"), err
    code, _, err = _cli(capsys, "plot", str(tmp_path))
    assert code == 2 and "no summary.json" in err


# --------------------------------------------------------------------------- report


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for key, value in attrs:
            if key in ("src", "href", "srcset", "action", "data") and value is not None:
                self.refs.append((tag, key, value))


def test_report_is_self_contained_with_everything(run_dir: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    text = (run_dir / "report.html").read_text()
    parser = _Refs()
    parser.feed(text)
    imgs = [v for tag, _, v in parser.refs if tag == "img"]
    # 4 curve figures + one gallery per link, all inlined.
    assert len(imgs) == 4 + len(LINKS)
    assert all(v.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for v in imgs)
    assert all(v.startswith(("data:", "#")) for _, _, v in parser.refs), parser.refs
    assert "script" not in parser.tags and "link" not in parser.tags
    assert not re.search(r"https?://", text)
    for heading in ("Curves", "mIoU tables", "Gallery", "All summary rows", "Provenance",
                    "Configuration"):
        assert f">{heading}</h2>" in text
    seg_sha = hashlib.sha256((ASSETS / "segmenter.pt").read_bytes()).hexdigest()
    assert seg_sha in text
    # `semcomm report` rewrites it from the run folder alone.
    out = tmp_path / "r.html"
    code, _, err = _cli(capsys, "report", str(run_dir), "--out", str(out))
    assert code == 0, err
    assert out.read_text().replace(str(out), "") == text.replace(str(run_dir / "report.html"), "")


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--enable-logging=stderr",
                  "--v=0", "--hide-scrollbars", "--window-size=1280,2400")


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _open_in_browser(page: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """Screenshot of ``page`` and the console messages Chromium logged for it."""
    browser = _browser()
    assert browser is not None
    shot = tmp_path / f"{page.stem}.png"
    res = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / ('profile-' + page.stem)}",
         f"--screenshot={shot}", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    console = [line for line in res.stderr.splitlines() if ":CONSOLE" in line]
    return shot, console


@pytest.mark.skipif(_browser() is None, reason="no Chromium binary (apt-get install chromium; "
                    ".ci/run installs it when run as root)")
def test_report_renders_in_headless_chromium(run_dir: Path, tmp_path: Path) -> None:
    # The detector can fail: a page with a script error is caught.
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><p>x</p><script>console.error('boom'); nope();</script>"
                   "</body></html>")
    _, console = _open_in_browser(bad, tmp_path)
    assert any("boom" in line for line in console), console
    shot, console = _open_in_browser(run_dir / "report.html", tmp_path)
    assert console == []
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (2400, 1280)
    # Not a blank page: text, tables and the inlined figures vary the pixels.
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.01


# --------------------------------------------------------------------------- provenance


def test_provenance_hashes_argv_device(run_dir: Path) -> None:
    prov = _summary(run_dir)["provenance"]
    seg = prov["checkpoints"]["segmenter"]
    assert seg["sha256"] == hashlib.sha256((ASSETS / "segmenter.pt").read_bytes()).hexdigest()
    assert seg["bytes"] == (ASSETS / "segmenter.pt").stat().st_size
    judge = prov["checkpoints"]["judge"]  # the default judge: its own weights, recorded
    assert judge["sha256"] == hashlib.sha256((ASSETS / "judge.pt").read_bytes()).hexdigest()
    assert prov["device"] == "cpu" and prov["devices"] == {"segmenter": "cpu", "judge": "cpu"}
    assert prov["argv"] == sys.argv and isinstance(prov["git_dirty"], bool | None)


def test_learned_codec_checkpoint_is_hashed(tmp_path: Path) -> None:
    from semcomm.runner.run import models_used
    from semcomm.runner.sweep import Context

    cfg = tmp_path / "isc.yaml"
    cfg.write_text("name: i\ndataset: {count: 1, size: [64, 128]}\n"
                   "codecs: [{name: isc, knob: [0]}]\nfailure: {policy: grey}\n")
    used = models_used(Context(load_experiment(cfg), tmp_path))
    isc = used["checkpoints"]["codec:isc"]
    assert isc["sha256"] == hashlib.sha256((ASSETS / "isc.pt").read_bytes()).hexdigest()
    assert used["devices"]["codec:isc"] == "cpu"


def test_git_dirty_ignores_untracked_experiments_only() -> None:
    assert git_dirty("") is False
    assert git_dirty("?? experiments/my_sweep.yaml\n?? experiments/sub/\n") is False
    assert git_dirty(" M experiments/quickstart.yaml\n") is True  # a tracked file changed
    assert git_dirty("?? experiments/a.yaml\n M semcomm/metrics.py\n") is True
    assert git_dirty("?? notes.txt\n") is True
    assert git_dirty(None) is None
