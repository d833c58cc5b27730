"""The sweep: every (codec, rate, link, SNR) point over the dataset, resumable.

::

    Experiment ─► Context (dataset, segmenter, codecs, links, fallback image)
       phase 1  for each image x codec x rate: encode ONCE (payload cached on disk),
                decode error-free, measure      ─► "original" and "error-free" lines
       phase 2  for each point (codec, rate, link, SNR), images in order, in chunks:
                link.transmit(cached payloads) ─► receiver ─► measure ─► "link" lines
                stop the point at the image where its block errors reach the target
       results  points.jsonl ─► summary.csv / summary.json / plots

Seeds: the channel realisation of (image i, link, SNR, realisation r) is seeded from
SeedSequence([seed, i, link, SNR, r]); it does not depend on the codec (common random
numbers: every codec sees the same noise and fading), nor on the order, the workers
or a resume.

Analog codecs (payload kind "symbols", e.g. DeepJSCC) are sent over the analog twin of
each link (``channels.analog.AnalogChannel.from_link``: same channel, same draws per
seed, no code or QAM); their ``bandwidth_ratio`` is their knob (channel uses per pixel),
their lines have no bits or blocks, and their error-free line is the noiseless decode.
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import secrets
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image
from tqdm import tqdm

from semcomm.codecs.base import Codec, Payload, RatePoint, SymbolPayload
from semcomm.codecs.registry import build_codec, codec_factory
from semcomm.data.types import Sample
from semcomm.pipeline import (
    DecodeCache,
    Encoded,
    Receiver,
    Transmitter,
    conceals_losses,
    send,
    send_symbols,
    sends_symbols,
)
from semcomm.runner.config import Experiment, codec_links, expand_links, resolve_device
from semcomm.runner.measure import Evaluator, semantic_counts
from semcomm.runner.store import PointStore, iter_lines, line_key
from semcomm.runner.summary import stop_reason

#: Images per link batch (a chunk is computed together; stopping is still per image).
CHUNK_IMAGES = 8


@dataclass(frozen=True)
class RateSpec:
    """A rate entry of the YAML: kind in bpp | knob | bandwidth_ratio."""

    kind: str
    value: float

    @property
    def label(self) -> str:
        short = {"bpp": "bpp", "knob": "knob", "bandwidth_ratio": "cu/px"}[self.kind]
        return f"{short}={self.value:g}"


@dataclass(frozen=True)
class Point:
    """One operating point of phase 2."""

    codec: str
    rate: RateSpec
    link: str
    snr_db: float  # as given (Es/N0 or Eb/N0, see ``snr_kind``)
    esno_db: float


def transmission_seed(seed: int, image: int, link: str, snr_db: float, realization: int) -> int:
    """63-bit channel seed of one transmission (independent of codec and order)."""
    ss = np.random.SeedSequence([seed, image, zlib.crc32(link.encode()),
                                 zlib.crc32(f"{snr_db:.6g}".encode()), realization])
    hi, lo = ss.generate_state(2, np.uint32)
    return (int(hi) << 31) | (int(lo) >> 1)


class Context:
    """Everything built from an Experiment (the only place that imports the link)."""

    def __init__(self, exp: Experiment, run_dir: Path,
                 fallback: np.ndarray | None = None, workers: int = 1) -> None:
        """``fallback``: the parent's fallback image, shipped to a worker, which then
        also skips what only phase 1 needs (budget checks, the segmented tx semantics).
        ``workers > 1``: the images are loaded (rendered) and the originals segmented on
        forked workers (:func:`semcomm.runner.pool.fork_map`), the same arrays."""
        from channels import Link
        from semcomm.data import build_dataset
        from semcomm.runner.pool import fork_map
        from semcomm.segmentation import build_segmenter
        from semcomm.segmentation.segmenters import SEGMENTERS

        self.exp, self.run_dir = exp, run_dir
        self.device = resolve_device(exp.device)
        d = exp.dataset
        kwargs = _dataset_kwargs(d.model_dump(), d.name)
        self.dataset = build_dataset(d.name, **kwargs)
        count = min(exp.max_images, len(self.dataset))
        self.workers = workers
        self.samples: list[Sample] = list(fork_map(_load_sample, range(count), self.dataset,
                                                   workers, device=self.device))
        #: The images this run measures (all, or one shard's; see :func:`shard_images`).
        self.images: list[int] = list(range(count))
        self.segmenter = build_segmenter(
            exp.segmenter.name, **_with_device(SEGMENTERS.get(exp.segmenter.name),
                                               exp.segmenter.params, self.device))
        judge = exp.scorer  # scores x_hat; the segmenter gives s at the tx
        # The same config is the same network: share it (and the evaluator's cache).
        self.judge = self.segmenter if judge == exp.segmenter else build_segmenter(
            judge.name, **_with_device(SEGMENTERS.get(judge.name), judge.params, self.device))
        self.evaluator = Evaluator(exp, self.judge, judge.name == "ground-truth",
                                   getattr(self.dataset, "projection", "pinhole"))
        self.link_configs = dict(expand_links(exp.links))
        self.links = {label: Link(cfg) for label, cfg in self.link_configs.items()}
        # Codecs with their own ``link:`` settings: (codec, run link label) -> config.
        self.own_link_configs: dict[tuple[str, str], Any] = {
            (c.display, label): cfg for c in exp.codecs if c.link is not None
            for label, cfg in codec_links(exp.links, c.link)}
        self._own_links: dict[tuple[str, str], Any] = {}
        #: Decoder threads of every link (None: the link's default, the CPUs).
        self.link_threads: int | None = None
        # Packet codecs are built once per packet size (``packet_bytes: auto`` follows
        # each link's code blocks); ``codecs`` holds each codec at its default geometry.
        self._built: dict[tuple[str, int | None], Codec] = {}
        self.codecs: dict[str, Codec] = {
            c.display: self.codec_for(c.display, None) for c in exp.codecs}
        self._budgets: dict[tuple[float, str, tuple[int, int], str | None], int] = {}
        self.analog = self._analog_channels()
        self._check_codecs()
        self.fallback = (_fallback_image(exp, self.samples, workers) if fallback is None
                         else fallback)
        self._tx_labels: list[np.ndarray | None] | None = None
        if fallback is None:  # the parent: fail before compute, segment in batches
            self._check_budgets()
            self._tx_labels = self._tx_semantics()
        self.reference = self._reference()
        # Intact payloads decode to the same image at every SNR point: decode them once.
        self.decode_cache = DecodeCache()
        #: Decode a chunk's payloads as one batch (learned codecs' ``decode_batch``). On
        #: a GPU only: batching changes float rounding (~1e-5), and a CPU run must give
        #: the same bits whatever its chunking, workers or resume.
        self.batch_decodes = self.device.startswith("cuda")
        self.unmet_warned: set[tuple[str, str, str | None]] = set()

    def packet_bytes(self, codec: str, link: str | None) -> int | None:
        """Packet size of ``codec`` on ``link`` (None: not a packet codec, or one packet).

        ``packet_bytes: auto`` (the default of a packet codec when the run has links) is
        the block payload (k - 24) / 8 of the link's code, the smaller of the main and
        the priority code's when the link has a ``priority`` config, so every packet
        fits one code block. ``link=None`` (error-free lines of bpp and knob rates) takes
        the first link's.
        """
        cfg = next(c for c in self.exp.codecs if c.display == codec)
        value = packet_setting(cfg, bool(self.links))
        if value != "auto":
            return value  # type: ignore[return-value]
        if not self.link_configs:
            return None
        label = link if link is not None else next(iter(self.link_configs))
        marks = bool(getattr(codec_factory(cfg.name), "marks_priority", True))
        return auto_packet_bytes(self.link_config_for(codec, label), marks)

    def link_config_for(self, codec: str, link: str) -> Any:
        """The LinkConfig ``codec`` is sent with on the run's link ``link`` (its own
        ``link:`` override applied, else the run's)."""
        return self.own_link_configs.get((codec, link), self.link_configs[link])

    def link_for(self, codec: str, link: str) -> Any:
        """The Link ``codec`` is sent over on the run's link ``link``."""
        if (codec, link) not in self.own_link_configs:
            return self.links[link]
        if (codec, link) not in self._own_links:
            from channels import Link

            lk = Link(self.own_link_configs[(codec, link)])
            self._own_links[(codec, link)] = lk
            if self.link_threads is not None:
                lk.set_num_threads(self.link_threads)
        return self._own_links[(codec, link)]

    def set_link_threads(self, n: int) -> None:
        """Decode every link (priority codes included) on ``n`` threads; a process
        worker takes 1 (the results do not depend on it, see ``channels.Link``)."""
        self.link_threads = n
        for lk in [*self.links.values(), *self._own_links.values()]:
            lk.set_num_threads(n)

    def codec_for(self, codec: str, link: str | None) -> Codec:
        """The codec instance that serves ``link`` (built once per packet size)."""
        cfg = next(c for c in self.exp.codecs if c.display == codec)
        pb = self.packet_bytes(codec, link)
        if (codec, pb) not in self._built:
            params = _with_device(codec_factory(cfg.name), dict(cfg.params), self.device)
            if takes_packet_bytes(cfg.name):
                params["packet_bytes"] = pb
            self._built[(codec, pb)] = build_codec(cfg.name, **params)
        return self._built[(codec, pb)]

    def _analog_channels(self) -> dict[str, Any]:
        """The analog twin of each link (only when an analog codec is in the run)."""
        if not any(sends_symbols(c) for c in self.codecs.values()):
            return {}
        from channels.analog import AnalogChannel

        return {label: AnalogChannel.from_link(cfg) for label, cfg in self.link_configs.items()}

    def sends_symbols(self, codec: str) -> bool:
        return sends_symbols(self.codecs[codec])

    def _check_codecs(self) -> None:
        """Ask every codec (each packet geometry) about every image size and knob now."""
        from semcomm.runner.checks import check_knob, check_shape

        shapes = sorted({s.image.shape[:2] for s in self.samples})
        for c in self.exp.codecs:
            links: list[str | None] = [*self.links] or [None]
            for link in links:
                codec = self.codec_for(c.display, link)
                for shape in shapes:
                    try:
                        check_shape(codec, shape)
                    except ValueError as err:
                        raise ValueError(f"codec {c.display!r} cannot code the dataset's "
                                         f"{shape[0]}x{shape[1]} images: {err}") from None
                for knob in c.knob:
                    try:
                        check_knob(codec, knob)
                    except ValueError as err:
                        raise ValueError(f"codec {c.display!r}: knob {knob:g}: {err}") \
                            from None

    def _check_budgets(self) -> None:
        """Resolve every bandwidth ratio now, so a too-small one fails before compute."""
        shapes = {s.image.shape[:2] for s in self.samples}
        for c in self.exp.codecs:
            for kind, value in c.rate_specs():
                if c.link is not None and self.sends_symbols(c.display):
                    raise ValueError(f"codec {c.display!r} sends complex symbols: it has no "
                                     "modulation or code to override with link:")
                if kind == "bpp" and self.sends_symbols(c.display):
                    raise ValueError(f"codec {c.display!r} sends complex symbols, not bits: "
                                     f"give bandwidth_ratio (or knob), not bpp {value:g}")
                if kind == "bandwidth_ratio":
                    for link in self.links:
                        for shape in shapes:
                            self.resolve_rate(RateSpec(kind, value), link, shape, c.display)

    @property
    def tx_labels(self) -> list[np.ndarray | None]:
        """s given to each encoder (segmented on first use: phase-2 workers never encode)."""
        if self._tx_labels is None:
            self._tx_labels = self._tx_semantics()
        return self._tx_labels

    def _tx_semantics(self) -> list[np.ndarray | None]:
        """s given to each encoder: the segmenter's map of x, or the ground truth."""
        if self.exp.tx_semantics == "ground-truth":
            return [s.labels for s in self.samples]
        images = [s.image for s in self.samples]
        if self.judge is self.segmenter:  # one network: share the evaluator's cache
            return list(self.evaluator.segment(images, range(len(images)),
                                               [s.labels for s in self.samples], self.workers))
        return [self.segmenter.segment_uint8(s.image[None], None if s.labels is None
                                             else s.labels[None])[0] for s in self.samples]

    def _reference(self) -> list[np.ndarray | None]:
        """What each image's mIoU is scored against: its labels, or (``reference:
        original-segmentation``, the default for image folders) the evaluating
        segmenter's map of the original image, a pseudo ground truth."""
        if self.exp.dataset.resolved_reference == "labels":
            return [s.labels for s in self.samples]
        images = [s.image for s in self.samples]
        return list(self.evaluator.segment(images, range(len(images)),
                                           [s.labels for s in self.samples], self.workers))

    def esno_db(self, link: str, snr_db: float, codec: str | None = None) -> float:
        from channels import esno_db_from_ebno_db

        if self.exp.snr is None or self.exp.snr.kind == "esno":
            return snr_db
        cfg = self.link_configs[link] if codec is None else self.link_config_for(codec, link)
        return esno_db_from_ebno_db(snr_db, cfg.bits_per_symbol, float(cfg.code_rate))

    def resolve_rate(self, spec: RateSpec, link: str | None, shape: tuple[int, int],
                     codec: str | None = None) -> RatePoint:
        """A YAML rate -> RatePoint; bandwidth ratios become the link's byte budget, or,
        for an analog ``codec``, its knob (channel uses per pixel, checked against the
        budget int(ratio * H * W) that the digital codecs get)."""
        if spec.kind == "bpp":
            return RatePoint(bpp=spec.value)
        if spec.kind == "knob":
            return RatePoint(knob=spec.value)
        assert link is not None
        if codec is not None and self.sends_symbols(codec):
            uses = self.codecs[codec].channel_uses(shape, spec.value)  # type: ignore[attr-defined]
            if uses > int(spec.value * shape[0] * shape[1]):
                raise ValueError(f"codec {codec!r} sends {uses} symbols at bandwidth_ratio "
                                 f"{spec.value:g}, over the {int(spec.value * shape[0] * shape[1])}"
                                 f" channel uses of a {shape[0]}x{shape[1]} image")
            return RatePoint(knob=spec.value)
        return RatePoint(max_bytes=self.budget_bytes(spec.value, link, shape, codec))

    def budget_bytes(self, ratio: float, link: str, shape: tuple[int, int],
                     codec: str | None = None) -> int:
        """The byte budget of ``ratio`` channel uses per pixel on ``link``, an integer
        computed once from the link: the most payload bytes whose code blocks fit in
        int(ratio * H * W) channel uses (no bpp round trip, so no byte lost to flooring).
        On a link with a ``priority`` code this is the bound with every byte on the main
        code; :meth:`encode` lowers it per payload until the priority and main blocks
        together fit (one total budget).
        """
        key = (ratio, link, (int(shape[0]), int(shape[1])), codec)
        if key in self._budgets:
            return self._budgets[key]
        uses = int(ratio * shape[0] * shape[1])
        lk = self.links[link] if codec is None else self.link_for(codec, link)
        budget = lk.max_payload_bytes(uses)
        if budget == 0:
            raise ValueError(
                f"bandwidth_ratio {ratio:g} gives {uses} channel uses per {shape[0]}x{shape[1]}"
                f" image, less than one code block ({lk.symbols_per_block} "
                f"symbols) of link {link!r}")
        self._budgets[key] = budget
        return budget

    def channel_uses(self, codec: str, link: str, payload: Payload) -> int:
        """Channel uses of one transmission of ``payload`` on ``link``: its priority
        bytes in blocks of the priority code (when the link has one), the rest in blocks
        of the main code."""
        lk = self.link_for(codec, link)
        head = payload.priority_bytes if lk.priority_link is not None else 0
        uses = lk.channel_uses(len(payload.data) - head)
        if head:
            assert lk.priority_link is not None
            uses += lk.priority_link.channel_uses(head)
        return int(uses)

    def encode(self, enc: Encoder, codec: str, i: int, spec: RateSpec,
               link: str | None) -> Encoded:
        """Image ``i`` encoded at the YAML rate ``spec`` for ``link``.

        A bandwidth ratio on a link with a priority code is one total budget of
        int(ratio * H * W) channel uses: the byte budget starts with every byte on the
        main code and drops by one block payload (the smaller of the two codes') until the
        payload's priority and main blocks fit together (the codec decides how many
        bytes are priority); a payload that never fits is kept, ``budget_exceeded``."""
        shape = self.samples[i].image.shape[:2]
        rate = self.resolve_rate(spec, link, shape, codec)
        e = enc.get(codec, i, rate, link)
        if (spec.kind != "bandwidth_ratio" or link is None or self.sends_symbols(codec)
                or self.link_config_for(codec, link).priority is None):
            return e
        uses = int(spec.value * shape[0] * shape[1])
        lk = self.link_for(codec, link)
        step = min(lk.block_payload_bytes, lk.priority_link.block_payload_bytes)
        budget = rate.max_bytes
        assert budget is not None
        # Over even at the smallest budget: the line is kept, flagged budget_exceeded.
        while (self.channel_uses(codec, link, e.payload) > uses  # type: ignore[arg-type]
               and budget > step):
            budget -= step
            e = enc.get(codec, i, RatePoint(max_bytes=budget), link)
        return e

    def receiver(self, codec: str, shape: tuple[int, int], link: str | None = None
                 ) -> Receiver:
        fallback = self.fallback
        if fallback.shape[:2] != shape:
            fallback = np.asarray(Image.fromarray(fallback).resize((shape[1], shape[0])))
        pb = self.packet_bytes(codec, link)
        return Receiver(self.codec_for(codec, link), self.exp.failure.policy, fallback,
                        cache=self.decode_cache, cache_key=f"{codec}|packet_bytes={pb}")


def takes_packet_bytes(name: str) -> bool:
    """True for packet codecs: their constructor has a ``packet_bytes`` parameter."""
    import inspect

    from semcomm.codecs.registry import codec_factory

    try:
        return "packet_bytes" in inspect.signature(codec_factory(name)).parameters
    except (TypeError, ValueError):
        return False


def packet_setting(cfg: Any, has_links: bool) -> int | str | None:
    """A codec entry's ``packet_bytes``: the given value, else ``"auto"`` for a packet
    codec on a run with links, else None (one packet)."""
    if "packet_bytes" in cfg.params:
        return cfg.params["packet_bytes"]
    return "auto" if has_links and takes_packet_bytes(cfg.name) else None


def auto_packet_bytes(cfg: Any, marks_priority: bool = True) -> int:
    """Block payload bytes of a link config: the smaller of the main and the priority
    code's for a codec that marks priority bytes (class attribute ``marks_priority``,
    default True), else the main code's (all its bytes travel on it)."""
    sizes = [cfg.block_payload_bytes]
    if cfg.priority is not None and marks_priority:
        sizes.append(cfg.priority.block_payload_bytes)
    return int(min(sizes))


def _with_device(factory: Any, params: dict[str, Any], device: str) -> dict[str, Any]:
    """``params`` plus the experiment's ``device`` when ``factory`` takes one (networks:
    learned codecs, segmenters) and the YAML's params do not set it themselves."""
    import inspect

    try:
        takes = "device" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        takes = False
    return {"device": device, **params} if takes else dict(params)


def _dataset_kwargs(d: dict[str, Any], name: str) -> dict[str, Any]:
    kwargs = {k: v for k, v in d.items()
              if k not in ("name", "reference") and v is not None}
    if name == "imagefolder":
        kwargs.pop("split", None)
        kwargs.pop("seed", None)
        kwargs.pop("count", None)
    if name == "cityscapes":
        kwargs.pop("seed", None)
    if "size" in kwargs:
        kwargs["size"] = tuple(kwargs["size"])
    if kwargs.get("projection") == "pinhole":
        kwargs.pop("projection")  # the default; only StreetScenes has other projections
    return kwargs


def _load_sample(dataset: Any, i: int) -> Sample:
    return dataset[i]


def _load_image(dataset: Any, i: int) -> np.ndarray:
    return dataset[i].image


def _fallback_image(exp: Experiment, samples: list[Sample], workers: int = 1) -> np.ndarray:
    """The ``mean`` policy's pixelwise mean of N training images (grey otherwise).

    Never the evaluated images themselves (a failed transmission would then show an
    image made partly of its own original, an optimistic score): the dataset's
    training split, or, for a dataset without one (an image folder), the built-in
    street scenes' training split at the same size.
    """
    from semcomm.data import build_dataset

    shape = samples[0].image.shape
    if exp.failure.policy != "mean":
        return np.full(shape, 128, np.uint8)
    d, n = exp.dataset, exp.failure.mean_images
    try:
        if d.name == "imagefolder":
            raise ValueError("an image folder has no training split")
        kwargs = _dataset_kwargs({**d.model_dump(), "split": "train", "count": n}, d.name)
        train = build_dataset(d.name, **kwargs)
    except (ValueError, FileNotFoundError) as err:
        if d.name != "imagefolder":
            warnings.warn(f"mean image: no training split of {d.name!r} ({err}); using the "
                          "built-in street scenes' training split", stacklevel=2)
        train = build_dataset("streetscenes", split="train", count=n,
                              size=(int(shape[0]), int(shape[1])), seed=d.seed)
    from semcomm.runner.pool import fork_map

    images = list(fork_map(_load_image, range(min(n, len(train))), train, workers))
    acc = np.zeros(shape, np.float64)
    for img in images:
        if img.shape != shape:
            img = np.asarray(Image.fromarray(img).resize((shape[1], shape[0])))
        acc += img
    return np.clip(np.rint(acc / len(images)), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------- phase 1


def _payload_path(run_dir: Path, codec: str, i: int, rate: RatePoint,
                  packet_bytes: int | None = None) -> Path:
    """Cached payload of (codec, image, rate, packet geometry): a payload in packets of
    another size is another payload (a sweep over the link's k must not share them)."""
    tag = (f"bytes{rate.max_bytes}" if rate.max_bytes is not None
           else f"bpp{rate.bpp!r}" if rate.bpp is not None else f"knob{rate.knob!r}")
    if packet_bytes is not None:
        tag += f"_pkt{packet_bytes}"
    return run_dir / "payloads" / safe_name(codec) / f"{i:06d}_{tag}.json"


def safe_name(text: str) -> str:
    """``text`` with every character but letters, digits and ``-_.=`` replaced by ``_``."""
    return "".join(ch if ch.isalnum() or ch in "-_.=" else "_" for ch in text)


class Encoder:
    """Encodes each (image, codec, rate) once; payloads persist under ``payloads/``."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.memo: dict[tuple[str, int | None, int, RatePoint], Encoded] = {}

    def get(self, codec: str, i: int, rate: RatePoint, link: str | None = None) -> Encoded:
        """The payload of image ``i`` at ``rate`` in ``link``'s packet geometry."""
        pb = self.ctx.packet_bytes(codec, link)
        key = (codec, pb, i, rate)
        if key in self.memo:
            return self.memo[key]
        sample = self.ctx.samples[i]
        path = _payload_path(self.ctx.run_dir, codec, i, rate, pb)
        h, w = sample.image.shape[:2]
        if path.exists():
            meta = json.loads(path.read_text())
            if "symbols" in meta:
                sym = np.frombuffer(base64.b64decode(meta["symbols"]), np.complex64).copy()
                return self.memo.setdefault(key, Encoded(
                    SymbolPayload(sym, h * w, (h, w), meta["knob"]), rate, False))
            payload = Payload(data=base64.b64decode(meta["data"]), num_pixels=h * w,
                              shape=(h, w), knob=meta["knob"],
                              priority_bytes=int(meta.get("priority_bytes", 0)))
            enc = Encoded(payload, rate, rate.unreachable(len(payload.data), h * w))
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # unreachable targets are flagged per line
                enc = Transmitter(self.ctx.codec_for(codec, link)).encode(
                    sample.image, self.ctx.tx_labels[i], rate)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            p = enc.payload
            tmp.write_text(json.dumps(
                {"knob": p.knob, "symbols": base64.b64encode(p.symbols.tobytes()).decode()}
                if isinstance(p, SymbolPayload) else
                {"knob": p.knob, "priority_bytes": p.priority_bytes,
                 "data": base64.b64encode(p.data).decode()}))
            tmp.replace(path)
        self.memo[key] = enc
        return enc


def _base_line(kind: str, codec: str, rate: str, link: str, snr_db: float | None,
               i: int, r: int, sample: Sample) -> dict[str, Any]:
    return {"kind": kind, "codec": codec, "rate": rate, "link": link, "snr_db": snr_db,
            "image": i, "realization": r, "name": sample.name}


def _payload_fields(ctx: Context, codec: str, enc: Encoded, link: str | None = None,
                    spec: RateSpec | None = None) -> dict[str, Any]:
    """Rate fields of a line, plus the codec's own (``payload_fields``: e.g. SQ-GAN's
    analytic bpp), when the codec defines them; for a bandwidth ratio on ``link``, the
    budget and whether the codec filled it (:func:`budget_fields`)."""
    p = enc.payload
    if isinstance(p, SymbolPayload):  # analog: no bits; cu/px is the knob
        out: dict[str, Any] = {"target_bpp": None, "knob": p.knob, "bytes": 0, "bpp": None,
                               "priority_bytes": 0, "unreachable": False, "payload": "symbols",
                               "pixels": p.num_pixels}
    else:
        out = {"target_bpp": enc.rate.target_bpp(p.num_pixels), "knob": p.knob,
               "bytes": len(p.data), "bpp": p.bpp, "priority_bytes": p.priority_bytes,
               "unreachable": enc.unreachable, "pixels": p.num_pixels}
    if spec is not None and spec.kind == "bandwidth_ratio" and link is not None:
        out.update(budget_fields(ctx, codec, enc, link, spec.value))
    if link is not None and (codec, link) in ctx.own_link_configs:
        out["codec_link"] = ctx.own_link_configs[(codec, link)].describe()
    extra = getattr(ctx.codecs[codec], "payload_fields", None)
    if extra is not None:
        out.update({f"x_{k}": v for k, v in extra(p).items()})
    return out


def budget_fields(ctx: Context, codec: str, enc: Encoded, link: str,
                  ratio: float) -> dict[str, Any]:
    """How a payload spends the channel uses of ``ratio`` (cu/px) on ``link``.

    ``budget_cu`` = int(ratio * H * W) channel uses; ``budget_bytes`` the payload bytes
    whose code blocks fit them; ``achieved_cu`` what the payload occupies (its code
    blocks, or its symbols for an analog codec). ``budget_unmet`` is True when the
    codec leaves a whole code block (one packet with ``packet_bytes: auto``) of the
    budget unused, or, analog, sends fewer symbols than the budget;
    ``budget_exceeded`` when even the codec's cheapest setting needs more channel uses
    than the budget (its line is also ``unreachable``).
    """
    p = enc.payload
    h, w = p.shape
    budget_cu = int(ratio * h * w)
    if isinstance(p, SymbolPayload):
        achieved, unmet, budget = p.channel_uses, p.channel_uses < budget_cu, None
    else:
        budget = enc.rate.max_bytes
        achieved = ctx.channel_uses(codec, link, p)
        # Unmet: one more main code block would still have fitted the budget.
        unmet = achieved + ctx.link_for(codec, link).symbols_per_block <= budget_cu
    return {"budget_cu": budget_cu, "budget_bytes": budget, "achieved_cu": achieved,
            "achieved_cu_per_pixel": achieved / (h * w), "budget_unmet": bool(unmet),
            "budget_exceeded": achieved > budget_cu}


def _quality_fields(ctx: Context, i: int, x_hat: np.ndarray, s_hat: np.ndarray,
                    labels_hat: np.ndarray | None) -> dict[str, Any]:
    sample = ctx.samples[i]
    out = ctx.evaluator.image_metrics(i, sample.image, x_hat)
    reference = ctx.reference[i]
    out.update(semantic_counts(s_hat, reference))
    if labels_hat is not None:
        out.update(semantic_counts(labels_hat, reference, prefix="map_"))
    return out


def error_free_specs(ctx: Context) -> list[tuple[str, RateSpec, str | None]]:
    """(codec, rate spec, link for bandwidth ratios) whose error-free decode is measured."""
    out: list[tuple[str, RateSpec, str | None]] = []
    for c in ctx.exp.codecs:
        for kind, value in c.rate_specs():
            links = list(ctx.links) if kind == "bandwidth_ratio" else [None]
            out.extend((c.display, RateSpec(kind, value), link) for link in links)
    return out


def phase_one(ctx: Context, enc: Encoder, store: PointStore, bar: tqdm,
              workers: int = 1) -> None:
    """Original and error-free lines; encodes (and caches) every payload.

    With ``workers > 1`` the images are shared out over forked workers (when
    :func:`semcomm.runner.pool.fork_ok`); each sends back its lines and the cache
    entries it made (decoded images, segmentations, metrics, payloads), so that the
    phase-2 workers forked next start with every error-free decode cached. The lines
    are appended and the warnings given here, in image order, as in a serial run."""
    from semcomm.runner.pool import fork_map

    for lines, delta in fork_map(_image_task, ctx.images, (ctx, enc, store), workers,
                                 device=ctx.device):
        take_image(ctx, enc, store, lines, delta)
        bar.update(1)


def take_image(ctx: Context, enc: Encoder, store: PointStore,
               lines: list[tuple[dict[str, Any], tuple[Any, ...]]],
               delta: dict[str, Any] | None) -> None:
    """One image's phase-1 result (from :func:`image_lines`, here or on a worker) into
    this process: its cache entries, warnings and lines (the original's first)."""
    if delta is not None:
        merge_caches(ctx, enc, delta)
    for line, (codec, spec, link) in lines:
        if codec is not None and spec is not None:
            warn_unmet(ctx, codec, spec, link, line)
            warn_unreachable(ctx, codec, spec, line)
    original = [line for line, (codec, _, _) in lines if codec is None]
    if original:
        store.append(original)
    store.append([line for line, (codec, _, _) in lines if codec is not None])


class _Keys(Protocol):
    """Line keys already measured (a :class:`PointStore`, or a frozenset of its keys)."""

    def __contains__(self, key: tuple[Any, ...], /) -> bool: ...


def image_keys(store: PointStore) -> dict[int, frozenset[tuple[Any, ...]]]:
    """Per image, the phase-1 line keys already in ``store`` (what a worker without the
    store needs to skip them on a resume; see :func:`image_lines`)."""
    out: dict[int, set[tuple[Any, ...]]] = {}
    keys = store.keys()
    for k in keys:
        if k[0] in ("original", "error-free"):
            out.setdefault(k[5], set()).add(k)
    return {i: frozenset(v) for i, v in out.items()}


def _worker_image(i: int, present: frozenset[tuple[Any, ...]]
                  ) -> tuple[list[tuple[dict[str, Any], tuple[Any, ...]]], dict[str, Any]]:
    """Phase 1 of image ``i`` on a worker built by :func:`_worker_init` (a Ray actor):
    its lines and the cache entries made, for the driver and the other workers."""
    assert _WORKER is not None
    ctx, enc = _WORKER
    before = cache_keys(ctx, enc)
    lines = image_lines(ctx, enc, present, i)
    return lines, cache_delta(ctx, enc, before)


def _worker_merge(deltas: list[dict[str, Any]]) -> None:
    """Add other workers' phase-1 cache entries to this worker's context."""
    assert _WORKER is not None
    ctx, enc = _WORKER
    for delta in deltas:
        merge_caches(ctx, enc, delta)


def _image_task(state: tuple[Context, Encoder, PointStore], i: int
                ) -> tuple[list[tuple[dict[str, Any], tuple[Any, ...]]], dict[str, Any] | None]:
    """Phase 1 of image ``i`` (a worker task): its lines, and the cache entries made
    (None in the parent itself, whose caches are filled in place)."""
    from semcomm.runner import pool

    ctx, enc, store = state
    before = cache_keys(ctx, enc) if pool.in_worker() else None
    lines = image_lines(ctx, enc, store, i)
    return lines, None if before is None else cache_delta(ctx, enc, before)


def image_lines(ctx: Context, enc: Encoder, store: _Keys, i: int
                ) -> list[tuple[dict[str, Any], tuple[Any, ...]]]:
    """The new original and error-free lines of image ``i`` (those whose keys are not in
    ``store``), each with (codec, rate spec, link) of its error-free decode ((None, None,
    None) for the original)."""
    sample = ctx.samples[i]
    out: list[tuple[dict[str, Any], tuple[Any, ...]]] = []
    key = ("original", "original", "-", "none", None, i, 0)
    if key not in store:
        s_hat = ctx.evaluator.segment([sample.image], [i], [sample.labels])[0]
        line = _base_line("original", "original", "-", "none", None, i, 0, sample)
        line.update(_quality_fields(ctx, i, sample.image, s_hat, None))
        out.append((line, (None, None, None)))
    _save_gallery(ctx, "original", "-", None, None, i, sample.image)
    ctx.evaluator.save_features(sample.image, ctx.run_dir / "features" / f"original_{i}.npy")
    for codec, spec, link in error_free_specs(ctx):
        e = ctx.encode(enc, codec, i, spec, link)
        rate = e.rate
        key = ("error-free", codec, rate.label, "none", None, i, 0)
        if key in store:
            continue
        rec = _error_free(ctx, codec, e, link)
        s_hat = ctx.evaluator.segment([rec.image], [i], [sample.labels])[0]
        line = _base_line("error-free", codec, rate.label, "none", None, i, 0, sample)
        line.update(_payload_fields(ctx, codec, e, link, spec))
        line.update({"status": rec.status, "error": rec.error})
        line.update(_quality_fields(ctx, i, rec.image, s_hat, rec.labels))
        out.append((line, (codec, spec, link)))
        # A bandwidth ratio's error-free image depends on the link (its byte budget).
        _save_gallery(ctx, codec, spec.label if link else rate.label, link, None, i,
                      rec.image)
        _save_line_features(ctx, line, rec.image)
    return out


def cache_keys(ctx: Context, enc: Encoder) -> dict[str, set[Any]]:
    """The keys of every content cache of a context (see :func:`cache_delta`)."""
    ev = ctx.evaluator
    return {"decode": ctx.decode_cache.keys(), "seg": set(ev.seg_cache),
            "metric": set(ev.metric_cache), "feature": set(ev.feature_cache),
            "memo": set(enc.memo)}


def cache_delta(ctx: Context, enc: Encoder, before: dict[str, set[Any]]) -> dict[str, Any]:
    """The cache entries made since ``before`` (:func:`cache_keys`): what a worker sends
    back so that the parent, and the workers it forks next, need not redo them."""
    ev = ctx.evaluator
    new: dict[str, list[tuple[Any, Any]]] = {
        name: [(k, v) for k, v in cache.items() if k not in before[name]]
        for name, cache in (("seg", ev.seg_cache), ("metric", ev.metric_cache),
                            ("feature", ev.feature_cache), ("memo", enc.memo))}
    new["decode"] = ctx.decode_cache.items(before["decode"])
    return new


def merge_caches(ctx: Context, enc: Encoder, delta: dict[str, Any]) -> None:
    """Add a worker's :func:`cache_delta` to this process's caches."""
    ev = ctx.evaluator
    for name, cache in (("seg", ev.seg_cache), ("metric", ev.metric_cache),
                        ("feature", ev.feature_cache)):
        for k, v in delta[name]:
            cache.put(k, v)
    enc.memo.update(delta["memo"])
    for k, rec in delta["decode"]:
        ctx.decode_cache.add(k, rec)


def warn_unmet(ctx: Context, codec: str, spec: RateSpec, link: str | None,
               line: dict[str, Any]) -> None:
    """Warn (once per codec, rate and link) when a codec leaves its budget unspent, or
    (not already warned as an unreachable target) cannot get under it."""
    if line.get("budget_exceeded") and not line.get("unreachable"):
        key = (codec, f"exceeded {spec.label}", link)
        if key not in ctx.unmet_warned:
            ctx.unmet_warned.add(key)
            warnings.warn(f"codec {codec!r} at {spec.label} on link {link!r}: budget_exceeded,"
                          f" it needs {line['achieved_cu']} of the {line['budget_cu']} channel "
                          f"uses for image {line['image']} even at its smallest budget",
                          stacklevel=2)
        return
    if not line.get("budget_unmet"):
        return
    key = (codec, spec.label, link)
    if key in ctx.unmet_warned:
        return
    ctx.unmet_warned.add(key)
    warnings.warn(f"codec {codec!r} at {spec.label} on link {link!r}: budget_unmet, it "
                  f"sends {line['achieved_cu_per_pixel']:.4g} of the {spec.value:g} channel "
                  f"uses per pixel ({line['bytes']} of {line['budget_bytes']} bytes) for image "
                  f"{line['image']}; its rate control cannot spend more", stacklevel=2)


def warn_unreachable(ctx: Context, codec: str, spec: RateSpec, line: dict[str, Any]) -> None:
    """Warn (once per codec and rate) when a bpp target is below the codec's cheapest
    setting (the line is flagged ``unreachable`` and sends more than asked)."""
    key = (codec, f"unreachable {spec.label}", None)
    if not line.get("unreachable") or key in ctx.unmet_warned:
        return
    ctx.unmet_warned.add(key)
    warnings.warn(f"codec {codec!r}: target {spec.label} unreachable for image "
                  f"{line['image']} ({line['bytes']} bytes = {line['bpp']:.4g} bpp at its "
                  "cheapest setting); its lines are flagged 'unreachable'", stacklevel=2)


def _error_free(ctx: Context, codec: str, e: Encoded, link: str | None = None) -> Any:
    """The decode of what an error-free link (a noiseless analog channel) delivers."""
    p = e.payload
    receiver = ctx.receiver(codec, p.shape, link)
    if isinstance(p, SymbolPayload):
        return receiver.receive_symbols(p.symbols, np.zeros(p.symbols.size, np.float32),
                                        None, p.shape)
    return receiver.receive(p.data, p.shape)


def _save_gallery(ctx: Context, codec: str, rate: str, link: str | None, snr: float | None,
                  i: int, image: np.ndarray) -> None:
    if i >= ctx.exp.gallery_images:
        return
    path = gallery_path(ctx.run_dir, codec, rate, link, snr, i)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # A temporary name unique to this process and call, then an atomic rename.
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp.png")
        Image.fromarray(image).save(tmp)
        tmp.replace(path)


def gallery_path(run_dir: Path, codec: str, rate: str, link: str | None, snr: float | None,
                 i: int) -> Path:
    """``gallery/<image>_<codec>_<rate>_<link>_<snr>.png``; the link is ``none`` for an
    error-free image of a bpp or knob rate (the same on every link)."""
    snr_tag = "errorfree" if snr is None else f"snr{snr:g}"
    per_link = snr is not None or rate.startswith("cu/px")
    link_tag = safe_name(link) if per_link and link is not None else "none"
    return (run_dir / "gallery"
            / f"{i:03d}_{safe_name(codec)}_{safe_name(rate)}_{link_tag}_{snr_tag}.png")


def _save_line_features(ctx: Context, line: dict[str, Any], image: np.ndarray) -> None:
    if ctx.evaluator.features is not None:
        ctx.evaluator.save_features(image, feature_path(ctx.run_dir, line))


def feature_path(run_dir: Path, line: dict[str, Any]) -> Path:
    tag = zlib.crc32(json.dumps([line[k] for k in ("kind", "codec", "rate", "link", "snr_db",
                                                    "image", "realization")]).encode())
    return run_dir / "features" / f"{tag:08x}.npy"


# ----------------------------------------------------------------------- phase 2


def plan_points(ctx: Context) -> list[Point]:
    """Every (codec, rate, link, SNR) in a fixed order."""
    assert ctx.exp.snr is not None or not ctx.links
    snrs = ctx.exp.snr.values() if ctx.exp.snr is not None else []
    return [Point(c.display, RateSpec(kind, value), link, snr,
                  ctx.esno_db(link, snr, c.display))
            for c in ctx.exp.codecs for kind, value in c.rate_specs()
            for link in ctx.links for snr in snrs]


def _transmit_lines(ctx: Context, enc: Encoder, pt: Point,
                    todo: list[tuple[int, int]]) -> dict[tuple[int, int], dict[str, Any]]:
    """Measure the (image, realisation) pairs of ``todo`` at point ``pt``."""
    encoded, seeds = [], []
    for i, r in todo:
        encoded.append(ctx.encode(enc, pt.codec, i, pt.rate, pt.link))
        seeds.append(transmission_seed(ctx.exp.seed, i, pt.link, pt.snr_db, r))
    if ctx.sends_symbols(pt.codec):  # symbols over the link's analog twin
        analog = send_symbols(ctx.analog[pt.link], encoded, pt.esno_db, seeds)
        recs = [ctx.receiver(pt.codec, e.payload.shape, pt.link).receive_symbols(
            res.symbols, res.noise_var, pt.esno_db, e.payload.shape, res.equaliser)
            for e, res in zip(encoded, analog, strict=True)]
        fields = [{"channel_uses": res.channel_uses, "bits": 0, "bit_errors": 0, "blocks": 0,
                   "block_errors": 0, "undetected": 0, "lost_bytes": 0} for res in analog]
        return _point_lines(ctx, pt, todo, encoded, seeds, recs, fields)
    results = send(ctx.link_for(pt.codec, pt.link), encoded, pt.esno_db, seeds)
    recs = _receive(ctx, pt, encoded, results)
    fields = [{"channel_uses": res.channel_uses_first, "effective_channel_uses": res.channel_uses,
               "transmissions": res.rounds, "bits": res.num_bits, "bit_errors": res.bit_errors,
               "blocks": res.num_blocks, "block_errors": res.block_errors,
               "undetected": res.undetected_block_errors,
               "lost_bytes": int(sum(b - a for a, b in res.lost_ranges))} for res in results]
    return _point_lines(ctx, pt, todo, encoded, seeds, recs, fields)


def _receive(ctx: Context, pt: Point, encoded: list[Encoded], results: list[Any]
             ) -> list[Any]:
    """The receiver's x_hat of each transmission: one decode per image, or, with
    ``ctx.batch_decodes`` (a CUDA device), the chunk's decodes of each image size as
    one batch (:meth:`Receiver.receive_batch`)."""
    items = [(res.data.tobytes(), e.payload.shape, res.lost_ranges)
             for e, res in zip(encoded, results, strict=True)]
    if not ctx.batch_decodes:
        return [ctx.receiver(pt.codec, item[1], pt.link).receive(*item) for item in items]
    out: list[Any] = [None] * len(items)
    for shape in dict.fromkeys(i[1] for i in items):
        idx = [j for j, i in enumerate(items) if i[1] == shape]
        recs = ctx.receiver(pt.codec, shape, pt.link).receive_batch([items[j] for j in idx])
        for j, rec in zip(idx, recs, strict=True):
            out[j] = rec
    return out


def _point_lines(ctx: Context, pt: Point, todo: list[tuple[int, int]], encoded: list[Encoded],
                 seeds: list[int], recs: list[Any], link_fields: list[dict[str, Any]]
                 ) -> dict[tuple[int, int], dict[str, Any]]:
    """The result lines of one point's transmissions (digital or analog): segment the
    reconstructions, then one line per (image, realisation) with its link fields."""
    s_hats = ctx.evaluator.segment([r.image for r in recs], [i for i, _ in todo],
                                   [ctx.samples[i].labels for i, _ in todo])
    out = {}
    for (i, r), e, fields, rec, s_hat, seed in zip(todo, encoded, link_fields, recs, s_hats,
                                                    seeds, strict=True):
        line = _base_line("link", pt.codec, pt.rate.label, pt.link, pt.snr_db, i, r,
                          ctx.samples[i])
        line.update(_payload_fields(ctx, pt.codec, e, pt.link, pt.rate))
        line.update({"esno_db": pt.esno_db, "seed": seed, **fields,
                     "status": rec.status, "error": rec.error})
        line.update(_quality_fields(ctx, i, rec.image, s_hat, rec.labels))
        out[(i, r)] = line
        if r == 0:
            _save_gallery(ctx, pt.codec, pt.rate.label, pt.link, pt.snr_db, i, rec.image)
        _save_line_features(ctx, line, rec.image)
    return out


def run_point(ctx: Context, enc: Encoder, pt: Point,
              done: dict[tuple[int, int], dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Yield the new lines of a point chunk by chunk, honouring the stopping rule.

    ``done`` holds this point's lines already in points.jsonl, keyed (image, r).
    Stopping is evaluated after each image in image order, so the result is the same
    whatever the chunking, the workers, or where an earlier run was killed.
    """
    exp = ctx.exp
    stop, reps = exp.stopping, exp.realizations
    seen: list[dict[str, Any]] = []  # this point's lines so far (one point in memory)
    for start in range(0, len(ctx.images), CHUNK_IMAGES):
        images = ctx.images[start:start + CHUNK_IMAGES]
        todo = [(i, r) for i in images for r in range(reps) if (i, r) not in done]
        new = _transmit_lines(ctx, enc, pt, todo) if todo else {}
        emit = []
        for i in images:
            for r in range(reps):
                line = done.get((i, r)) or new[(i, r)]
                seen.append(line)
                if (i, r) in new:
                    emit.append(new[(i, r)])
            if stop_reason(seen, stop, exp.metrics.bootstrap, exp.metrics.confidence,
                           exp.seed) is not None:
                yield emit
                return
        yield emit


def _point_done(pt: Point, store: PointStore, full: dict[tuple[Any, ...], dict[str, Any]]
                ) -> dict[tuple[int, int], dict[str, Any]]:
    """This point's measured (image, realisation) pairs: their block errors (all that
    the block-error rule needs), or their whole lines from ``full`` (interval rules)."""
    return {(key[5], key[6]): full.get(key) or {"block_errors": errors, "image": key[5],
                                                 "realization": key[6]}
            for key, errors in store.block_errors.items()
            if key[0] == "link" and key[1] == pt.codec and key[2] == pt.rate.label
            and key[3] == pt.link and key[4] == pt.snr_db}


def _done_lines(ctx: Context, store: PointStore) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The link lines already in points.jsonl, when an interval rule needs them (a
    resume with ``stopping.ci_half_width``; otherwise nothing is read)."""
    if not ctx.exp.stopping.ci_half_width or not len(store):
        return {}
    return {line_key(line): line for _, line in iter_lines(store.path)
            if line["kind"] == "link"}


def shard_images(count: int, shard: tuple[int, int] | None) -> list[int]:
    """Images of shard ``(k, n)``: the k-th of n contiguous blocks of ``range(count)``
    (sizes differ by at most one); every image of ``range(count)`` without a shard."""
    if shard is None:
        return list(range(count))
    k, n = shard
    return list(range(k * count // n, (k + 1) * count // n))


# State of a spawned worker (the fallback when forking is not safe, e.g. on CUDA).
_WORKER: tuple[Context, Encoder] | None = None


def _worker_init(config: dict[str, Any], run_dir: str, fallback: np.ndarray,
                 images: list[int]) -> None:
    """A spawned worker's context, once per process (pool initializer), not per point."""
    worker_attach(worker_context(config), run_dir, fallback, images)


def worker_context(config: dict[str, Any]) -> Context:
    """A worker's context (models, dataset, links) before it knows its run: a Ray actor
    builds it while the driver builds its own; :func:`worker_attach` completes it."""
    from semcomm.runner.pool import worker_start

    worker_start()
    # The fallback image (up to 32 training images decoded and averaged) is the
    # parent's, shipped by worker_attach rather than rebuilt; until then a placeholder
    # (read only when a receiver is built, in a point).
    return Context(Experiment.model_validate(config), Path("."),
                   fallback=np.zeros((1, 1, 3), np.uint8))


def worker_attach(ctx: Context, run_dir: str, fallback: np.ndarray, images: list[int],
                  tx_labels: list[np.ndarray | None] | None = None) -> None:
    """Point a worker's context at its run (payloads come from ``run_dir/payloads``,
    written by phase 1) and make it this process's :data:`_WORKER`; ``tx_labels``: the
    parent's transmitter maps (``Context.tx_labels``), for a worker that encodes."""
    global _WORKER
    ctx.run_dir, ctx.fallback, ctx.images = Path(run_dir), fallback, images
    if tx_labels is not None:
        ctx._tx_labels = tx_labels
    _WORKER = (ctx, Encoder(ctx))


def _worker_point(args: tuple[Point, dict[tuple[int, int], dict[str, Any]]]) -> list[dict]:
    assert _WORKER is not None
    return _point_task(_WORKER, args)


def _point_task(state: tuple[Context, Encoder],
                job: tuple[Point, dict[tuple[int, int], dict[str, Any]]]) -> list[dict]:
    """All new lines of one point (a worker task; the link decodes on this worker's one
    thread: N workers on N cores)."""
    ctx, enc = state
    ctx.set_link_threads(1)
    pt, done = job
    return [line for chunk in run_point(ctx, enc, pt, done) for line in chunk]


def point_jobs(ctx: Context, store: PointStore, longest_first: bool
               ) -> list[tuple[Point, dict[tuple[int, int], dict[str, Any]]]]:
    """Every point of the plan with what ``store`` already holds of it (a task of
    :func:`_point_task`), in plan order; ``longest_first`` (for workers): the points of
    codecs that conceal losses first (their concealed decodes are never cached), so that
    no long point is left for the tail, each group in plan order."""
    full = _done_lines(ctx, store)
    jobs = [(pt, _point_done(pt, store, full)) for pt in plan_points(ctx)]
    if longest_first:
        jobs.sort(key=lambda job: not conceals_losses(ctx.codecs[job[0].codec]))
    return jobs


def phase_two(ctx: Context, enc: Encoder, store: PointStore, bar: tqdm, workers: int) -> None:
    """Run every point (serially, or one point per task on worker processes: forked
    from this one when :func:`semcomm.runner.pool.fork_ok`, else spawned)."""
    from semcomm.runner.pool import fork_map, fork_ok

    jobs = point_jobs(ctx, store, longest_first=workers > 1)
    if workers <= 1 or len(jobs) <= 1:
        for pt, done in jobs:
            for lines in run_point(ctx, enc, pt, done):
                store.append(lines)
            bar.update(1)
        return
    if fork_ok(ctx.device)[0]:
        for lines in fork_map(_point_task, jobs, (ctx, enc), workers, ordered=False,
                              device=ctx.device):
            store.append(lines)
            bar.update(1)
        return
    mp = multiprocessing.get_context("spawn")
    init = (ctx.exp.model_dump(mode="json"), str(ctx.run_dir), ctx.fallback, ctx.images)
    with mp.Pool(min(workers, len(jobs)), initializer=_worker_init, initargs=init) as pool:
        for lines in pool.imap_unordered(_worker_point, jobs):
            store.append(lines)
            bar.update(1)
