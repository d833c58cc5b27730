"""A sweep on Ray (``executor: {kind: ray}``): one actor per CPU, on this host or on a
cluster.

::

    driver (semcomm run)                         Ray actors (num_cpus of them, 1 CPU each)
    connect: local Ray (address: null) or
             a cluster (auto | <host>:<port>)
    start the actors (config, code
      fingerprint) ───────────────────────────► same code? then the context (models,
    build its own context (validation,           dataset, links), ONCE per actor,
      fallback image), make the run folder         while the driver builds its own
    attach (run folder, fallback, tx maps) ───► run folder visible?
    phase 1: one image per idle actor ────────► encode, error-free decodes ─► lines and
    lines in image order ◄─────────────────────  cache entries (shared with every actor)
    phase 2: one point per idle actor ────────► run_point ─► lines
    points.jsonl ◄──── lines, in completion order ◄┘
    summary rows and figures ─────────────────► one row / one file per task
    a point that raises: failures.jsonl + a warning; the sweep goes on (--resume reruns it)

Results are bit-for-bit those of the serial and process executors: every transmission
is seeded from (seed, image, link, SNR, realisation) (see :mod:`semcomm.runner.sweep`),
an actor runs whole points with one intra-op thread, and the stopping rules are
evaluated per point in image order. Only the order of the lines in points.jsonl depends
on which point finishes first; the summary reads them by key.

Every actor reads the payloads and writes the gallery in the run folder, so on a
cluster the folder (``--out``) must be on a filesystem that every node mounts at the
same path, and the same semcomm code must be importable on every node (checked:
a worker whose code fingerprint differs from the driver's is refused).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import socket
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from semcomm.runner import sweep
from semcomm.runner.store import PointStore
from semcomm.runner.sweep import Context, Point, plan_points

#: What an actor runs per point: ``(Point, done) -> lines`` in a worker set up by
#: ``sweep._worker_init`` (the process executor's per-process context). Tests replace it
#: to inject a failure (it must be importable by the workers).
POINT_FN: Callable[[tuple[Point, dict[tuple[int, int], dict[str, Any]]]], list[dict]] = \
    sweep._worker_point

_ROOT = Path(__file__).resolve().parents[2]  # the folder holding semcomm/ and channels/


def _setup_error(message: str) -> Exception:
    from semcomm.runner.run import SetupError

    return SetupError(message)


def require_ray() -> None:
    """SetupError (one line) unless Ray can be imported."""
    try:
        import ray  # noqa: F401
    except ImportError as err:
        raise _setup_error(f"executor.kind 'ray' needs Ray, which is not installed here "
                           f"({err}): pip install 'semcomm[ray]'") from None


def code_fingerprint(root: Path = _ROOT) -> str:
    """sha256 of every ``.py`` file of semcomm/ and channels/ under ``root`` (path and
    bytes): the driver and its workers must run the same code to give the same bits."""
    digest = hashlib.sha256()
    for package in ("semcomm", "channels"):
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:300]}"


def connect(cfg: Any, actors: int | None) -> bool:
    """Connect to (or start) Ray per ``cfg`` (ExecutorConfig), or SetupError (one line:
    Ray not installed, not reachable); True when this call started a Ray connection (the
    :class:`RayPool` then shuts it down). A Ray already initialised in this process (a
    test's, a notebook's) is used as it is."""
    require_ray()
    import ray

    if ray.is_initialized():
        return False
    if cfg.address not in (None, "auto"):  # Ray retries an unreachable head for minutes
        host, _, port = cfg.address.rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
        except OSError as err:
            raise _setup_error(f"executor.address {cfg.address!r}: no Ray head answers "
                               f"there ({_one_line(err)}); start one with ray start --head "
                               f"--port={port}") from None
    # Workers on this host import the driver's checkout first (not another install).
    path = os.pathsep.join(p for p in (str(_ROOT), os.environ.get("PYTHONPATH")) if p)
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING",
                              "runtime_env": {"env_vars": {"PYTHONPATH": path}}}
    try:
        if cfg.address is None:
            gpus = math.ceil(cfg.num_gpus) if cfg.num_gpus else None  # None: detect
            # A local Ray's processes inherit this environment: its workers then need no
            # runtime_env, so the ones Ray starts with the node serve as actors at once.
            del kwargs["runtime_env"]
            saved = os.environ.get("PYTHONPATH")
            os.environ["PYTHONPATH"] = path
            try:
                # "local": a new instance for this run, even when RAY_ADDRESS or a `ray
                # start` cluster of this host would be found by ray.init() without address.
                ray.init(address="local", num_cpus=actors or cfg.num_cpus or os.cpu_count()
                         or 1, num_gpus=gpus, **kwargs)
            finally:
                if saved is None:
                    os.environ.pop("PYTHONPATH", None)
                else:
                    os.environ["PYTHONPATH"] = saved
        else:
            ray.init(address=cfg.address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as err:
        where = "a local Ray" if cfg.address is None else f"Ray at {cfg.address!r}"
        raise _setup_error(f"executor: cannot start or reach {where}: {_one_line(err)}") \
            from None
    return True


class SweepWorker:
    """One Ray actor (``ray.remote`` is applied by :class:`RayPool`): a worker process
    that builds its point context once (:meth:`prepare` while the driver builds its
    own, then :meth:`attach` to the run folder), then runs images, points and the
    driver's summary and figure tasks."""

    def __init__(self, point_fn: Callable[..., list[dict]]) -> None:
        self.point_fn = point_fn
        self.ctx: Any = None
        self.state: tuple[Any, Any] = (None, None)  # (ref id, value) of a task state

    def prepare(self, config: dict[str, Any], fingerprint: str) -> None:
        """The context of ``config`` (models, dataset, links), after checking that this
        worker runs the driver's code."""
        host, mine = socket.gethostname(), code_fingerprint()
        if mine != fingerprint:
            raise RuntimeError(f"the semcomm code on Ray node {host!r} ({_ROOT}) differs "
                               f"from the driver's (fingerprint {mine[:12]} != "
                               f"{fingerprint[:12]}): install the same checkout on every node")
        self.ctx = sweep.worker_context(config)

    def attach(self, run_dir: str, shared: tuple[Any, Any], images: list[int],
               config_sha: str) -> None:
        """The run this worker measures, after checking that it sees the run folder (a
        shared filesystem on a cluster); ``shared``: the driver's fallback image and
        transmitter maps (not built again here)."""
        host, path = socket.gethostname(), Path(run_dir) / "config.yaml"
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != config_sha:
            raise RuntimeError(f"run folder {run_dir!r} is not visible on Ray node "
                               f"{host!r}: put --out on a filesystem that "
                               "every node mounts at the same path")
        if self.ctx is None:
            raise RuntimeError("the worker's context was not built (its prepare failed)")
        fallback, tx_labels = shared
        sweep.worker_attach(self.ctx, run_dir, fallback, images, tx_labels)

    def build(self, config: dict[str, Any], run_dir: str, shared: tuple[Any, Any],
              images: list[int], config_sha: str, fingerprint: str) -> None:
        """:meth:`prepare` and :meth:`attach` (an actor started mid-run)."""
        self.prepare(config, fingerprint)
        self.attach(run_dir, shared, images, config_sha)

    def point(self, job: tuple[Point, dict[tuple[int, int], dict[str, Any]]]
              ) -> list[dict]:
        return self.point_fn(job)

    def image(self, i: int, present: frozenset[tuple[Any, ...]]) -> tuple[list[Any], Any]:
        """Phase 1 of image ``i``: its lines and the cache entries made."""
        return sweep._worker_image(i, present)

    def merge(self, deltas: list[dict[str, Any]]) -> None:
        """The other actors' phase-1 cache entries (error-free decodes, segmentations)."""
        sweep._worker_merge(deltas)

    def warm(self) -> None:
        """Import what the summary and figure tasks use (an actor with no point left)."""
        import semcomm.runner.plots  # noqa: F401
        import semcomm.runner.summary  # noqa: F401

    def call(self, fn: Callable[[Any, Any], Any], state: list[Any], item: Any) -> Any:
        """``fn(state, item)``: one task of the driver's ``pool.fork_map`` (summary rows,
        figures). ``state`` is ``[ref]``, fetched once per state, not per task."""
        import ray

        (ref,) = state
        if self.state[0] != ref.hex():
            self.state = (ref.hex(), ray.get(ref))
        return fn(self.state[1], item)


class RayPool:
    """The actors of one run (on a Ray that :func:`connect` reached).

    ``RayPool(exp, device, actors, started)`` starts the actors, which build their
    contexts while the driver builds its own; :meth:`attach` gives them the run folder;
    :meth:`encode` runs phase 1 and :meth:`run` phase 2 on them; within
    :meth:`tasks`, the driver's summary rows and figures go to them too; :meth:`close`
    ends the actors (and the Ray connection the run started)."""

    def __init__(self, exp: Any, device: str, actors: int | None, started: bool) -> None:
        """``exp``: the experiment as the Context gets it (adaptation expanded);
        ``started``: this run started the Ray connection (:func:`connect`), and
        :meth:`close` ends it."""
        import ray

        cfg = exp.executor
        self.started = started
        self.ctx: Context | None = None
        self.failed: list[Point] = []
        self.actors: list[Any] = []
        try:
            self.size = self._size(cfg, actors or cfg.num_cpus, device)
            gpus = (cfg.num_gpus or 0) / self.size
            self._cls: Any = ray.remote(num_cpus=1, num_gpus=gpus)(SweepWorker)
            self._config = exp.model_dump(mode="json")
            self._fingerprint = code_fingerprint()
            self.actors = [None] * self.size
            self.preparing = [self._new(slot).prepare.remote(self._config, self._fingerprint)
                              for slot in range(self.size)]
            #: build ref -> actor slot (a point goes to an actor once its build is done)
            self.building: dict[Any, int] = {}
        except BaseException:
            self.close()
            raise

    def _size(self, cfg: Any, asked: int | None, device: str) -> int:
        """Actors to start: ``asked`` (or one per free CPU); SetupError when Ray cannot
        host them (an actor holds its CPU while it lives)."""
        import ray

        need = asked or 1
        deadline = time.monotonic() + 10  # a fresh Ray reports its resources in a moment
        while True:
            free = ray.available_resources()
            cpus = int(free.get("CPU", 0))
            if cpus >= need or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        where = "the local Ray" if cfg.address is None else f"Ray at {cfg.address!r}"
        if need > cpus:
            raise _setup_error(f"executor: {need} actors (num_cpus or --workers) asked, but "
                               f"{where} has {cpus} CPUs free; give at most {cpus}")
        if device.startswith("cuda") and not cfg.num_gpus:
            raise _setup_error(f"device {device!r} with executor kind ray needs "
                               "executor.num_gpus > 0 (Ray hides the GPUs from actors that "
                               "reserve none)")
        if cfg.num_gpus and cfg.num_gpus > free.get("GPU", 0):
            raise _setup_error(f"executor.num_gpus {cfg.num_gpus:g}: {where} has "
                               f"{free.get('GPU', 0):g} GPUs free")
        return max(1, asked or cpus)

    def _new(self, slot: int) -> Any:
        self.actors[slot] = self._cls.remote(POINT_FN)
        return self.actors[slot]

    def attach(self, ctx: Context) -> None:
        """Give the actors the run (folder, fallback image, the transmitter's maps that
        the driver segmented, images) once the driver's
        context and run folder exist; actors beyond one per image and point end here."""
        import ray

        self.ctx = ctx
        useful = max(len(ctx.images), len(plan_points(ctx)), 1)
        for actor in self.actors[useful:]:
            ray.kill(actor)
        del self.actors[useful:], self.preparing[useful:]
        self.size = len(self.actors)
        self._shared = ray.put((ctx.fallback, ctx.tx_labels))
        self._config_sha = hashlib.sha256(
            (ctx.run_dir / "config.yaml").read_bytes()).hexdigest()
        self.building = {actor.attach.remote(str(ctx.run_dir), self._shared, ctx.images,
                                             self._config_sha): slot
                         for slot, actor in enumerate(self.actors)}

    def _start(self, slot: int) -> Any:
        """A fresh actor in ``slot`` (one that died mid-run); returns the ref of its
        context build."""
        ctx = self.ctx
        assert ctx is not None
        return self._new(slot).build.remote(self._config, str(ctx.run_dir), self._shared,
                                            ctx.images, self._config_sha, self._fingerprint)

    def _built(self) -> None:
        """Wait for the actors' context builds; SetupError (one line) if one failed."""
        import ray
        from ray.exceptions import RayError, RayTaskError

        try:
            ray.get(self.preparing + list(self.building))  # a prepare's error first
        except RayError as err:
            cause = err.cause if isinstance(err, RayTaskError) else err
            raise _setup_error(f"executor: a Ray worker could not build its context: "
                               f"{_one_line(cause)}") from None
        self.preparing, self.building = [], {}

    def encode(self, enc: Any, store: PointStore, bar: tqdm) -> None:
        """Phase 1 on the actors, one image per task, as the process executor does: the
        driver takes each image's lines and cache entries in image order
        (:func:`sweep.take_image`: same lines, same warnings as a serial run); then every
        actor gets the entries the others made, so that phase 2 starts with every
        error-free decode cached. A failure here stops the run (as serially)."""
        import ray

        assert self.ctx is not None
        self._built()
        present = sweep.image_keys(store)  # resume: lines already measured
        made: list[tuple[int, Any]] = []  # (actor slot, cache entries), image order
        for slot, (lines, delta) in self._each(
                lambda actor, i: actor.image.remote(i, present.get(i, frozenset())),
                list(self.ctx.images)):
            sweep.take_image(self.ctx, enc, store, lines, delta)
            made.append((slot, delta))
            bar.update(1)
        ray.get([actor.merge.remote([d for s, d in made if s != slot])
                 for slot, actor in enumerate(self.actors)])

    def run(self, store: PointStore, bar: tqdm) -> list[Point]:
        """Run every point not yet complete; returns the points that failed."""
        import ray
        from ray.exceptions import RayError, RayTaskError

        assert self.ctx is not None  # attach() came first
        queue = sweep.point_jobs(self.ctx, store, longest_first=True)
        queue.reverse()  # pop() from the end: the longest first
        pending: dict[Any, tuple[int, Point | None]] = {
            ref: (slot, None) for ref, slot in self.building.items()}
        for slot in range(self.size):  # built actors (by encode()) start at once
            if slot not in self.building.values() and queue:
                job = queue.pop()
                pending[self.actors[slot].point.remote(job)] = (slot, job[0])
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            slot, pt = pending.pop(ref)
            try:
                lines = ray.get(ref)
            except RayError as err:
                cause = err.cause if isinstance(err, RayTaskError) else err
                if pt is None:
                    raise _setup_error(f"executor: a Ray worker could not build its "
                                       f"context: {_one_line(cause)}") from None
                self._report(pt, cause, str(err))
                if not isinstance(err, RayTaskError):  # the actor died: a fresh one
                    pending[self._start(slot)] = (slot, None)
                    bar.update(1)
                    continue
            else:
                if pt is not None:
                    store.append(lines)
            if pt is not None:
                bar.update(1)
            if queue:
                job = queue.pop()
                pending[self.actors[slot].point.remote(job)] = (slot, job[0])
            elif all(p is None for _, p in pending.values()):
                break  # only builds left, no point for them: done
            elif pt is not None:  # idle now: ready the summary and figure tasks
                self.actors[slot].warm.remote()
        return self.failed

    @contextlib.contextmanager
    def tasks(self) -> Iterator[None]:
        """Within this block the driver's ``pool.fork_map`` tasks (the summary rows, the
        figures: what the process executor forks workers for, which Ray's threads forbid
        here) run on the actors."""
        from semcomm.runner.pool import remote_workers

        with remote_workers(self._map):
            yield

    def _map(self, fn: Callable[[Any, Any], Any], items: Sequence[Any], state: Any,
             ordered: bool) -> Iterator[Any]:
        """``fn(state, item)`` for every item on the actors (``pool.fork_map``'s tasks);
        ``state`` is sent once (the object store)."""
        import ray

        ref = ray.put(state)
        for _, value in self._each(lambda actor, item: actor.call.remote(fn, [ref], item),
                                   items, ordered):
            yield value

    def _each(self, call: Callable[[Any, Any], Any], items: Sequence[Any],
              ordered: bool = True) -> Iterator[tuple[int, Any]]:
        """``call(actor, item)`` (a task ref) for every item, one item per task handed out
        in ``items`` order as actors become free; yields ``(actor slot, result)`` in
        ``items`` order (``ordered``) or as they finish. A task's exception is raised as
        itself, as it would be in this process."""
        import ray
        from ray.exceptions import RayTaskError

        todo = list(enumerate(items))[::-1]  # pop() from the end: items order
        pending: dict[Any, tuple[int, int]] = {}
        done: dict[int, tuple[int, Any]] = {}

        def submit(slot: int) -> None:
            if todo:
                k, item = todo.pop()
                pending[call(self.actors[slot], item)] = (slot, k)

        for slot in range(self.size):
            submit(slot)
        nxt = 0
        while pending:
            (got,), _ = ray.wait(list(pending), num_returns=1)
            slot, k = pending.pop(got)
            try:
                value = ray.get(got)
            except RayTaskError as err:
                raise err.as_instanceof_cause() from None
            submit(slot)
            if not ordered:
                yield slot, value
                continue
            done[k] = (slot, value)
            while nxt in done:
                yield done.pop(nxt)
                nxt += 1

    def _report(self, pt: Point, cause: BaseException, detail: str) -> None:
        """A failed point: one warning line, one line in failures.jsonl."""
        assert self.ctx is not None
        self.failed.append(pt)
        line = {"codec": pt.codec, "rate": pt.rate.label, "link": pt.link,
                "snr_db": pt.snr_db, "error": _one_line(cause), "detail": detail}
        with open(self.ctx.run_dir / "failures.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
        warnings.warn(f"point {pt.codec} {pt.rate.label} {pt.link} {pt.snr_db:g} dB failed "
                      f"on a Ray worker ({line['error']}); the sweep goes on (failures.jsonl;"
                      " --resume reruns it)", stacklevel=2)

    def close(self) -> None:
        import ray

        for actor in getattr(self, "actors", []):
            if actor is not None:
                ray.kill(actor)
        if self.started:
            ray.shutdown()
