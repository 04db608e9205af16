"""What every config shares: JSON in and out, flat overrides, defaults; the valid choices.

A flat override names a leaf field anywhere in a config tree (`dropout` -> model.dropout); the
tree refuses a name that appears twice, so a flat key is never ambiguous.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from satx.errors import InputError

C = TypeVar("C", bound="Config")

COMPRESSIONS = ("none", "gzip")
SIZE_MISMATCH_MODES = ("resize", "reject")
CACHE_MODES = ("auto", "ram", "none")
OPTIMIZERS = ("adam", "rmsprop", "adamw")
TTA_MODES = ("none", "dihedral")  # test-time augmentation: the 8 symmetries of a tile
LR_SCHEDULES = ("plateau", "cosine")  # plateau: ReduceLROnPlateau; cosine: warm-up + cosine
STRATEGIES = ("auto", "mirrored", "multiworker", "onedevice")
PRECISIONS = ("auto", "float16", "bfloat16", "off")
PREDICT_FORMATS = ("geojson", "csv", "jsonl")
EXPORT_BEST_ON = ("train", "train+val")
COUNTRY_TILES = 50_800_000  # Colombia at zoom 18, inside its outline
_SPLIT_NAME = re.compile(r"^[a-z0-9_]+$")


class Config:
    """Behaviour shared by every config dataclass: JSON in/out and flat overrides."""

    # False: flat overrides do not reach inside (a search space's fields share the names of
    # the values it ranges over)
    overridable_fields: typing.ClassVar[bool] = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], values: Mapping[str, Any]) -> C:
        """Inverse of `to_dict`; missing keys take their defaults, unknown keys are refused."""
        hints = typing.get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"{cls.__name__}: unknown keys {unknown}")
        return cls(**{key: _coerce(hints[key], value) for key, value in values.items()})

    @classmethod
    def field_paths(cls) -> dict[str, tuple[str, ...]]:
        """Every leaf field name of the tree and the path to it (`dropout` -> model, dropout)."""
        paths: dict[str, tuple[str, ...]] = {}
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            hint = hints[f.name]
            if isinstance(hint, type) and issubclass(hint, Config) and hint.overridable_fields:
                nested = {k: (f.name, *p) for k, p in hint.field_paths().items()}
            else:
                nested = {f.name: (f.name,)}
            for name, path in nested.items():
                if name in paths:  # a flat override would be ambiguous
                    raise TypeError(f"{cls.__name__}: field {name!r} appears twice in the tree")
                paths[name] = path
        return paths

    def with_overrides(self: C, overrides: Mapping[str, Any]) -> C:
        """A copy with flat keys applied to whichever level of the tree holds them."""
        paths = self.field_paths()
        unknown = sorted(set(overrides) - set(paths))
        if unknown:
            raise InputError(f"unknown config keys {unknown}")
        nested: dict[str, Any] = {}
        for key, value in overrides.items():
            *parents, leaf = paths[key]
            node = nested
            for parent in parents:
                node = node.setdefault(parent, {})
            node[leaf] = value
        return _replace_nested(self, nested)


def _replace_nested(config: C, changes: Mapping[str, Any]) -> C:
    hints = typing.get_type_hints(type(config))
    values = {}
    for key, value in changes.items():
        current = getattr(config, key)
        if isinstance(current, Config):
            values[key] = _replace_nested(current, value)
        else:
            values[key] = _coerce(hints[key], value)
    return dataclasses.replace(config, **values)  # type: ignore[type-var]


def _coerce(hint: Any, value: Any) -> Any:
    """JSON values -> the field's type: nested configs, tuples from lists, dicts of tuples."""
    if isinstance(hint, type) and issubclass(hint, Config) and isinstance(value, Mapping):
        return hint.from_dict(value)
    origin = typing.get_origin(hint)
    if origin is tuple and isinstance(value, list | tuple):
        return tuple(value)
    if origin is dict and isinstance(value, Mapping):
        inner = typing.get_args(hint)[1]
        return {k: _coerce(inner, v) for k, v in value.items()}
    return value


def default_of(cls: type[Config], name: str) -> Any:
    """The default of a (possibly nested) field, by its flat name: flags take it from here."""
    *parents, leaf = cls.field_paths()[name]
    hints = typing.get_type_hints(cls)
    for parent in parents:
        cls = hints[parent]
        hints = typing.get_type_hints(cls)
    found = {f.name: f for f in dataclasses.fields(cls)}[leaf]  # type: ignore[arg-type]
    if found.default is not dataclasses.MISSING:
        return found.default
    return found.default_factory()  # type: ignore[misc]


def check(problems: list[str]) -> None:
    """Raise one InputError listing every problem found."""
    if problems:
        raise InputError("; ".join(problems))


def one_of(problems: list[str], flag: str, value: str, choices: tuple[str, ...]) -> None:
    """Note a problem when `value` is not one of `choices`."""
    if value not in choices:
        problems.append(f"--{flag}={value}: choose one of {', '.join(choices)}")


def parse_split_spec(spec: str) -> tuple[tuple[str, float], ...]:
    """Parse `train:0.8,val:0.1,test:0.1` into normalised (name, fraction) pairs."""
    pairs = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.partition(":")
        try:
            fraction = float(value) if sep else float("nan")
        except ValueError:
            fraction = float("nan")
        if not _SPLIT_NAME.match(name) or not fraction > 0:
            raise InputError(
                f"--split={spec!r}: each part must be NAME:FRACTION with NAME in [a-z0-9_]+ "
                "and FRACTION > 0, e.g. train:0.8,val:0.1,test:0.1"
            )
        pairs.append((name, fraction))
    names = [n for n, _ in pairs]
    if not pairs or len(set(names)) != len(names):
        raise InputError(f"--split={spec!r}: needs at least one split and no repeated names")
    total = sum(f for _, f in pairs)
    if abs(total - 1.0) > 0.01:
        raise InputError(f"--split={spec!r}: fractions add up to {total:g}, not 1")
    return tuple((n, f / total) for n, f in pairs)


def parse_duration(text: str) -> float:
    """`90s`, `30m`, `2h` or plain seconds -> seconds (0 for empty)."""
    units = {"s": 1, "m": 60, "h": 3600}
    text = text.strip().lower()
    if not text:
        return 0.0
    try:
        if text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise InputError(f"--time_budget={text!r}: expected e.g. 90s, 30m or 2h") from None
