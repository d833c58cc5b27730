"""The process executor's workers: forked from the ready parent only when that is safe,
results in order, the same lines and files as a serial run, the work really shared."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from semcomm.codecs.base import ReceivedPayload, Reconstruction
from semcomm.pipeline import DecodeCache
from semcomm.runner import pool
from semcomm.runner.config import load_experiment
from semcomm.runner.run import run_experiment

TINY = """
name: tiny
dataset: {count: 3, size: [64, 128]}
codecs:
  - {name: jpeg, bpp: [1.0]}
  - {name: webp, bpp: [1.0]}
links: [{modulation: qpsk, code_rate: 0.5, channel: [awgn, rayleigh-block]}]
snr: {esno_db: [-6, 0, 1, 6]}
failure: {policy: mean, mean_images: 2}
metrics: {bootstrap: 50}
"""


def _square_pid(state: int, x: int) -> tuple[int, int]:
    return state + x * x, os.getpid()


def test_fork_map_in_order_on_other_processes() -> None:
    assert pool.fork_ok() == (True, "")  # the test process is single-threaded
    out = list(pool.fork_map(_square_pid, list(range(12)), 100, workers=3))
    assert [v for v, _ in out] == [100 + x * x for x in range(12)]
    pids = {pid for _, pid in out}
    assert os.getpid() not in pids and 1 <= len(pids) <= 3
    unordered = list(pool.fork_map(_square_pid, list(range(12)), 0, 2, ordered=False))
    assert sorted(v for v, _ in unordered) == [x * x for x in range(12)]


def _nested(state: int, x: int) -> tuple[set[int], int]:
    return {pid for _, pid in pool.fork_map(_square_pid, [1, 2, 3], state, 2)}, os.getpid()


def test_a_worker_forks_no_further() -> None:
    # A pool worker may not have children: its own fork_map runs in it, in order.
    for inner, pid in pool.fork_map(_nested, [0, 1], 0, workers=2):
        assert inner == {pid} and pid != os.getpid()


def test_no_fork_with_threads_cuda_or_one_worker() -> None:
    # A second thread could hold a lock that the child would never see released.
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        ok, why = pool.fork_ok()
        assert not ok and "2 threads" in why
        out = list(pool.fork_map(_square_pid, [1, 2, 3], 0, workers=2))
        assert out == [(1, os.getpid()), (4, os.getpid()), (9, os.getpid())]  # in-process
    finally:
        stop.set()
        thread.join()
    assert not pool.fork_ok("cuda:0")[0]
    assert {pid for _, pid in pool.fork_map(_square_pid, [1, 2], 0, workers=1)} == {os.getpid()}


def test_decode_cache_entries_move_between_caches() -> None:
    class Grey:
        name = "grey"
        calls = 0

        def decode(self, received: ReceivedPayload) -> Reconstruction:
            Grey.calls += 1
            return Reconstruction(np.full((*received.shape, 3), len(received.data), np.uint8),
                                  None, True)

    worker, parent = DecodeCache(), DecodeCache()
    before = worker.keys()
    worker.decode("g", Grey(), ReceivedPayload(b"abc", (2, 2), ()))  # type: ignore[arg-type]
    new = worker.items(before)
    assert len(new) == 1
    for key, rec in new:
        parent.add(key, rec)
    hit = parent.decode("g", Grey(), ReceivedPayload(b"abc", (2, 2), ()))  # type: ignore[arg-type]
    assert Grey.calls == 1 and parent.hits == 1 and int(hit.image[0, 0, 0]) == 3
    assert not hit.image.flags.writeable


def _lines(run_dir: Path) -> list[str]:
    return sorted((run_dir / "points.jsonl").read_text().splitlines())


def test_forked_workers_do_the_work_and_match_serial(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    exp = load_experiment(cfg)
    serial = run_experiment(exp, tmp_path / "s", progress=False).run_dir
    parallel = run_experiment(exp, tmp_path / "p", workers=2, progress=False).run_dir
    # The same measurements (points.jsonl lines in another order) and the same files.
    assert _lines(parallel) == _lines(serial)
    assert (parallel / "summary.csv").read_text() == (serial / "summary.csv").read_text()
    figures = sorted(p.name for p in serial.glob("*.png"))
    assert figures and sorted(p.name for p in parallel.glob("*.png")) == figures
    # Phase 1 appends in image order, as a serial run does.
    head = [json.loads(t)["image"] for t in (parallel / "points.jsonl").read_text()
            .splitlines() if json.loads(t)["kind"] != "link"]
    assert head == sorted(head)
    # Every stage with workers ran on them (not silently in the parent), and a serial
    # run starts none.
    timings = json.loads((parallel / "summary.json").read_text())["timings"]
    assert set(timings) == {"setup", "encode", "sweep", "summary", "plots"}
    for stage in ("setup", "encode", "sweep", "summary", "plots"):
        assert timings[stage]["workers_cpu_s"] > 0, (stage, timings)
    serial_t = json.loads((serial / "summary.json").read_text())["timings"]
    assert all(t["workers_cpu_s"] < 0.05 for t in serial_t.values()), serial_t


def test_spawned_workers_when_fork_is_unsafe(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Where forking is refused (a CUDA device, macOS, a threaded parent), phase 2 runs on
    # spawned workers that build their own context: the same lines.
    monkeypatch.setattr(pool, "fork_ok", lambda device="cpu": (False, "test"))
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY.replace("count: 3", "count: 2").replace(", rayleigh-block", ""))
    exp = load_experiment(cfg)
    serial = run_experiment(exp, tmp_path / "s", progress=False).run_dir
    parallel = run_experiment(exp, tmp_path / "p", workers=2, progress=False).run_dir
    assert _lines(parallel) == _lines(serial)
    timings = json.loads((parallel / "summary.json").read_text())["timings"]
    assert timings["encode"]["workers_cpu_s"] < 0.05  # phase 1 stayed in the parent
    assert timings["sweep"]["workers_cpu_s"] > 0
