"""Experiment YAML: validation before compute, one-line errors, extends, links product."""

from __future__ import annotations

from pathlib import Path

import pytest

from semcomm.runner.config import ConfigError, expand_links, load_experiment, smoke

EXPERIMENTS = sorted((Path(__file__).parents[2] / "experiments").glob("*.yaml"))

BASE = """
name: base
dataset: {count: 4}
codecs: [{name: jpeg, bpp: [0.5]}]
links: [{modulation: 16qam, code_rate: 0.5, channel: [awgn, rayleigh-block]}]
snr: {esno_db: {start: -2, stop: 12, step: 2}}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str, base: str = BASE) -> str:
    write(tmp_path, "base.yaml", base)
    path = write(tmp_path, "exp.yaml", "extends: base.yaml\nname: x\n" + text)
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_extends_deep_merge_and_ranges(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    path = write(tmp_path, "exp.yaml", "extends: base.yaml\nname: x\ndataset: {seed: 3}\n")
    exp = load_experiment(path)
    assert exp.name == "x" and exp.dataset.count == 4 and exp.dataset.seed == 3
    assert exp.snr is not None and exp.snr.values() == [-2, 0, 2, 4, 6, 8, 10, 12]
    labels = [label for label, _ in expand_links(exp.links)]
    assert labels == ["16qam-ldpc0.5-awgn", "16qam-ldpc0.5-rayleigh-block"]


def test_unknown_key_names_file_path_and_nearest(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "stoping: {max_images: 3}\n")
    assert msg.startswith(str(tmp_path / "exp.yaml") + ": stoping: unknown key")
    assert "did you mean 'stopping'?" in msg
    msg = error_of(tmp_path, "failure: {polcy: grey}\n")
    assert "failure.polcy" in msg and "'policy'" in msg


def test_bad_value_names_allowed_values(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "failure: {policy: zero}\n")
    assert "failure.policy" in msg and "'mean'" in msg and "'conceal'" in msg and "zero" in msg
    msg = error_of(tmp_path, "codecs: [{name: jpg, bpp: [1]}]\n")
    assert "codecs[0].name" in msg and "did you mean 'jpeg'" in msg
    msg = error_of(tmp_path, "links: [{modulation: 8psk}]\n")
    assert "links[0]" in msg and "8psk" in msg and "'16qam'" in msg
    msg = error_of(tmp_path, "links: [{modulaton: qpsk}]\n")
    assert "links[0]" in msg and "did you mean 'modulation'" in msg
    msg = error_of(tmp_path, "codecs: [{name: jpeg, bpp: [30]}]\n")
    assert "codecs[0].bpp" in msg and "(0, 24]" in msg
    msg = error_of(tmp_path, "codecs: [{name: jpeg}]\n")
    assert "at least one rate" in msg


def test_error_in_base_names_the_base_file(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "", base=BASE + "realisations: 3\n")
    assert msg.startswith(str(tmp_path / "base.yaml") + ": realisations")
    assert "did you mean 'realizations'" in msg


def test_structural_errors(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "snr: {esno_db: [1], ebno_db: [2]}\n")
    assert "exactly one of esno_db and ebno_db" in msg
    msg = error_of(tmp_path, "codecs: [{name: jpeg, bpp: [1]}, {name: jpeg, knob: [5]}]\n")
    assert "label" in msg
    write(tmp_path, "loop.yaml", "extends: loop.yaml\nname: l\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_experiment(tmp_path / "loop.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load_experiment(tmp_path / "missing.yaml")


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.name for p in EXPERIMENTS])
def test_shipped_experiments_validate(path: Path) -> None:
    exp = load_experiment(path)
    small = smoke(exp)
    assert small.dataset.count == 2 and small.name == exp.name + "-smoke"
    assert all(len(c.rate_specs()) == 1 for c in small.codecs)


def test_quickstart_has_every_codec_with_weights_and_eight_snrs() -> None:
    # Learned codecs join the quickstart when their weights ship.
    root = Path(__file__).parents[2]
    exp = load_experiment(root / "experiments" / "quickstart.yaml")
    shipped = {n for n in ("sqgan", "amvq", "isc")
               if (root / "semcomm" / "assets" / f"{n}.pt").is_file()}
    classic = {"jpeg", "jpeg2000", "webp", "hevc", "avif", "jpegxl"}
    assert classic | shipped <= {c.name for c in exp.codecs}
    assert exp.snr is not None and len(exp.snr.values()) == 8
    channels = {cfg.channel for _, cfg in expand_links(exp.links)}
    assert channels == {"awgn", "rayleigh-block"}


def test_cli_reports_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from semcomm.cli import main

    write(tmp_path, "base.yaml", BASE)
    bad = write(tmp_path, "exp.yaml", "extends: base.yaml\nname: x\nseed: -1\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"semcomm run: {bad}: seed:")
    assert not (tmp_path / "out").exists()  # nothing was computed or written
    missing = write(tmp_path, "m.yaml", BASE + "dataset: {name: imagefolder, root: /nope}\n")
    assert main(["run", str(missing), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "/nope" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_smoke_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from semcomm.cli import main

    base = Path(__file__).parents[2] / "experiments" / "base.yaml"
    assert main(["run", str(base), "--smoke", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "error-free" in out and "results:" in out
    run_dir = Path(out.strip().splitlines()[-1].split()[1])
    assert run_dir.parent.name == "base-smoke" and (run_dir / "summary.csv").is_file()
