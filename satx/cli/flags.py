"""absl flags made from the config dataclasses, and flags -> configs.

Every config field declared with `knob(...)` becomes a flag: its name (the field's, or the
knob's `flag`), type (from the annotation), default, help and choices all come from the one
declaration in `satx.config`, so a new knob is one edit. `define_flags(PredictConfig)` at the
top of a CLI module defines them; `config_from_flags(PredictConfig)` reads them back.

absl refuses a flag defined twice in one process. Two CLI modules imported together may both
define a flag they share (`--seed`, `--tiles`): the second reuses the first when the two agree,
and a disagreement is a programming error raised at import.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Iterable
from typing import Any, TypeVar

from absl import flags

from satx.config import Config, Leaf
from satx.errors import InputError

FLAGS = flags.FLAGS
C = TypeVar("C", bound=Config)


def caller_module(depth: int) -> str:
    """The module name absl files a flag under (the main module is named by sys.argv[0])."""
    name = sys._getframe(depth + 1).f_globals["__name__"]
    return sys.argv[0] if name == "__main__" else name


def define(kind: str, name: str, help_text: str, default: Any, **kwargs: Any) -> flags.FlagHolder:
    """A flag of a CLI's own that sets no config field (`--json_out`, `--examples`, ...).

    Args:
        kind: integer, float, string, boolean, enum (pass `enum_values`) or list.
        name: the flag name.
        help_text: the --help line.
        default: its default.
        **kwargs: more for absl (`enum_values`, `module_name`).
    """
    kwargs.setdefault("module_name", caller_module(1))
    return getattr(flags, f"DEFINE_{kind}")(name=name, default=default, help=help_text, **kwargs)


def _element(hint: Any) -> type:
    args = [a for a in typing.get_args(hint) if a is not Ellipsis]
    return args[0] if args else str


def _definition(leaf: Leaf) -> tuple[str, Any, dict[str, Any]]:
    """(absl kind, default, extra arguments) of a config leaf's flag."""
    hint, default = leaf.hint, leaf.default
    if typing.get_origin(hint) is tuple:
        kind = "multi_string" if leaf.field.metadata.get("repeat") else "list"
        return kind, [str(v) for v in default], {}
    if hint is bool:
        return "boolean", default, {}
    if hint is int and leaf.words:  # a number, or one of its names (`--zoom=native`)
        return "string", str(default), {}
    if hint is int:
        return "integer", default, {}
    if hint is float:
        return "float", default, {}
    if leaf.choices:
        return "enum", default, {"enum_values": list(leaf.choices)}
    return "string", default, {}


def define_flags(cls: type[Config]) -> None:
    """Define the flag of every knob in `cls`'s tree (nested configs included).

    The flags belong to the calling module (`--help` lists them).
    """
    module = caller_module(1)
    for leaf in cls.leaves().values():
        name = leaf.flag
        if name is None:
            continue
        kind, default, extra = _definition(leaf)
        if name in FLAGS:  # another CLI module of this process defined it
            if FLAGS[name].default != default:
                raise TypeError(
                    f"flag --{name} is defined twice with different defaults "
                    f"({FLAGS[name].default!r} and {default!r}): rename one of the knobs"
                )
            FLAGS.register_key_flag_for_module(module, FLAGS[name])
            continue
        define(kind, name, leaf.help, default, module_name=module, **extra)


def _from_flag(name: str, leaf: Leaf, value: Any) -> Any:
    """A flag's value as the field's type (lists become typed tuples, names their values)."""
    hint = leaf.hint
    if hint is int and leaf.words and isinstance(value, str):
        if value in leaf.words:
            return leaf.words[value]
        try:
            return int(value)
        except ValueError:
            named = " or ".join(leaf.words)
            raise InputError(f"--{name}={value}: expected a whole number or {named}") from None
    if typing.get_origin(hint) is not tuple or value is None:
        return value
    element = _element(hint)
    try:
        return tuple(element(v) for v in value)
    except ValueError:
        kind = "whole numbers" if element is int else "numbers"
        raise InputError(f"--{name}={','.join(value)}: expected {kind}, comma-separated") from None


def flag_values(
    cls: type[Config], given_only: bool = False, skip: Iterable[str] = ()
) -> dict[str, Any]:
    """Flat field values of `cls`'s tree from its flags.

    Args:
        cls: the config class.
        given_only: only the flags given on the command line (a recipe's values stay).
        skip: field names to leave out.
    """
    values = {}
    for field, leaf in cls.leaves().items():
        name = leaf.flag
        if name is None or field in skip or name not in FLAGS:
            continue
        if given_only and not FLAGS[name].present:
            continue
        values[field] = _from_flag(name, leaf, FLAGS[name].value)
    return values


def config_from_flags(cls: type[C], **fields: Any) -> C:
    """A `cls` config from its flags.

    Args:
        cls: the config class.
        **fields: top-level fields set here instead (a nested config the CLI built, values the
            CLI derives); the flags of the leaves under them are not read.
    """
    skip = [name for name, leaf in cls.leaves().items() if leaf.path[0] in fields]
    return cls.from_flat(flag_values(cls, skip=skip), **fields)
