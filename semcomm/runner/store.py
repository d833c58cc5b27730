"""``points.jsonl``: one JSON line per measurement, appended, flushed and fsync'd.

A run killed at any moment (SIGKILL included) leaves at most one partial last line;
:class:`PointStore` drops it on open, so ``--resume`` loses nothing that was
complete and recomputes nothing already written.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

#: Fields that identify a measurement (its primary key).
KEY_FIELDS = ("kind", "codec", "rate", "link", "snr_db", "image", "realization")


def line_key(line: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(line[k] for k in KEY_FIELDS)


def _clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become null, numpy scalars become Python ones."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def iter_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(byte offset, line) of every complete line of a ``points.jsonl``, streamed (a
    partial last line, what a SIGKILL mid-write leaves, is skipped)."""
    with open(path, "rb") as fh:
        offset = 0
        for raw in fh:
            if raw.endswith(b"\n") and raw.strip():
                yield offset, json.loads(raw)
            offset += len(raw)


def read_at(path: Path, offsets: Iterable[int]) -> list[dict[str, Any]]:
    """The lines starting at ``offsets`` (from :func:`iter_lines`)."""
    with open(path, "rb") as fh:
        out = []
        for offset in offsets:
            fh.seek(offset)
            out.append(json.loads(fh.readline()))
        return out


def _complete_end(path: Path) -> int:
    """Byte length of the complete lines of ``path``."""
    end = 0
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            end += len(raw)
    return end


def complete_lines(path: Path) -> int:
    """Number of complete lines of ``path``: what a resume keeps (0 if it is missing)."""
    if not Path(path).exists():
        return 0
    with open(path, "rb") as fh:
        return fh.read(_complete_end(path)).count(b"\n")


class RunLocked(RuntimeError):
    """Another process writes to this run folder (one writer per run folder)."""


class RunLock:
    """An exclusive ``fcntl`` lock on ``RUN_DIR/.lock`` held while a run writes there.

    A second writer (a concurrent ``--resume``, a second ``semcomm merge``) fails at once
    with :class:`RunLocked` instead of appending duplicate lines. The kernel drops the
    lock when the holder exits, even on SIGKILL, so a killed run never leaves it stale.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / ".lock"
        self._fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.seek(0)
            holder = self._fh.read().strip() or "another process"
            self._fh.close()
            raise RunLocked(f"run folder {str(run_dir)!r} is in use by {holder}; wait for "
                            "it to finish (one writer per run folder)") from None
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(f"pid {os.getpid()}\n")
        self._fh.flush()

    def release(self) -> None:
        if not self._fh.closed:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()


class PointStore:
    """Append-only measurement log with a key index.

    Parameters
    ----------
    path : Path of ``points.jsonl`` (created if missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        # Only the keys and each line's block errors stay in memory (what resume and the
        # stopping rule need); the lines themselves are read back from disk when needed.
        self.block_errors: dict[tuple[Any, ...], int] = {}
        if self.path.exists():
            self._load()
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open

    def _load(self) -> None:
        with open(self.path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
        for _, line in iter_lines(self.path):
            self.block_errors[line_key(line)] = int(line.get("block_errors") or 0)
        end = _complete_end(self.path)
        if end != size:  # a SIGKILL mid-write leaves a partial last line
            with open(self.path, "r+b") as fh:
                fh.truncate(end)

    def __contains__(self, key: tuple[Any, ...]) -> bool:
        return key in self.block_errors

    def __len__(self) -> int:
        return len(self.block_errors)

    def keys(self) -> Iterable[tuple[Any, ...]]:
        return self.block_errors.keys()

    def append(self, lines: Iterable[dict[str, Any]]) -> None:
        """Write lines (skipping keys already present) and make them durable."""
        text = []
        for line in lines:
            clean = _clean(line)
            key = line_key(clean)
            if key in self.block_errors:
                continue
            self.block_errors[key] = int(clean.get("block_errors") or 0)
            text.append(json.dumps(clean, separators=(",", ":")) + "\n")
        if text:
            self._fh.write("".join(text))
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()
