"""Typed configs of the trained models: frozen dataclasses validated by pydantic.

One implementation shared by every learned codec's config loader (SQ-GAN, AM-VQ, ISC):
pydantic (the experiments' validator) checks the nested plain data against the
dataclasses in strict mode (an int is not a bool, a float is not an int, "no" is not
False; JSON arrays become tuples, ints become floats), forbids unknown keys and runs each
dataclass's ``__post_init__`` checks. The first error becomes ONE line naming the file,
the key path and, for an unknown key, the nearest valid key (STYLE.md rule 6). The
plain-data form (:func:`config_to_dict`) is what YAML files and ``weights_only``
checkpoints hold.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

#: Strict validation, unknown keys refused: set on every dataclass a config reaches.
_STRICT = ConfigDict(extra="forbid", strict=True)
_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


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

    ``where`` is the key path of ``data`` inside its file ("" = top level). ValueError,
    one line: unknown keys name ``source``, the key path and the nearest valid key;
    wrong types name the path, the expected type and the value; a dataclass's own
    ``__post_init__`` error is prefixed with the file and its section.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{source}: {where or 'top level'} must be a mapping, got {data!r}")
    try:
        text = json.dumps(data)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source}: {where or 'top level'}: not plain data ({err})") from err
    try:
        return _adapter(cls).validate_json(text, strict=True)
    except ValidationError as err:
        raise ValueError(_one_line(err, cls, source, where)) from None


def _adapter(cls: type) -> TypeAdapter[Any]:
    if cls not in _ADAPTERS:
        for dc in _dataclasses_in(cls):
            if "__pydantic_config__" not in vars(dc):
                dc.__pydantic_config__ = _STRICT  # type: ignore[attr-defined]
        _ADAPTERS[cls] = TypeAdapter(cls)
    return _ADAPTERS[cls]


def _dataclasses_in(hint: Any, seen: set[type] | None = None) -> set[type]:
    """Every dataclass reachable from ``hint`` (fields, tuple items, dict values, bases)."""
    seen = set() if seen is None else seen
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if hint in seen:
            return seen
        seen.update(b for b in hint.__mro__ if dataclasses.is_dataclass(b))
        for sub in typing.get_type_hints(hint).values():
            _dataclasses_in(sub, seen)
    for arg in typing.get_args(hint):
        _dataclasses_in(arg, seen)
    return seen


def _path(where: str, loc: tuple[Any, ...]) -> str:
    out = where
    for part in loc:
        out = f"{out}[{part}]" if isinstance(part, int) else (f"{out}.{part}" if out else part)
    return out


def _hint_at(cls: Any, loc: tuple[Any, ...]) -> Any:
    """The type at ``loc`` under dataclass ``cls`` (None where it cannot be followed)."""
    hint = cls
    for part in loc:
        if dataclasses.is_dataclass(hint) and isinstance(part, str):
            hint = typing.get_type_hints(hint).get(part)
        elif typing.get_origin(hint) in (tuple, dict):
            args = typing.get_args(hint)
            if typing.get_origin(hint) is dict:
                hint = args[1]
            else:
                hint = args[0] if args[-1] is Ellipsis or not isinstance(part, int) else (
                    args[part] if part < len(args) else None)
        else:
            return None
    return hint


def _one_line(err: ValidationError, cls: Any, source: str, where: str) -> str:
    e = err.errors()[0]
    loc = tuple(e["loc"])
    path, kind = _path(where, loc), e["type"]
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        parent = _hint_at(cls, loc[:-1])
        names = [f.name for f in dataclasses.fields(parent)] if dataclasses.is_dataclass(
            parent) else []
        near = difflib.get_close_matches(str(loc[-1]), names, n=1)
        prefix = _path(where, loc[:-1])
        hint = (f"; nearest valid key: {(prefix + '.' if prefix else '') + near[0]!r}" if near
                else f"; valid keys: {names}")
        return f"{source}: unknown key {path!r}{hint}"
    if kind in ("value_error", "assertion_error"):
        return f"{source}: {path or 'top level'}: {e.get('ctx', {}).get('error', e['msg'])}"
    if kind in ("dataclass_type", "dict_type", "model_type"):
        return f"{source}: {path or 'top level'} must be a mapping, got {e['input']!r}"
    if kind in ("tuple_type", "list_type"):
        return f"{source}: {path} must be a list, got {e['input']!r}"
    if kind in ("too_long", "too_short"):
        n = len(typing.get_args(_hint_at(cls, loc)))
        return f"{source}: {path} must have {n} items, got {e['input']!r}"
    hint = _hint_at(cls, loc)
    name = getattr(hint, "__name__", None)
    if name is not None:
        return f"{source}: {path} must be {name}, got {e['input']!r}"
    return f"{source}: {path}: {e['msg']}"
