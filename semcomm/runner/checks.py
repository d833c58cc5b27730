"""Ask each codec, before any compute, whether it accepts the run's image sizes and
knob values (one-line ValueErrors naming the codec, the value and what is allowed).

The codecs already check both when they encode; these functions reach the same checks
without encoding, so that ``semcomm run`` refuses a bad experiment before the sweep
(and before the run folder exists) instead of failing mid-run.
"""

from __future__ import annotations

from typing import Any


def check_shape(codec: Any, shape: tuple[int, int]) -> None:
    """ValueError unless ``codec`` can code an H x W image.

    Learned codecs: the same geometry check their encoder runs (``spec`` of SQ-GAN and
    AM-VQ, ``specs`` of ISC, DeepJSCC's ``_check_shape``); every codec: H, W >= 8.
    """
    h, w = int(shape[0]), int(shape[1])
    if h < 8 or w < 8:
        raise ValueError(f"image size {h}x{w}: every codec needs H, W >= 8")
    for name in ("spec", "specs", "_check_shape"):
        method = getattr(codec, name, None)
        if callable(method):
            method((h, w))
            return


def check_knob(codec: Any, knob: float) -> None:
    """ValueError unless ``knob`` is in the codec's range (JPEG quality 1-100, SQ-GAN m
    in [0, 1], AM-VQ tau in [0, 1], ISC stages 0..S, DeepJSCC's available ratios)."""
    for name in ("check_knob", "_check_knob"):
        method = getattr(codec, name, None)
        if callable(method):
            method(knob)
            return
    if getattr(codec, "name", None) == "amvq":
        from semcomm.codecs.amvq.activation import check_tau

        check_tau(knob)
        return
    cfg = getattr(codec, "cfg", None)
    if cfg is not None and callable(getattr(cfg, "ratio_channels", None)):
        cfg.ratio_channels(knob)
