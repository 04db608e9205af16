"""What every run writes about itself, and the JSON form of every typed result.

`Record`: a frozen dataclass with JSON in and out (`to_dict`, `from_dict`, `read`), the base of
every config and every stage's result (`TrainResult`, `TuneResult`, `PredictRun`,
`EvaluationReport`). `run_record(...)`: the command, resolved config, input hashes, versions
and seed that every run writes beside its output.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import sys
import types
import typing
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from satx.errors import InputError
from satx.io.secrets import scrub
from satx.io.storage import atomic_write_local

R = TypeVar("R", bound="Record")

# module -> the distributions that may provide it (tensorflow-cpu installs `tensorflow`)
_LIBRARIES = {
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "keras": ("keras",),
    "numpy": ("numpy",),
    "PIL": ("pillow",),
    "mercantile": ("mercantile",),
}


class Record:
    """JSON in and out for a (frozen) dataclass: nested records, tuples and dicts of them."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[R], values: Mapping[str, Any]) -> R:
        """Inverse of `to_dict`; missing keys take their defaults, unknown keys are refused."""
        hints = typing.get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"{cls.__name__}: unknown keys {unknown}")
        return cls(**{key: coerce(hints[key], value) for key, value in values.items()})

    @classmethod
    def read(cls: type[R], data: bytes | str, where: str) -> R:
        """A record from its JSON text; `where` names the file in the error."""
        try:
            return cls.from_dict(json.loads(data))
        except (ValueError, TypeError) as err:
            raise InputError(f"{where}: not a {cls.__name__} ({err})") from err

    @classmethod
    def load_finished(cls: type[R], root: str, name: str, flag: str, stage: str) -> R:
        """The record a stage writes last into its folder (local or gs://): it finished there.

        Raises:
            InputError: no such record in `root` (`flag` and `stage` name what to do).
        """
        from satx.io.storage import open_store

        store = open_store(root)
        if not store.exists(name):
            raise InputError(
                f"{flag}={root}: no {name}, so not a finished {stage} output; "
                f"run (or resume) {stage} into it first"
            )
        return cls.read(store.read_bytes(name), store.url(name))


def file_sha256(path: str | Path) -> str:
    """The hex sha256 of a local file: how a run record names an input file's content."""
    with open(Path(path).expanduser(), "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def recorded_path(path: str, folder: str) -> str:
    """An input's path as the stage writing `folder` records it.

    Relative to that folder when it was given relatively (so the folders can move together and
    be read from anywhere), else as given (gs://, absolute).
    """
    if "://" in path or Path(path).is_absolute() or "://" in folder:
        return path
    return os.path.relpath(Path(path).resolve(), Path(folder).resolve())


def path_from(recorded: str, folder: str) -> str:
    """An input path `folder`'s record holds, back as a usable path.

    Relative ones are taken from `folder` (older records held them relative to where the
    stage ran: that is used when only it exists).
    """
    if "://" in recorded or Path(recorded).is_absolute() or "://" in folder:
        return recorded
    beside = os.path.normpath(Path(folder) / recorded)
    return beside if Path(beside).exists() or not Path(recorded).exists() else recorded


def coerce(hint: Any, value: Any) -> Any:
    """JSON values -> the field's type: nested records, tuples from lists, dicts of records."""
    if isinstance(hint, type) and issubclass(hint, Record) and isinstance(value, Mapping):
        return hint.from_dict(value)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return coerce(inner[0], value) if len(inner) == 1 and value is not None else value
    if origin is tuple and isinstance(value, list | tuple):
        args = typing.get_args(hint)
        element = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        return tuple(coerce(element, v) if element else v for v in value)
    if origin is dict and isinstance(value, Mapping):
        inner = typing.get_args(hint)[1]
        return {k: coerce(inner, v) for k, v in value.items()}
    return value


def _version(module: str, distributions: tuple[str, ...]) -> str:
    # Read from package metadata unless already imported: make_records never imports
    # TensorFlow or Keras, and importing them only to print a version costs ~2 s.
    if module in sys.modules:
        return str(sys.modules[module].__version__)
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def versions() -> dict[str, str]:
    """Versions of satx and the libraries whose behaviour shapes its output."""
    import satx

    found = {
        ("pillow" if module == "PIL" else module): _version(module, dists)
        for module, dists in _LIBRARIES.items()
    }
    return {"satx": satx.__version__, "python": platform.python_version(), **found}


def run_record(
    command: str | None,
    config: Any = None,
    inputs: Mapping[str, Any] | None = None,
    seed: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """What a run writes about itself.

    Args:
        command: the command line (None: this process's argv).
        config: the resolved config (anything with `to_dict`).
        inputs: what identifies the input (e.g. `Records.identity()`: root and hashes).
        seed: the run's seed, where it has one.
        **extra: the stage's own facts (strategy, replicas, ...).
    """
    record: dict[str, Any] = {"command": command if command is not None else " ".join(sys.argv)}
    if config is not None:
        record["config"] = config.to_dict()
    record.update(inputs or {})
    if seed is not None:
        record["seed"] = seed
    return {**record, **extra, "versions": versions()}


def json_bytes(obj: Any) -> bytes:
    """`obj` as the indented, key-sorted JSON every run record uses (secrets scrubbed)."""
    if isinstance(obj, Record):
        obj = obj.to_dict()
    return (scrub(json.dumps(obj, indent=2, sort_keys=True, default=str)) + "\n").encode()


def write_json(path: str | Path, obj: Any) -> None:
    """Write `obj` (a record, or anything JSON-ready) as indented JSON, atomically."""
    atomic_write_local(path, json_bytes(obj))
