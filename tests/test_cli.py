"""The ``semcomm`` command line: --version, python -m semcomm, list, train MODEL --help,
the run folder printed at start, and Ctrl-C ending a run cleanly with its resume command."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from semcomm import __version__
from semcomm.cli import TRAINERS, main

ROOT = Path(__file__).parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _module(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "semcomm", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def test_version_and_python_dash_m() -> None:
    res = _module("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"semcomm {__version__}"
    res = _module("--help")
    assert res.returncode == 0
    for command in ("run", "plot", "report", "list", "link-sweep", "train"):
        assert re.search(rf"^  {re.escape(command)} ", res.stdout, re.M), command
    res = _module("frobnicate")
    assert res.returncode == 2 and "unknown command 'frobnicate'" in res.stderr


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "codecs"]) == 0
    out = capsys.readouterr().out
    from semcomm.codecs.registry import available_codecs

    names = [line.split()[0] for line in out.splitlines()]
    assert names == available_codecs() and "sqgan" in names and "jpeg" in names
    assert main(["list", "datasets"]) == 0
    out = capsys.readouterr().out
    from semcomm.data import DATASETS

    assert [line.split()[0] for line in out.splitlines()] == sorted(DATASETS)
    assert {"cityscapes", "imagefolder", "streetscenes", "shards"} <= set(DATASETS)
    assert main(["list", "experiments"]) == 0
    out = capsys.readouterr().out
    shipped = sorted((ROOT / "experiments").glob("*.yaml"))
    assert len(out.splitlines()) == len(shipped)
    assert re.search(r"quickstart\.yaml\s+quickstart: Every codec", out)
    assert "INVALID" not in out
    assert main(["list", "checkpoints"]) == 0
    out = capsys.readouterr().out
    seg = ROOT / "semcomm" / "assets" / "segmenter.pt"
    assert hashlib.sha256(seg.read_bytes()).hexdigest() in out
    with pytest.raises(SystemExit) as err:
        main(["list", "models"])
    assert err.value.code == 2


@pytest.mark.parametrize("model", sorted(TRAINERS))
def test_train_model_help(model: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as err:
        main(["train", model, "--help"])
    assert err.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: semcomm train {model}")


def test_train_without_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--help"]) == 0
    assert "MODEL one of" in capsys.readouterr().out
    assert main(["train", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


BAD_TRAIN_INPUT = [
    (["--config", "/no/such.yaml"], "config file '/no/such.yaml' does not exist"),
    (["--set", "train.nope=3"], "unknown key 'train.nope'"),
    (["--set", "train.lr=abc"], "train.lr must be float, got 'abc'"),
    (["--init", "/no/such.pt"], "--init '/no/such.pt': no such file"),
    (["--init", "README.md"], "README.md: not a model file"),
    (["--device", "gpu"], "--device: device 'gpu' not one of cpu, cuda, cuda:N, auto"),
]


@pytest.mark.parametrize("model", ["sqgan", "amvq", "isc"])
@pytest.mark.parametrize("extra,message", BAD_TRAIN_INPUT)
def test_train_bad_input_is_one_line_with_status_2(model: str, extra: list[str], message: str,
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    stage = ["--stage", "img"] if model == "sqgan" else []
    argv = ["train", model, *stage, "--out", str(tmp_path), "--count", "2", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"semcomm train {model}: error: ")
    assert message in err
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written


def test_train_set_reads_exponent_floats(tmp_path: Path) -> None:
    """``--set train.lr=1e-4`` (YAML 1.1 reads 1e-4 as a string) is the float 1e-4."""
    from semcomm.codecs.learned.cli import _yaml_value

    assert _yaml_value("1e-4") == 1e-4 and _yaml_value("-2E3") == -2000.0
    assert _yaml_value("abc") == "abc" and _yaml_value("[1, 2]") == [1, 2]
    assert _yaml_value("7") == 7 and isinstance(_yaml_value("7"), int)


SLOW_TINY = """
name: ctrlc
dataset: {count: 4, size: [64, 128]}
codecs:
  - {name: jpeg, bpp: [1.0]}
  - {name: webp, bpp: [1.0]}
links: [{modulation: qpsk, code_rate: 0.5, channel: awgn}]
snr: {esno_db: [-6, 0, 1, 2, 6, 10]}
realizations: 2
failure: {policy: mean, mean_images: 2}
metrics: {bootstrap: 50}
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_ends_cleanly_and_prints_the_resume_command(tmp_path: Path, workers: int) -> None:
    cfg = tmp_path / "ctrlc.yaml"
    cfg.write_text(SLOW_TINY)
    # A new session, and SIGINT to its whole process group: what Ctrl-C in a terminal
    # does (the worker processes get it too).
    proc = subprocess.Popen(
        [sys.executable, "-m", "semcomm", "run", str(cfg), "--out", str(tmp_path / "o"),
         "--quiet", "--workers", str(workers)],
        cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # printed before any compute
    match = re.fullmatch(r"run folder: (.+)\n", first)
    assert match, first
    run_dir = Path(match.group(1))
    points = run_dir / "points.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if points.exists() and points.read_text().count("\n") >= 20:  # in phase 2
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    raw = points.read_bytes()
    kept = raw[: raw.rfind(b"\n") + 1].decode().splitlines()  # complete lines only
    total = 4 + 8 + 2 * 6 * 4 * 2
    assert 20 <= len(kept) < total
    command = f"semcomm run --resume {shlex.quote(str(run_dir))} --workers {workers}"
    assert f"resume with: {command}" in err
    assert re.search(rf"interrupted; {len(kept)} measurements kept in ", err), err
    if workers > 1:
        return  # resuming is the same with workers (tests/runner/test_sweep.py)
    # The printed command resumes the run: nothing kept is recomputed.
    args = shlex.split(command)[1:]
    res = _module(*args, "--quiet")
    assert res.returncode == 0, res.stderr[-2000:]
    after = points.read_text().splitlines()
    assert after[: len(kept)] == kept and len(after) == total
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["measurements"] == total and (run_dir / "report.html").is_file()
