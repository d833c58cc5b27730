"""Typed configs of the learned codecs: nested frozen dataclasses <-> plain data.

One implementation shared by every learned codec's config loader (SQ-GAN, AM-VQ, ...):
validated before any compute, unknown keys named with the nearest valid key
(STYLE.md rule 6), and a plain-data form for YAML and ``weights_only`` checkpoints.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any


def config_to_dict(cfg: Any) -> Any:
    """Plain (YAML/torch-weights_only-safe) nested dict/list form of a config dataclass."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: config_to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, tuple | list):
        return [config_to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: config_to_dict(v) for k, v in cfg.items()}
    return cfg


def build_config(cls: Any, data: Any, source: str, where: str = "") -> Any:
    """Build the frozen dataclass ``cls`` from nested plain data (e.g. parsed YAML).

    Field types are followed recursively (nested dataclasses, tuples, dicts, int, float,
    str, bool). Unknown keys raise ValueError naming ``source`` (the file), the key path
    and the nearest valid key; wrong types name the path and the expected type.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{source}: {where or 'top level'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            near = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; nearest valid key: {(where + '.' if where else '') + near[0]!r}" if (
                near) else f"; valid keys: {names}"
            raise ValueError(f"{source}: unknown key {path!r}{hint}")
        kwargs[key] = _convert(hints[key], value, source, path)
    try:
        return cls(**kwargs)
    except ValueError as err:
        raise ValueError(f"{source}: {where or 'top level'}: {err}") from err


def _convert(hint: Any, value: Any, source: str, path: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build_config(hint, value, source, path)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            raise ValueError(f"{source}: {path} must be a list, got {value!r}")
        item_types = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        if len(item_types) != len(value):
            raise ValueError(f"{source}: {path} must have {len(item_types)} items, got {value!r}")
        return tuple(_convert(t, v, source, f"{path}[{i}]")
                     for i, (t, v) in enumerate(zip(item_types, value, strict=True)))
    if origin is dict:
        key_t, val_t = typing.get_args(hint)
        if not isinstance(value, Mapping):
            raise ValueError(f"{source}: {path} must be a mapping, got {value!r}")
        return {_convert(key_t, k, source, path): _convert(val_t, v, source, f"{path}.{k}")
                for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"union types are not supported in configs ({path})")
    return _scalar(hint, value, source, path)


def _scalar(hint: Any, value: Any, source: str, path: str) -> Any:
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    raise ValueError(f"{source}: {path} must be {getattr(hint, '__name__', hint)}, got {value!r}")
