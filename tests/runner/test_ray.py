"""The Ray executor: the same bits as the serial executor, --resume, a failing point
reported while the sweep goes on, and its validation (one-line errors, exit 2).

The Ray tests share one local Ray (2 CPUs) started by a module fixture: each
``ray.init`` costs seconds. The test setup installs Ray (``semcomm[ray]``).

They run in a child pytest process (:func:`test_ray_tests_in_their_own_process`): a Ray
driver leaves threads behind after ``ray.shutdown()``, and a multi-threaded test process
may no longer fork the process executor's workers (``semcomm.runner.pool.fork_ok``), so
the tests after this module would lose their forked workers."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from semcomm.cli import main as cli_main
from semcomm.runner.config import ConfigError, load_experiment, to_yaml
from semcomm.runner.run import SetupError, load_run_config, run_experiment

from .test_scale import TINY  # the same two-codec, four-SNR experiment

ROOT = Path(__file__).parents[2]

RAY = "executor: {kind: ray}\n"


_CHILD = os.environ.get("SEMCOMM_RAY_CHILD") == "1"
#: A test that starts or imports Ray: run by the child process only.
in_child = pytest.mark.skipif(not _CHILD, reason="runs in the child pytest process of "
                              "test_ray_tests_in_their_own_process (Ray's threads)")


@pytest.mark.skipif(_CHILD, reason="the child process itself")
def test_ray_tests_in_their_own_process() -> None:
    pytest.importorskip("ray", reason="Ray executor tests: pip install 'semcomm[ray]'")
    res = subprocess.run([sys.executable, "-m", "pytest", __file__, "-q", "-x",
                          "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True,
                         text=True, env={**os.environ, "SEMCOMM_RAY_CHILD": "1"}, timeout=1500)
    summary = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    assert res.returncode == 0, res.stdout[-8000:] + res.stderr[-2000:]
    # every test ran in the child (the one skip: this wrapper)
    assert re.match(r"\d+ passed, 1 skipped(, \d+ warnings?)? in ", summary), summary


def _lines(run_dir: Path) -> list[str]:
    """points.jsonl, order-independent (Ray appends points as they finish)."""
    return sorted((run_dir / "points.jsonl").read_text().splitlines())


def _gallery(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run_dir / "gallery").glob("*"))}


def _same_run(run_dir: Path, reference: Path) -> None:
    assert _lines(run_dir) == _lines(reference)
    assert (run_dir / "summary.csv").read_text() == (reference / "summary.csv").read_text()
    assert _gallery(run_dir) and _gallery(run_dir) == _gallery(reference)


def fail_webp_at_0db(job: tuple[Any, Any]) -> list[dict]:
    """The actors' point function with a failure injected at one point (imported by the
    workers from this module: the test's Ray puts the checkout on their PYTHONPATH)."""
    from semcomm.runner.sweep import _worker_point

    pt, _ = job
    if pt.codec == "webp" and pt.snr_db == 0:
        raise RuntimeError("injected failure")
    return _worker_point(job)


# ---------------------------------------------------------------- validation (no Ray)


@pytest.mark.parametrize("executor, message", [
    ("{kind: dask}", "executor.kind: Input should be 'serial', 'process' or 'ray'"),
    ("{kind: ray, address: 'head:port'}", "executor.address: address 'head:port' not one "
     "of auto, <host>:<port>"),
    ("{kind: ray, address: 'head:70000'}", "(port 1..65535)"),
    ("{kind: ray, num_cpus: 0}", "executor.num_cpus: Input should be greater than 0"),
    ("{kind: ray, num_gpus: -1}", "executor.num_gpus: Input should be greater than or equal"),
    ("{kind: process, num_cpus: 2}", "num_cpus 2 is for kind ray, not 'process'"),
    ("{kind: ray, workers: 4}", "workers 4 is for kind process; kind ray starts num_cpus"),
])
def test_executor_validated(tmp_path: Path, executor: str, message: str) -> None:
    cfg = tmp_path / "x.yaml"
    cfg.write_text(TINY + f"executor: {executor}\n")
    with pytest.raises(ConfigError, match="^" + re.escape(str(cfg))) as err:
        load_experiment(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)
    for ok in ("{kind: ray, address: auto}", "{kind: ray, address: '10.0.0.5:6379'}",
               "{kind: ray, address: 'head-node.cluster:6379', num_cpus: 64, num_gpus: 8}"):
        cfg.write_text(TINY + f"executor: {ok}\n")
        assert load_experiment(cfg).executor.kind == "ray"


def test_ray_not_installed_is_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # ``import ray`` raises ImportError
    cfg = tmp_path / "ray.yaml"
    cfg.write_text(TINY + RAY)
    assert cli_main(["run", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'semcomm[ray]'" in err[0], err
    assert not (tmp_path / "out").exists()  # refused before any compute
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY + "executor: {kind: ray, num_cpus: -2}\n")
    assert cli_main(["run", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "executor.num_cpus" in err[0], err


@in_child
def test_unreachable_head_is_one_line_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    ray = pytest.importorskip("ray", reason="Ray executor tests: pip install 'semcomm[ray]'")
    from semcomm.runner import ray_executor
    from semcomm.runner.config import ExecutorConfig

    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a fresh `semcomm run`
    cfg = ExecutorConfig(kind="ray", address="127.0.0.1:1")
    with pytest.raises(SetupError, match=r"^executor\.address '127\.0\.0\.1:1': no Ray head "
                                         r"answers there \(ConnectionRefusedError"):
        ray_executor.connect(cfg, None)


# ----------------------------------------------------------------------------- Ray


@pytest.fixture(scope="module")
def local_ray() -> Any:
    if not _CHILD:
        pytest.skip("runs in the child pytest process (Ray's threads)")
    ray = pytest.importorskip("ray", reason="Ray executor tests: pip install 'semcomm[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("serial")
    cfg = tmp / "tiny.yaml"
    cfg.write_text(TINY)
    return cfg, run_experiment(load_experiment(cfg), tmp / "s", progress=False).run_dir


def _ray_experiment(cfg: Path) -> Any:
    path = cfg.with_name("tiny-ray.yaml")
    path.write_text(TINY + RAY)
    return load_experiment(path)


def test_ray_run_is_identical_to_serial_and_process(local_ray: Any, serial: tuple[Path, Path],
                                        tmp_path: Path) -> None:
    cfg, reference = serial
    result = run_experiment(_ray_experiment(cfg), tmp_path, progress=False)
    assert result.failed == 0
    _same_run(result.run_dir, reference)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["workers"] == 2  # one actor per CPU of the test's Ray
    # and the process executor's lines are the same too (test_scale: its summary, gallery)
    process = run_experiment(load_experiment(cfg), tmp_path / "p", workers=2, progress=False)
    assert _lines(process.run_dir) == _lines(result.run_dir)


def test_ray_resumes_a_partial_run(local_ray: Any, serial: tuple[Path, Path],
                                   tmp_path: Path) -> None:
    cfg, reference = serial
    run_dir = tmp_path / "partial"
    shutil.copytree(reference, run_dir)
    for name in ("summary.csv", "summary.json"):
        (run_dir / name).unlink()
    (run_dir / "config.yaml").write_text(to_yaml(_ray_experiment(cfg)))
    lines = (run_dir / "points.jsonl").read_text().splitlines(keepends=True)
    # phase 1 (2 images x original + 2 error-free) and a point and a half (killed there)
    (run_dir / "points.jsonl").write_text("".join(lines[:6 + 3]))
    result = run_experiment(load_run_config(run_dir), resume_dir=run_dir, progress=False)
    assert len(_lines(run_dir)) == len(lines)  # nothing measured twice
    _same_run(result.run_dir, reference)


def test_ray_failing_point_is_reported_and_the_sweep_goes_on(
        local_ray: Any, serial: tuple[Path, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from semcomm.runner import ray_executor

    cfg, reference = serial
    exp = _ray_experiment(cfg)
    monkeypatch.setattr(ray_executor, "POINT_FN", fail_webp_at_0db)
    with pytest.warns(UserWarning, match=r"point webp bpp=1 qpsk-ldpc0\.5-awgn 0 dB failed "
                                         r"on a Ray worker \(RuntimeError: injected failure"):
        result = run_experiment(exp, tmp_path, progress=False)
    assert result.failed == 1
    (failure,) = [json.loads(x) for x in
                  (result.run_dir / "failures.jsonl").read_text().splitlines()]
    assert (failure["codec"], failure["snr_db"]) == ("webp", 0)
    assert failure["error"] == "RuntimeError: injected failure"
    # every other point was measured: the serial lines less webp's at 0 dB
    lost = [x for x in _lines(reference) if (json.loads(x)["codec"], json.loads(x)["kind"],
                                             json.loads(x)["snr_db"]) == ("webp", "link", 0)]
    assert len(lost) == 2
    assert _lines(result.run_dir) == sorted(set(_lines(reference)) - set(lost))
    monkeypatch.setattr(ray_executor, "POINT_FN", ray_executor.sweep._worker_point)
    resumed = run_experiment(exp, resume_dir=result.run_dir, progress=False)
    assert resumed.failed == 0
    _same_run(resumed.run_dir, reference)


def test_ray_setup_errors_are_one_line(local_ray: Any, serial: tuple[Path, Path],
                                       tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from semcomm.runner import ray_executor

    cfg, _ = serial
    exp = _ray_experiment(cfg)
    with pytest.raises(SetupError, match=r"^executor: 3 actors \(num_cpus or --workers\) "
                                         r"asked, but the local Ray has 2 CPUs free"):
        run_experiment(exp, tmp_path, workers=3, progress=False)
    monkeypatch.setattr(ray_executor, "code_fingerprint", lambda root=None: "0" * 64)
    with pytest.raises(SetupError, match=r"semcomm code on Ray node .* differs from the "
                                         r"driver's \(fingerprint [0-9a-f]{12} != 000000"):
        run_experiment(exp, tmp_path, progress=False)
