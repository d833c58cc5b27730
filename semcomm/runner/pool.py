"""Worker processes of the process executor: forked from the ready parent when safe.

::

    parent: Context built, caches warm ──fork──► worker 1 ┐  tasks (small: an image
                                        ──fork──► worker 2 ┤  index, a Point, a summary
                                                  ...      ┘  key), results back in order
                                                              or as they finish

A forked worker starts in milliseconds with everything the parent holds: the imported
modules, the loaded models, the dataset, the encoded payloads and the decode,
segmentation and metric caches, shared copy-on-write. A spawned worker instead imports
torch and rebuilds the context (seconds per worker) and starts with cold caches, so on
a small CPU machine two spawned workers were slower than one process (issue 22:
x0.75 on the quickstart).

Forking is safe only when the parent is single-threaded at that moment: a lock held by
another thread (an OpenMP or BLAS pool, the link's decoder threads, tqdm's monitor)
would stay locked forever in the child. It is also refused with a CUDA device (a CUDA
context does not survive a fork) and on macOS (system frameworks are not fork-safe).
:func:`fork_ok` checks all three; where it says no, :func:`fork_map` runs the tasks in
the calling process and the sweep falls back to spawned workers.

Every worker runs one torch thread (and one link thread, see ``Context.link_threads``):
N workers on N cores, no oversubscription. The parent's objects are frozen
(``gc.freeze``) while its workers live, so that their garbage collections do not copy
the shared heap page by page.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: What a forked worker's tasks read (set in the parent just before the fork).
_STATE: Any = None
#: True in a worker process (set by :func:`worker_start`).
_IN_WORKER = False
#: Where :func:`fork_map` sends its tasks when this process may not fork but has
#: workers of its own (a Ray run's actors, :func:`remote_workers`): ``(fn, items,
#: state, ordered) -> results``.
_REMOTE: Callable[[Callable[[Any, Any], Any], Sequence[Any], Any, bool], Iterator[Any]] \
    | None = None


def os_threads() -> int:
    """Threads of this process as the OS sees them (native pools included, which
    ``threading`` does not list); ``threading.active_count()`` without /proc."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def fork_ok(device: str = "cpu") -> tuple[bool, str]:
    """(True, "") when worker processes may be forked from this one now, else (False,
    why): the platform has no safe fork, ``device`` is not the CPU, or the process runs
    more than one thread."""
    if "fork" not in multiprocessing.get_all_start_methods() or sys.platform == "darwin":
        return False, f"no safe fork on {sys.platform}"
    if device != "cpu":
        return False, f"device {device!r}: a CUDA context does not survive a fork"
    threads = os_threads()
    if threads != 1:
        return False, f"the parent runs {threads} threads"
    return True, ""


@contextlib.contextmanager
def remote_workers(mapper: Callable[[Callable[[Any, Any], Any], Sequence[Any], Any, bool],
                                    Iterator[Any]]) -> Iterator[None]:
    """Within this block :func:`fork_map` runs its tasks through ``mapper`` where it
    could not fork (a Ray driver: Ray's threads forbid a fork, its actors are idle)."""
    global _REMOTE
    _REMOTE = mapper
    try:
        yield
    finally:
        _REMOTE = None


def can_split(device: str = "cpu") -> bool:
    """True when :func:`fork_map` would run tasks on other processes (forked ones, or the
    workers of :func:`remote_workers`), so splitting work into tasks pays."""
    return fork_ok(device)[0] or _REMOTE is not None


def in_worker() -> bool:
    """True in a worker process of this module (forked or spawned)."""
    return _IN_WORKER


def worker_start() -> None:
    """A worker's start: ignore Ctrl-C (the parent alone handles it: it ends the pool
    and prints the resume command) and run torch on one thread."""
    import signal

    global _IN_WORKER
    _IN_WORKER = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _call(task: tuple[Callable[[Any, Any], Any], Any]) -> Any:
    fn, item = task
    return fn(_STATE, item)


def fork_map(fn: Callable[[Any, T], R], items: Sequence[T], state: Any, workers: int,
             ordered: bool = True, device: str = "cpu") -> Iterator[R]:
    """``fn(state, item)`` for every item, on up to ``workers`` forked processes.

    ``fn`` must be a module-level function (it is sent to the workers by name);
    ``state`` is not sent at all: the workers inherit it through the fork. Results come
    in ``items`` order (``ordered``) or as they finish. One item per task, handed out in
    ``items`` order as workers become free (put the longest first). With one worker,
    one item, in a worker, or where :func:`fork_ok` says no, runs in this process, in
    order.
    """
    workers = min(workers, len(items))
    forkable = fork_ok(device)[0]
    if workers > 1 and not _IN_WORKER and _REMOTE is not None and not forkable:
        yield from _REMOTE(fn, items, state, ordered)
        return
    if workers <= 1 or _IN_WORKER or not forkable:  # (a worker forks no more)
        yield from (fn(state, item) for item in items)
        return
    global _STATE
    _STATE = state
    # The parent's objects go to the garbage collector's permanent generation: a
    # worker's collections then skip them, instead of writing to (and so copying) every
    # page of the parent's heap. Measured: a full collection in a worker forked from a
    # 480 MB parent cost 0.4 CPU s, 0.004 s frozen.
    gc.freeze()
    try:
        mp = multiprocessing.get_context("fork")
        with mp.Pool(workers, initializer=worker_start) as pool:
            tasks: Iterable[tuple[Callable[[Any, T], R], T]] = [(fn, item) for item in items]
            run = pool.imap if ordered else pool.imap_unordered
            yield from run(_call, tasks, chunksize=1)
    finally:
        gc.unfreeze()
        _STATE = None
