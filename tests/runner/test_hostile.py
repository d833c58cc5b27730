"""Hostile inputs to ``semcomm run``: each is refused before any compute with exit
status 2, ONE line on stderr, no traceback, and no run folder left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from semcomm.cli import main

BASE = """
name: hostile
dataset: {count: 1, size: [64, 128]}
codecs:
  - {name: jpeg, bpp: [1.0]}
links: [{modulation: qpsk, code_rate: 0.5, channel: awgn}]
snr: {esno_db: [10]}
metrics: {bootstrap: 20, ms_ssim: false}
"""

#: (case id, replacement of the codecs/snr/dataset text, what the message must name)
CASES = [
    ("jpeg-quality-500", ("bpp: [1.0]", "knob: [500]"), "500"),
    ("amvq-tau-7", ("{name: jpeg, bpp: [1.0]}", "{name: amvq, knob: [7]}"), "tau"),
    ("isc-9-stages", ("{name: jpeg, bpp: [1.0]}", "{name: isc, knob: [9]}"), "9"),
    ("sqgan-m-3", ("{name: jpeg, bpp: [1.0]}", "{name: sqgan, knob: [3]}"), "m=3"),
    ("params-typo", ("{name: jpeg, bpp: [1.0]}",
                     "{name: sqgan, knob: [0.2], params: {m_s_ration: 4}}"), "m_s_ratio"),
    ("imagefolder-no-root", ("dataset: {count: 1, size: [64, 128]}",
                             "dataset: {name: imagefolder}"), "root"),
    ("snr-nan", ("esno_db: [10]", "esno_db: [.nan]"), "finite"),
    ("snr-inf", ("esno_db: [10]", "esno_db: [0, .inf]"), "finite"),
    ("snr-range-inf", ("esno_db: [10]", "esno_db: {start: 0, stop: .inf, step: 1}"), "finite"),
    ("size-not-multiple", ("{name: jpeg, bpp: [1.0]}", "{name: sqgan, knob: [0.2]}"),
     "100x300"),
    ("packet-too-big", ("{name: jpeg, bpp: [1.0]}",
                        "{name: amvq, knob: [0.3], params: {packet_bytes: 4000}}"),
     "code block"),
]


def _run(tmp_path: Path, config: Path | str, capsys: pytest.CaptureFixture[str],
         out: Path | None = None) -> tuple[int, str, Path]:
    out = out or tmp_path / "results"
    code = main(["run", str(config), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    return code, err, out


def _assert_refused(code: int, err: str, out: Path, *names: str) -> None:
    assert code == 2, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for name in names:
        assert name in lines[0], lines[0]
    assert not out.exists() or not any(out.rglob("*")), list(out.rglob("*"))


@pytest.mark.parametrize("case,edit,name", CASES, ids=[c[0] for c in CASES])
def test_refused_before_compute(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                case: str, edit: tuple[str, str], name: str) -> None:
    text = BASE.replace(*edit)
    if case == "size-not-multiple":
        text = text.replace("size: [64, 128]", "size: [100, 300]")
    path = tmp_path / "x.yaml"
    path.write_text(text)
    _assert_refused(*_run(tmp_path, path, capsys), name)


def test_binary_and_directory_configs_are_named(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    binary = tmp_path / "weights.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    _assert_refused(*_run(tmp_path, binary, capsys), str(binary))
    folder = tmp_path / "adir"
    folder.mkdir()
    _assert_refused(*_run(tmp_path, folder, capsys), str(folder), "directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_out_is_refused_before_loading(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(BASE)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, err, _ = _run(tmp_path, path, capsys, out=locked / "results")
    finally:
        locked.chmod(0o700)
    _assert_refused(code, err, locked / "results", "not writable")


def test_child_ebno_replaces_base_esno(tmp_path: Path) -> None:
    from semcomm.runner.config import load_experiment

    (tmp_path / "base.yaml").write_text(BASE)
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\nsnr: {ebno_db: [3, 4]}\n")
    exp = load_experiment(child)
    assert exp.snr is not None and exp.snr.kind == "ebno" and exp.snr.values() == [3.0, 4.0]
    both = tmp_path / "both.yaml"
    both.write_text("extends: base.yaml\nsnr: {ebno_db: [3], esno_db: [4]}\n")
    with pytest.raises(ValueError, match="exactly one"):
        load_experiment(both)


def test_unreachable_bpp_is_warned(tmp_path: Path) -> None:
    from semcomm.runner.config import load_experiment
    from semcomm.runner.run import run_experiment

    path = tmp_path / "x.yaml"
    path.write_text(BASE.replace("bpp: [1.0]", "bpp: [0.01]").replace(
        "links: [{modulation: qpsk, code_rate: 0.5, channel: awgn}]\nsnr: {esno_db: [10]}\n",
        ""))
    with pytest.warns(UserWarning, match="unreachable"):
        run_experiment(load_experiment(path), tmp_path / "r", progress=False)


def test_out_under_a_file_is_refused_before_loading(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(BASE)
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    code, err, _ = _run(tmp_path, path, capsys, out=blocker / "results")
    _assert_refused(code, err, blocker / "results", "not a directory")
