"""Experiment YAML -> validated :class:`Experiment`, before any compute.

Loading: ``extends: base.yaml`` (relative to the file, chains allowed) is deep-merged
(mappings merge key by key, anything else replaces), then the result is validated with
pydantic models that forbid unknown keys. The first error becomes ONE line naming the
file, the key path, the bad value and the allowed values or the nearest valid key::

    experiments/x.yaml: links[0].modulation: modulation '8psk' not supported; choose one
    of ['qpsk', '16qam', '64qam', '256qam'] (got '8psk')
"""

from __future__ import annotations

import copy
import difflib
import itertools
import math
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from semcomm.codecs.base import RatePoint
from semcomm.runner.adaptation import AdaptationConfig


class ConfigError(ValueError):
    """An invalid experiment file; the message is one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetConfig(_Strict):
    """Which images: ``build_dataset(name, split=, count=, size=, seed=, root=)``."""

    name: Literal["streetscenes", "cityscapes", "imagefolder"] = "streetscenes"
    split: str = "val"
    count: PositiveInt = 16
    size: tuple[PositiveInt, PositiveInt] | None = (128, 256)
    seed: NonNegativeInt = 0
    root: str | None = None
    #: "equirectangular": 360-degree panoramas (streetscenes only; size H x 2H); adds
    #: VPSNR, VSSIM and WS-PSNR to the image metrics.
    projection: Literal["pinhole", "equirectangular"] = "pinhole"
    #: imagefolder only: how images reach ``size`` (stretch | crop | pad | none).
    resize: Literal["stretch", "crop", "pad", "none"] | None = None
    #: What mIoU is scored against: "labels" (ground truth) or "original-segmentation"
    #: (the evaluating segmenter's map of the original image, a pseudo ground truth).
    #: Default: labels, or original-segmentation for an (unlabelled) imagefolder.
    reference: Literal["labels", "original-segmentation"] | None = None

    @property
    def resolved_reference(self) -> str:
        if self.reference is not None:
            return self.reference
        return "original-segmentation" if self.name == "imagefolder" else "labels"

    @model_validator(mode="after")
    def _projection(self) -> DatasetConfig:
        if self.resize is not None and self.name != "imagefolder":
            raise ValueError(f"resize {self.resize!r} is only for dataset 'imagefolder' "
                             f"({self.name!r} images are generated or cut at size)")
        if self.resize == "none" and self.size is not None:
            raise ValueError(f"resize 'none' keeps each image's own size: give size: null, "
                             f"not {list(self.size)}")
        if self.name == "imagefolder" and self.reference == "labels":
            raise ValueError("reference 'labels' needs labelled images; an imagefolder has "
                             "none: give reference: original-segmentation")
        if self.name == "imagefolder" and self.root is None:
            raise ValueError("dataset 'imagefolder' needs root: the folder of your images")
        if self.projection != "pinhole" and self.name != "streetscenes":
            raise ValueError(f"projection {self.projection!r} is only available for "
                             f"dataset 'streetscenes', not {self.name!r}")
        return self


class SegmenterConfig(_Strict):
    """``build_segmenter(name, **params)``: bundled | judge | ground-truth | torchscript."""

    name: Literal["bundled", "judge", "ground-truth", "torchscript"] = "bundled"
    params: dict[str, Any] = Field(default_factory=dict)


class CodecConfig(_Strict):
    """One codec and its rate points (any mix of the three lists)."""

    name: str
    label: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    bpp: list[PositiveFloat] = Field(default_factory=list)
    knob: list[float] = Field(default_factory=list)

    @field_validator("knob", "bandwidth_ratio")
    @classmethod
    def _finite(cls, values: list[float]) -> list[float]:
        for v in values:
            if not math.isfinite(v):
                raise ValueError(f"{v} is not a finite number")
        return values
    bandwidth_ratio: list[PositiveFloat] = Field(default_factory=list)
    #: Link settings this codec overrides on every link of the run (e.g. its own
    #: ``{modulation: qpsk, code_rate: 0.333}`` or ``mcs_index``): its points keep the
    #: run's link labels and bandwidth ratios (the same channel-use budget), sent with
    #: its own modulation and code. Scalars only.
    link: dict[str, Any] | None = None

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        from semcomm.codecs.registry import codec_factory

        codec_factory(name)  # ValueError naming the nearest registered codec
        return name

    @field_validator("bpp")
    @classmethod
    def _bpp_range(cls, values: list[float]) -> list[float]:
        for v in values:
            RatePoint(bpp=v)  # ValueError outside (0, 24]
        return values

    @model_validator(mode="after")
    def _param_names(self) -> CodecConfig:
        """Every ``params`` key must be a constructor argument of the codec."""
        import inspect

        from semcomm.codecs.registry import codec_factory

        try:
            sig = inspect.signature(codec_factory(self.name))
        except (TypeError, ValueError):
            return self
        if any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
            return self
        valid = [n for n, p in sig.parameters.items()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        for key in self.params:
            if key == "priority_classes":  # semantic UEP by class: names checked now
                from semcomm.codecs.class_priority import class_ids, unsupported_message

                if key not in valid:
                    raise ValueError(unsupported_message(self.name))
                class_ids(self.params[key], f"params.priority_classes of {self.name!r}")
            if key not in valid:
                raise ValueError(f"codec {self.name!r} has no parameter {key!r}; "
                                 f"{did_you_mean(key, valid)}"
                                 f"valid: {', '.join(valid) or 'none'}")
        return self

    @model_validator(mode="after")
    def _has_rates(self) -> CodecConfig:
        if not (self.bpp or self.knob or self.bandwidth_ratio):
            raise ValueError(f"codec {self.name!r} needs at least one rate: bpp: [..], "
                             "knob: [..] or bandwidth_ratio: [..]")
        return self

    @property
    def display(self) -> str:
        return self.label or self.name

    def rate_specs(self) -> list[tuple[str, float]]:
        """[(kind, value)] with kind in bpp | knob | bandwidth_ratio, in YAML order."""
        return ([("bpp", v) for v in self.bpp] + [("knob", v) for v in self.knob]
                + [("bandwidth_ratio", v) for v in self.bandwidth_ratio])


class RangeConfig(_Strict):
    """start, start + step, ... up to and including stop (dB)."""

    start: float
    stop: float
    step: PositiveFloat

    def values(self) -> list[float]:
        if not all(math.isfinite(v) for v in (self.start, self.stop, self.step)):
            raise ValueError(f"SNR range {self.start}..{self.stop} step {self.step} must be "
                             "finite")
        if self.stop < self.start:
            raise ValueError(f"stop {self.stop} < start {self.start}")
        count = int(math.floor((self.stop - self.start) / self.step + 1e-9)) + 1
        return [round(self.start + i * self.step, 10) for i in range(count)]


class SnrConfig(_Strict):
    """Exactly one of ``esno_db`` (Es/N0 per complex symbol) and ``ebno_db`` (Eb/N0 per
    information bit, converted per link with ``channels.esno_db_from_ebno_db``; on a link
    with a ``priority`` config, with its main code: both parts are sent at one Es/N0)."""

    esno_db: list[float] | RangeConfig | None = None
    ebno_db: list[float] | RangeConfig | None = None

    @model_validator(mode="after")
    def _one(self) -> SnrConfig:
        if (self.esno_db is None) == (self.ebno_db is None):
            raise ValueError("give exactly one of esno_db and ebno_db")
        values = self.values()
        bad = [v for v in values if not math.isfinite(v)]
        if bad:
            raise ValueError(f"SNR {bad[0]} is not a finite number of dB")
        if not values or len(set(values)) != len(values):
            raise ValueError(f"SNR list {values} must be non-empty without duplicates")
        return self

    @property
    def kind(self) -> str:
        return "esno" if self.esno_db is not None else "ebno"

    def values(self) -> list[float]:
        v = self.esno_db if self.esno_db is not None else self.ebno_db
        return v.values() if isinstance(v, RangeConfig) else [float(x) for x in (v or [])]


#: Summary metrics whose interval can stop a point (``stopping.ci_half_width``).
CI_METRICS = ("miou", "pixel_acc", "psnr", "ms_ssim", "bler")


class StoppingConfig(_Strict):
    """Per point, checked after each image (all its realisations) in image order, once
    ``min_images`` images are in: stop when ``target_block_errors`` block errors have
    been seen, or every interval named in ``ci_half_width`` (metric -> largest half
    width, at ``metrics.confidence``) is that tight, or ``max_realizations`` draws
    (image x realisation) are used; at the latest after ``max_images`` images."""

    target_block_errors: PositiveInt | None = None
    ci_half_width: dict[Literal["miou", "pixel_acc", "psnr", "ms_ssim", "bler"],
                        PositiveFloat] | None = None
    max_realizations: PositiveInt | None = None
    max_images: PositiveInt | None = None
    min_images: PositiveInt = 1


class FailureConfig(_Strict):
    """Decode-failure policy for CRC-detected losses (see ``semcomm.pipeline``)."""

    policy: Literal["mean", "grey", "conceal"] = "mean"
    mean_images: PositiveInt = 32


def _local_file(path: str) -> str:
    if not Path(path).expanduser().is_file():
        raise ValueError(f"weight file {path!r} not found (LPIPS/FID weights cannot be "
                         "downloaded here: point to local files)")
    return path


class LpipsConfig(_Strict):
    """LPIPS from local files: torchvision-layout ``features`` + official linear heads."""

    net: Literal["vgg", "alex"] = "vgg"
    backbone: str
    heads: str

    _files = field_validator("backbone", "heads")(_local_file)


class FidConfig(_Strict):
    """FID from a local TorchScript feature extractor ([B,3,H,W] in [0,1] -> [B,D])."""

    extractor: str

    _file = field_validator("extractor")(_local_file)


class MetricsConfig(_Strict):
    """mIoU, pixel accuracy, PSNR, BER, BLER, outage, bpp, channel uses are always on."""

    ms_ssim: bool = True
    lpips: LpipsConfig | None = None
    fid: FidConfig | None = None
    bootstrap: PositiveInt = 1000
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0)


class ExecutorConfig(_Strict):
    """Where phase 2 runs: ``serial``; ``process`` (``workers`` spawned processes on
    this host); ``ray`` (one actor per CPU on a local Ray, ``address: null``, or on
    a running cluster, ``auto`` or ``<host>:<port>``; see semcomm.runner.ray_executor).

    ``num_cpus``: Ray actors, one CPU each (default: every CPU of the local instance or
    the cluster); ``num_gpus``: GPUs shared evenly among the actors (default 0)."""

    kind: Literal["serial", "process", "ray"] = "serial"
    workers: PositiveInt = 1
    address: str | None = None
    num_cpus: PositiveInt | None = None
    num_gpus: NonNegativeFloat | None = None

    @field_validator("address")
    @classmethod
    def _address_form(cls, address: str | None) -> str | None:
        if address is None or address == "auto":
            return address
        host, sep, port = address.rpartition(":")
        if not (sep and re.fullmatch(r"[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\]", host)
                and port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError(f"address {address!r} not one of auto, <host>:<port> (port "
                             "1..65535), null (a local Ray)")
        return address

    @model_validator(mode="after")
    def _keys_of_kind(self) -> ExecutorConfig:
        ray_keys = {"address": self.address, "num_cpus": self.num_cpus,
                    "num_gpus": self.num_gpus}
        if self.kind != "ray":
            for key, value in ray_keys.items():
                if value is not None:
                    raise ValueError(f"{key} {value!r} is for kind ray, not {self.kind!r}")
        elif self.workers != 1:
            raise ValueError(f"workers {self.workers} is for kind process; kind ray "
                             "starts num_cpus actors")
        return self


#: Keys of ``plots.labels``: the axis each one names.
PLOT_LABEL_KEYS = ("snr", "bpp", "miou", "psnr", "bler")
PlotFormat = Literal["png", "pdf", "svg"]


def _default_formats() -> list[PlotFormat]:
    return ["png", "pdf"]


class PlotsConfig(_Strict):
    """How the figures look (``semcomm plot RUN_DIR`` re-plots with another one)."""

    title: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    figsize: tuple[PositiveFloat, PositiveFloat] = (5.2, 3.8)
    style: str = "default"
    dpi: PositiveInt = 120
    formats: list[PlotFormat] = Field(default_factory=_default_formats)
    #: Draw each codec's separation-theorem ceiling on the quality-vs-SNR plots (see
    #: ``semcomm.runner.plots.capacity_bound``): ``bicm`` (the link's QAM) or ``gaussian``
    #: capacity; block Rayleigh uses the outage capacity at ``outage``.
    capacity_bound: bool = True
    capacity: Literal["bicm", "gaussian"] = "bicm"
    outage: float = Field(default=0.01, gt=0.0, lt=1.0)
    #: Per-class IoU vs SNR (named vs other classes) when a codec protects classes
    #: (``priority_classes``, semcomm.runner.class_iou).
    class_iou: bool = True

    @field_validator("labels")
    @classmethod
    def _label_keys(cls, labels: dict[str, str]) -> dict[str, str]:
        for key in labels:
            if key not in PLOT_LABEL_KEYS:
                raise ValueError(f"@plots.labels.{key}: unknown label key; "
                                 f"{did_you_mean(key, PLOT_LABEL_KEYS)}"
                                 f"valid keys: {', '.join(PLOT_LABEL_KEYS)}")
        return labels

    @field_validator("style")
    @classmethod
    def _style_known(cls, style: str) -> str:
        if style == "default" or Path(style).expanduser().is_file():
            return style
        import matplotlib.style

        if style not in matplotlib.style.available:
            raise ValueError(f"matplotlib style {style!r} unknown; "
                             f"{did_you_mean(style, matplotlib.style.available)}give 'default', a "
                             f"name of matplotlib.style.available or an .mplstyle file")
        return style

    @field_validator("formats")
    @classmethod
    def _some_format(cls, formats: list[str]) -> list[str]:
        if not formats or "png" not in formats:
            raise ValueError(f"formats {formats} must include 'png' (the report embeds it)")
        return formats


def did_you_mean(value: object, choices: Iterable[str]) -> str:
    """``"did you mean 'x'? "`` for the choice nearest ``value`` ("" when none is near)."""
    near = difflib.get_close_matches(str(value), list(choices), n=1)
    return f"did you mean {near[0]!r}? " if near else ""


def resolve_device(device: str) -> str:
    """``cpu | cuda | cuda:N | auto`` -> ``cpu`` or ``cuda:N``, checked against this host."""
    import torch

    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ValueError(f"device {device!r} not one of cpu, cuda, cuda:N, auto")
    if device == "cpu":
        return device
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(device.partition(":")[2] or 0)
    if count == 0:
        raise ValueError(f"device {device!r}: this host has no CUDA device; give cpu or auto")
    if index >= count:
        raise ValueError(f"device {device!r}: this host has {count} CUDA device(s); give "
                         f"cpu, auto or cuda:0..cuda:{max(count - 1, 0)}")
    return f"cuda:{index}"


class Experiment(_Strict):
    """A whole experiment (see docs/experiments.md for every key)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    segmenter: SegmenterConfig = Field(default_factory=SegmenterConfig)
    #: The network whose map of x_hat is scored (mIoU). Default: the independent judge
    #: (``semcomm/assets/judge.pt``: another architecture and seed, in no codec's loss).
    #: ``{name: bundled}`` scores with the bundled segmenter, the perceptual loss the
    #: learned codecs were trained with (the teacher); None: whatever ``segmenter`` is.
    judge: SegmenterConfig | None = Field(
        default_factory=lambda: SegmenterConfig(name="judge"))
    tx_semantics: Literal["segmenter", "ground-truth"] = "segmenter"
    codecs: list[CodecConfig] = Field(min_length=1)
    links: list[dict[str, Any]] = Field(default_factory=list)
    snr: SnrConfig | None = None
    realizations: PositiveInt = 1
    stopping: StoppingConfig = Field(default_factory=StoppingConfig)
    failure: FailureConfig = Field(default_factory=FailureConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    gallery_images: NonNegativeInt = 1
    seed: NonNegativeInt = 0
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    plots: PlotsConfig = Field(default_factory=PlotsConfig)
    #: Link adaptation: per SNR and link, the best (MCS row, rate) within a channel-use
    #: budget (semcomm.runner.adaptation); None: off.
    adaptation: AdaptationConfig | None = None
    #: Torch device of the segmenter and the learned codecs: cpu | cuda | cuda:N | auto
    #: ("cuda" is saved as "cuda:0"; auto and the host's GPUs are resolved at run start,
    #: by :func:`resolve_device`, so a run folder still loads on a host without CUDA).
    device: str = "cpu"

    @field_validator("device")
    @classmethod
    def _device_known(cls, device: str) -> str:
        if not re.fullmatch(r"cpu|auto|cuda(:\d+)?", device):
            raise ValueError(f"device {device!r} not one of cpu, cuda, cuda:N, auto")
        return "cuda:0" if device == "cuda" else device

    @field_validator("links")
    @classmethod
    def _links_valid(cls, links: list[dict[str, Any]]) -> list[dict[str, Any]]:
        expand_links(links)  # raises ValueError naming the bad field
        return links

    @model_validator(mode="after")
    def _judge_fits_dataset(self) -> Experiment:
        """The judge needs labels to be the ground truth; the shipped judge knows only
        StreetScenes (warned when it judges another dataset by default)."""
        if self.dataset.name == "imagefolder" and self.scorer.name == "ground-truth":
            raise ValueError("judge 'ground-truth' needs labelled images; an imagefolder has "
                             "none: use judge: {name: judge}, bundled or torchscript")
        if "judge" not in self.model_fields_set and self.dataset.name != "streetscenes":
            warnings.warn(f"judge: the default judge (semcomm/assets/judge.pt) was trained on "
                          f"the built-in street scenes only; on dataset {self.dataset.name!r} "
                          "give judge: {name: torchscript, params: {path: ...}} (or judge: "
                          "null to score with the segmenter)", stacklevel=2)
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Experiment:
        labels = [c.display for c in self.codecs]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"codec labels {dup} repeat; give each entry a distinct 'label'")
        if self.dataset.name == "imagefolder":
            if self.tx_semantics == "ground-truth":
                raise ValueError("tx_semantics 'ground-truth' needs labelled images; an "
                                 "imagefolder has none: use tx_semantics: segmenter")
            if self.segmenter.name == "ground-truth":
                raise ValueError("segmenter 'ground-truth' needs labelled images; an "
                                 "imagefolder has none: use the bundled or a torchscript one")
        if self.links and self.snr is None:
            raise ValueError("links are given but snr is missing (esno_db or ebno_db)")
        for c in self.codecs:
            if c.bandwidth_ratio and not self.links:
                raise ValueError(f"codec {c.display!r}: bandwidth_ratio needs at least one link")
        links = expand_links(self.links) if self.links else []
        for i, c in enumerate(self.codecs):
            if c.link is not None:
                if not self.links:
                    raise ValueError(f"@codecs[{i}].link: a link override needs links")
                own = codec_links(self.links, c.link, i)
                _check_packet_bytes(i, c, own)
            else:
                _check_packet_bytes(i, c, links)
        if self.adaptation is not None:
            from semcomm.runner.adaptation import check_experiment

            check_experiment(self)
        return self

    @property
    def max_images(self) -> int:
        return min(self.dataset.count, self.stopping.max_images or self.dataset.count)

    @property
    def scorer(self) -> SegmenterConfig:
        """The network that scores x_hat: ``judge``, or ``segmenter`` where it is None."""
        return self.segmenter if self.judge is None else self.judge


def judge_name(config: dict[str, Any]) -> str:
    """Name of the network that scored mIoU, from a resolved config mapping (a run's
    ``summary.json`` ``config``; runs from before the judge default saved ``judge: null``,
    the segmenter)."""
    judge = config.get("judge") or config.get("segmenter") or {}
    return str(judge.get("name", "bundled"))


# --------------------------------------------------------------------------- links


def codec_links(links: list[dict[str, Any]], override: dict[str, Any],
                index: int = 0) -> list[tuple[str, Any]]:
    """[(run link label, LinkConfig of the codec)]: each run link with ``override``
    applied (same order and labels as :func:`expand_links` of ``links``)."""
    where = f"@codecs[{index}].link"
    for key, value in override.items():
        if isinstance(value, list | dict) and key != "priority":
            raise ValueError(f"{where}: {key}: give one value, not {value!r}")
        if key == "name":
            raise ValueError(f"{where}: name cannot be overridden (points keep the run's "
                             "link labels)")
    labels = [label for label, _ in expand_links(links)]
    merged = [{**entry, **override} if isinstance(entry, dict) else entry for entry in links]
    if "code_rate" in override or "mcs_index" in override or "mcs_table" in override:
        for entry in merged:  # the override's code replaces the entry's k / n / rate
            for key in ("k", "n", "code_rate", "mcs_table", "mcs_index"):
                if key not in override:
                    entry.pop(key, None)
    try:
        own = expand_links(merged)
    except ValueError as err:
        raise ValueError(f"{where}: {str(err).split(': ', 1)[-1]}") from None
    return [(label, cfg) for label, (_, cfg) in zip(labels, own, strict=True)]


def _check_packet_bytes(index: int, codec: CodecConfig, links: list[tuple[str, Any]]) -> None:
    """``packet_bytes`` of a codec entry: "auto" (the default on a link), null (one
    packet) or an int that fits one code block of every link (main and priority code)."""
    if "packet_bytes" not in codec.params:
        return
    value = codec.params["packet_bytes"]
    where = f"@codecs[{index}].params.packet_bytes"
    if value is None or value == "auto":
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: {value!r} must be 'auto' (the link's block payload), "
                         "null (one packet) or a positive int")
    for label, cfg in links:
        blocks = [cfg.block_payload_bytes] + (
            [cfg.priority.block_payload_bytes] if cfg.priority is not None else [])
        if value > min(blocks):
            raise ValueError(
                f"{where}: {value} bytes do not fit one code block of link {label!r} "
                f"({min(blocks)} payload bytes, (k - 24) / 8); give 'auto' or at most "
                f"{min(blocks)}")


def _link_label(cfg: Any) -> str:
    return str(cfg.describe())


def expand_links(links: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """Link entries -> [(label, channels.LinkConfig)]; list values expand as a product.

    ``{modulation: [qpsk, 16qam], channel: [awgn, rayleigh-block]}`` gives four links.
    An optional ``name`` key labels the link (a product appends its index).
    """
    from channels import LinkConfig

    out: list[tuple[str, Any]] = []
    for i, entry in enumerate(links):
        if not isinstance(entry, dict):
            raise ValueError(f"links[{i}] must be a mapping of link settings, got {entry!r}")
        entry = dict(entry)
        name = entry.pop("name", None)
        keys = list(entry)
        axes = [v if isinstance(v, list) else [v] for v in entry.values()]
        combos = list(itertools.product(*axes))
        for j, combo in enumerate(combos):
            try:
                cfg = LinkConfig.from_dict(dict(zip(keys, combo, strict=True)),
                                           where=f"links[{i}]")
            except (TypeError, ValueError) as err:
                # "@<key path>: <message>" lets _format_error report the element's path.
                raise ValueError(f"@links[{i}]: {str(err).removeprefix(f'links[{i}]: ')}") \
                    from None
            label = _link_label(cfg) if name is None else (
                str(name) if len(combos) == 1 else f"{name}-{j}")
            out.append((label, cfg))
    labels = [lab for lab, _ in out]
    for lab in labels:
        if labels.count(lab) > 1:
            raise ValueError(f"two links are both labelled {lab!r}; give them distinct 'name's")
    return out


# --------------------------------------------------------------------------- loading


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not an experiment YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (binary content); give an experiment "
                          "YAML file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def load_layers(path: str | Path) -> list[tuple[Path, dict[str, Any]]]:
    """[(file, raw mapping)] from the most basic ``extends`` ancestor to ``path``."""
    layers: list[tuple[Path, dict[str, Any]]] = []
    current: Path | None = Path(path)
    while current is not None:
        if any(current.resolve() == p.resolve() for p, _ in layers):
            raise ConfigError(f"{current}: 'extends' cycle")
        data = _read_yaml(current)
        parent = data.pop("extends", None)
        layers.append((current, data))
        if parent is not None and not isinstance(parent, str):
            raise ConfigError(f"{current}: extends: must be a file name, got {parent!r}")
        current = (current.parent / parent) if parent else None
    return layers[::-1]


def _has_path(data: Any, loc: tuple[Any, ...]) -> bool:
    for key in loc:
        in_dict = isinstance(data, dict) and key in data
        in_list = isinstance(data, list) and isinstance(key, int) and key < len(data)
        if in_dict or in_list:
            data = data[key]
        else:
            return False
    return True


def _valid_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model that sits at ``loc`` (for 'nearest key' hints)."""
    current: Any = model
    for key in loc:
        if isinstance(key, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(key))
        if field is None:
            return []
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _format_error(err: ValidationError, layers: list[tuple[Path, dict[str, Any]]]) -> str:
    first = err.errors()[0]
    loc = tuple(x for x in first["loc"] if not (isinstance(x, str) and x in _UNION_TAGS))
    where = layers[-1][0]
    for path, data in reversed(layers):
        if _has_path(data, loc):
            where = path
            break
    key_path = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in loc).lstrip(".")
    msg = first["msg"].removeprefix("Value error, ")
    if msg.startswith("@"):
        key_path, msg = msg[1:].split(": ", 1)
    elif first["type"] == "extra_forbidden":
        valid = _valid_keys(Experiment, loc[:-1])
        msg = f"unknown key; {did_you_mean(loc[-1], valid)}valid keys: {', '.join(valid)}"
    elif "input" in first and first["type"] != "missing":
        msg += f" (got {first['input']!r})"
    more = len(err.errors()) - 1
    tail = f" [and {more} more error{'s' if more > 1 else ''}]" if more else ""
    return f"{where}: {key_path or '(top level)'}: {msg}{tail}"


_UNION_TAGS = {"list[float]", "RangeConfig", "function-after[_one(), SnrConfig]"}


def resolve(data: dict[str, Any], where: str | Path = "<config>") -> Experiment:
    """Validate a merged mapping; raise ConfigError (one line) on any problem."""
    try:
        return Experiment.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_error(err, [(Path(str(where)), data)])) from None


def load_experiment(path: str | Path) -> Experiment:
    """Read, merge ``extends`` chains, validate. Raises ConfigError with one line."""
    layers = load_layers(path)
    merged: dict[str, Any] = {}
    for _, data in layers:
        merged = _deep_merge(merged, data)
        _child_snr_wins(merged, data)
    try:
        return Experiment.model_validate(merged)
    except ValidationError as err:
        raise ConfigError(_format_error(err, layers)) from None


def _child_snr_wins(merged: dict[str, Any], layer: dict[str, Any]) -> None:
    """A file that gives ``snr.ebno_db`` drops the ``esno_db`` it extends (and vice
    versa): the two are alternatives, so the child's choice replaces the base's."""
    snr = layer.get("snr")
    if not isinstance(snr, dict) or not isinstance(merged.get("snr"), dict):
        return
    for mine, other in (("ebno_db", "esno_db"), ("esno_db", "ebno_db")):
        if mine in snr and other not in snr:
            merged["snr"].pop(other, None)


def to_yaml(exp: Experiment) -> str:
    """The resolved experiment as YAML (what ``config.yaml`` in a run folder holds)."""
    return yaml.safe_dump(exp.model_dump(mode="json"), sort_keys=False)


def smoke(exp: Experiment) -> Experiment:
    """A tiny-budget copy for smoke tests: 2 images, first rate, lowest and highest SNR
    (and the first and last MCS row of ``adaptation``)."""
    data = exp.model_dump(mode="json")
    data["dataset"]["count"] = 2
    data["stopping"]["max_images"] = 2
    data["stopping"]["min_images"] = 1
    data["realizations"] = 1
    data["failure"]["mean_images"] = 2
    data["metrics"]["bootstrap"] = 50
    data["executor"] = {"kind": "serial", "workers": 1}
    data["codecs"] = [_first_rate(c, exp.codecs[i]) for i, c in enumerate(data["codecs"])]
    if exp.snr is not None:
        values = exp.snr.values()
        data["snr"] = {f"{exp.snr.kind}_db": sorted({values[0], values[-1]})}
    if exp.adaptation is not None:  # the lowest and highest MCS row
        rows = exp.adaptation.mcs.indices
        data["adaptation"]["mcs"]["indices"] = sorted({rows[0], rows[-1]})
    data["name"] = f"{exp.name}-smoke"
    return Experiment.model_validate(data)


def _first_rate(dumped: dict[str, Any], codec: CodecConfig) -> dict[str, Any]:
    kind, value = codec.rate_specs()[0]
    out = {**dumped, "bpp": [], "knob": [], "bandwidth_ratio": []}
    out[kind] = [value]
    return out
