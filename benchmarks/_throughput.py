"""Aggregate codec throughput with one single-threaded process per core.

The speed scripts time one image per call on 1 or 2 threads: the latency of one
image. A runner with ``--workers N`` codes N images at once, one per process, each on
one thread; on a 2-core CPU that is the machine's throughput. :func:`throughput`
measures it: N processes (spawned, ``torch.set_num_threads(1)``) each build the codec,
warm up on one image, wait at a common barrier, then encode + decode their own images
(error-free); the result is all images over the wall time from the barrier to the last
process's end.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import warnings
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Throughput:
    """``images`` coded by ``processes`` processes in ``seconds`` of wall time."""

    processes: int
    images: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds

    def __str__(self) -> str:
        return (f"{self.processes} processes x 1 thread: {self.images} images (encode + "
                f"decode) in {self.seconds:.2f} s wall = {self.images_per_second:.2f} "
                "images/s")


def _worker(codec: str, params: dict[str, Any], data: dict[str, Any], offset: int,
            count: int, rate: dict[str, float], barrier: Any, out: Any) -> None:
    import torch

    from semcomm.codecs.base import RatePoint, ReceivedPayload
    from semcomm.codecs.registry import build_codec
    from semcomm.data import build_dataset

    torch.set_num_threads(1)
    coder = build_codec(codec, **params)
    dataset = build_dataset(**data)
    samples = [dataset[offset + i] for i in range(count + 1)]
    point = RatePoint(**rate)

    def code(i: int) -> None:
        smp = samples[i]
        payload = coder.encode(smp.image, smp.labels, point)
        rec = coder.decode(ReceivedPayload(payload.data, payload.shape))
        if not rec.ok:
            raise RuntimeError(f"error-free decode failed: {rec.error}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code(0)  # warm-up
        barrier.wait()
        for i in range(1, count + 1):
            code(i)
    out.put(count)


def throughput(codec: str, params: dict[str, Any], data: dict[str, Any],
               rate: dict[str, float], processes: int, images: int) -> Throughput:
    """Code ``images`` images in each of ``processes`` processes at once.

    ``codec``/``params``: registry name and constructor arguments; ``data``:
    ``build_dataset`` arguments (each process takes its own images); ``rate``:
    ``RatePoint`` fields.
    """
    if processes < 1 or images < 1:
        raise ValueError(f"processes {processes} and images {images} must be >= 1")
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(processes + 1)
    out = ctx.Queue()
    data = {**data, "count": processes * (images + 1)}
    procs = [ctx.Process(target=_worker, args=(codec, params, data, p * (images + 1),
                                               images, rate, barrier, out))
             for p in range(processes)]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=600)
    t0 = time.perf_counter()
    done = sum(out.get(timeout=3600) for _ in procs)
    seconds = time.perf_counter() - t0
    for proc in procs:
        proc.join()
        if proc.exitcode:
            raise RuntimeError(f"a throughput worker exited with code {proc.exitcode}")
    return Throughput(processes, done, seconds)
