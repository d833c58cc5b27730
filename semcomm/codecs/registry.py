"""One registry of codecs, keyed by the name used in experiment YAML files.

A codec module registers its class with the decorator::

    @register_codec("jpeg")
    class JpegCodec(ClassicCodec): ...

and the runner builds it with ``build_codec("jpeg", **params)``. Adding a learned codec
is one entry in :data:`CODEC_MODULES` (so that its module is imported and registers
itself) plus a block in an experiment YAML.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from semcomm.codecs.base import Codec

#: Modules imported (once, lazily) to populate the registry. A module that does not
#: exist yet (a learned codec that has not landed) is skipped; any other import error
#: propagates, so a broken codec is never silently missing.
CODEC_MODULES: tuple[str, ...] = (
    "semcomm.codecs.classic",
    "semcomm.codecs.sqgan",
    "semcomm.codecs.amvq",
    "semcomm.codecs.isc",
    "semcomm.codecs.deepjscc",
)

_REGISTRY: dict[str, Callable[..., Codec]] = {}
_LOADED = False

T = TypeVar("T")


def register_codec(name: str) -> Callable[[T], T]:
    """Class decorator registering a codec factory under its YAML ``name``.

    Raises ValueError when ``name`` is empty or already registered.
    """
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"codec name {name!r} must be a non-empty [A-Za-z0-9_-] word")

    def decorator(factory: T) -> T:
        if name in _REGISTRY:
            raise ValueError(
                f"codec name {name!r} is already registered to {_REGISTRY[name]!r}"
            )
        _REGISTRY[name] = factory  # type: ignore[assignment]
        return factory

    return decorator


def _load_modules() -> None:
    global _LOADED
    if _LOADED:
        return
    for module in CODEC_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:  # the module exists but one of its imports is missing
                raise
    _LOADED = True


def available_codecs() -> list[str]:
    """Sorted YAML names of every registered codec."""
    _load_modules()
    return sorted(_REGISTRY)


def codec_factory(name: str) -> Callable[..., Codec]:
    """The registered factory (usually the class) for ``name``.

    Raises ValueError naming the unknown name, the nearest registered one and all of them.
    """
    _load_modules()
    if name not in _REGISTRY:
        near = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ValueError(f"unknown codec {name!r}{hint}; registered: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def build_codec(name: str, **params: Any) -> Codec:
    """Build the codec registered as ``name`` with constructor ``params``."""
    return codec_factory(name)(**params)
