"""What every config shares: fields described once, validation, JSON, flat overrides.

A field declared with `knob(default, help, ...)` carries its flag's name, help and choices, so a
knob is one edit: the CLIs generate their flags from the dataclasses (`satx.cli.flags`). A flat
override names a leaf field anywhere in a config tree (`dropout` -> model.dropout); the tree
refuses a name that appears twice, so a flat key is never ambiguous.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from satx.artifact import runtimes
from satx.errors import InputError
from satx.io.run_record import Record, coerce
from satx.predict import formats

C = TypeVar("C", bound="Config")

COMPRESSIONS = ("none", "gzip")
SIZE_MISMATCH_MODES = ("resize", "reject")
CACHE_MODES = ("auto", "ram", "none")
OPTIMIZERS = ("adam", "rmsprop", "adamw")
TTA_MODES = ("none", "dihedral")  # test-time augmentation: the 8 symmetries of a tile
LR_SCHEDULES = ("plateau", "cosine")  # plateau: ReduceLROnPlateau; cosine: warm-up + cosine
STRATEGIES = ("auto", "mirrored", "multiworker", "onedevice")
PREDICT_STRATEGIES = ("auto", "mirrored", "onedevice")  # scoring has no multi-worker mode
PRECISIONS = ("auto", "float16", "bfloat16", "off")
PREDICT_FORMATS = formats.NAMES  # from the output-format registry, one spec each
EXPORT_BEST_ON = ("train", "train+val")
ENGINES = ("local", "beam")
# Inference runtimes an export can be converted for (`satx.export`), and what predict and
# evaluate can run (-int8, -bf16): from the runtime registry, one spec each.
EXPORT_RUNTIMES, RUNTIMES = runtimes.EXPORT_RUNTIMES, runtimes.RUNTIMES
MAX_IMAGERY_ZOOM = 24  # the deepest zoom any imagery service serves (most stop at 19-22)
# Colombia's zoom-18 tiles inside its outline (`satx.tiles.aoi.load_aoi`; a real-data test
# counts them from ../shared/data, so the figure cannot go stale).
COUNTRY_TILES = 50_042_948
_SPLIT_NAME = re.compile(r"^[a-z0-9_]+$")
_BOUNDS: dict[str, Callable[[float, float], bool]] = {
    "at least": lambda v, limit: v >= limit,
    "above": lambda v, limit: v > limit,
    "below": lambda v, limit: v < limit,
    "at most": lambda v, limit: v <= limit,
}


def knob(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    flag: str | None = "",
    choices: tuple[str, ...] = (),
    factory: Callable[[], Any] | None = None,
    repeat: bool = False,
    at_least: float | None = None,
    above: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
    words: dict[str, Any] | None = None,
) -> Any:
    """A config field, described once: the CLIs make its flag from this.

    Args:
        default: the value when nothing sets it.
        help: what it means (the flag's --help line).
        flag: the flag's name when it differs from the field's; None: no flag (the CLI
            derives the value, or the field is for library callers only).
        choices: the valid values (validated on construction; an enum flag).
        factory: builds the default (for mutable defaults).
        repeat: a tuple of strings given by repeating the flag (`--tile_header=A --tile_header=B`).
        at_least: the smallest valid value (validated on construction, as the others).
        above: the value it must exceed.
        below: the value it must stay under.
        at_most: the largest valid value.
        words: values the flag also takes by name (`--zoom=native` for 0).
    """
    bounds = {"at least": at_least, "above": above, "below": below, "at most": at_most}
    metadata = {
        "help": help,
        "flag": flag,
        "choices": tuple(choices),
        "repeat": repeat,
        "bounds": {k: v for k, v in bounds.items() if v is not None},
        "words": dict(words or {}),
    }
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def searched(
    default: tuple,
    help: str,
    *,
    log: bool = False,
    when: tuple[str, str] | None = None,
) -> Any:
    """A search-space entry: the values a trial may take for the TrainConfig field of its name.

    Args:
        default: the choices, or `(low, high)` with `log`.
        help: what it ranges over.
        log: sample log-uniformly between the two values instead of choosing one.
        when: `(other, value)`: only searched when knob `other` takes `value` (else the
            TrainConfig default).
    """
    metadata = {"help": help, "flag": None, "log": log, "when": when}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Leaf:
    """A leaf field of a config tree: where it is, its declaration and its type."""

    path: tuple[str, ...]
    field: dataclasses.Field
    hint: Any

    @property
    def flag(self) -> str | None:
        """The CLI flag that sets it (None: no flag)."""
        if "help" not in self.field.metadata:
            return None
        flag = self.field.metadata["flag"]
        return None if flag is None else (flag or self.path[-1])

    @property
    def help(self) -> str:
        """What it means."""
        return self.field.metadata.get("help", "")

    @property
    def choices(self) -> tuple[str, ...]:
        """Its valid values (empty: any)."""
        return self.field.metadata.get("choices", ())

    @property
    def words(self) -> dict[str, Any]:
        """Values its flag also takes by name."""
        return self.field.metadata.get("words", {})

    @property
    def default(self) -> Any:
        """Its default value."""
        if self.field.default is not dataclasses.MISSING:
            return self.field.default
        return self.field.default_factory()  # type: ignore[misc]


class Config(Record):
    """Behaviour shared by every config dataclass: validation, JSON in/out, flat overrides."""

    # False: flat overrides do not reach inside (a search space's fields share the names of
    # the values it ranges over)
    overridable_fields: typing.ClassVar[bool] = True

    def __post_init__(self) -> None:
        problems = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            values = value if isinstance(value, tuple) else (value,)
            shown = f"--{f.metadata.get('flag') or f.name}={','.join(map(str, values))}"
            choices = f.metadata.get("choices")
            if choices and any(v not in choices for v in values):
                problems.append(f"{shown}: choose one of {', '.join(choices)}")
            for rule, limit in f.metadata.get("bounds", {}).items():
                if not all(_BOUNDS[rule](v, limit) for v in values):
                    problems.append(f"{shown}: must be {rule} {limit:g}")
        check(problems + self.problems())

    def problems(self) -> list[str]:
        """What is wrong with this config beyond its choices (each a sentence naming the flag)."""
        return []

    @classmethod
    def from_flat(cls: type[C], values: Mapping[str, Any], **fields: Any) -> C:
        """A config from flat leaf names (`{"dropout": 0.1, "tiles": "..."}`), the rest defaults.

        `fields` are top-level fields given whole (a nested config built elsewhere).
        """
        return cls.from_dict({**_nest(cls.leaves(), values), **fields})

    @classmethod
    def leaves(cls) -> dict[str, Leaf]:
        """Every leaf field of the tree by its flat name (`dropout` -> model, dropout)."""
        found: dict[str, Leaf] = {}
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            hint = hints[f.name]
            if isinstance(hint, type) and issubclass(hint, Config) and hint.overridable_fields:
                nested = {
                    k: Leaf((f.name, *leaf.path), leaf.field, leaf.hint)
                    for k, leaf in hint.leaves().items()
                }
            else:
                nested = {f.name: Leaf((f.name,), f, hint)}
            for name, leaf in nested.items():
                if name in found:  # a flat override would be ambiguous
                    raise TypeError(f"{cls.__name__}: field {name!r} appears twice in the tree")
                found[name] = leaf
        return found

    @classmethod
    def branches(cls) -> dict[str, tuple[str, ...]]:
        """Every nested config of the tree that flat names reach into, by name -> its path."""
        found: dict[str, tuple[str, ...]] = {}
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            hint = hints[f.name]
            if isinstance(hint, type) and issubclass(hint, Config) and hint.overridable_fields:
                found[f.name] = (f.name,)
                found.update({k: (f.name, *path) for k, path in hint.branches().items()})
        return found

    @classmethod
    def make(cls: type[C], **values: Any) -> C:
        """A config from flat names anywhere in the tree: leaves, and nested configs given whole.

        `PredictConfig.make(model="m", output="o", zoom=18, source=SourceConfig(tiles=...))`.
        """
        return cls.from_dict(_nest({**cls.leaves(), **cls.branches()}, values))

    @classmethod
    def field_paths(cls) -> dict[str, tuple[str, ...]]:
        """Every leaf field name of the tree and the path to it."""
        return {name: leaf.path for name, leaf in cls.leaves().items()}

    def with_overrides(self: C, overrides: Mapping[str, Any]) -> C:
        """A copy with flat keys applied to whichever level of the tree holds them."""
        return _replace_nested(self, _nest(self.leaves(), overrides))


def _nest(paths: Mapping[str, Leaf | tuple[str, ...]], flat: Mapping[str, Any]) -> dict[str, Any]:
    """Flat names (leaves, or nested configs given whole) -> the nested dict of the tree."""
    unknown = sorted(set(flat) - set(paths))
    if unknown:
        raise InputError(f"unknown config keys {unknown}")
    nested: dict[str, Any] = {}
    for key in sorted(flat, key=lambda k: len(_path(paths[k]))):  # a whole config, then leaves
        *parents, leaf = _path(paths[key])
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        value = flat[key]
        node[leaf] = value.to_dict() if isinstance(value, Config) else value
    return nested


def _path(where: Leaf | tuple[str, ...]) -> tuple[str, ...]:
    return where.path if isinstance(where, Leaf) else where


def _replace_nested(config: C, changes: Mapping[str, Any]) -> C:
    hints = typing.get_type_hints(type(config))
    values = {}
    for key, value in changes.items():
        current = getattr(config, key)
        if isinstance(current, Config):
            values[key] = _replace_nested(current, value)
        else:
            values[key] = coerce(hints[key], value)
    return dataclasses.replace(config, **values)  # type: ignore[type-var]


def default_of(cls: type[Config], name: str) -> Any:
    """The default of a (possibly nested) field, by its flat name."""
    return cls.leaves()[name].default


def check(problems: list[str]) -> None:
    """Raise one InputError listing every problem found."""
    if problems:
        raise InputError("; ".join(problems))


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
