"""Every frozen run configuration of satx, and the choices a user can make in them.

One tree: `TrainConfig` nests `DataConfig` and `ModelConfig` (which nests `AugmentConfig`);
`TuneConfig` nests the `TrainConfig` every trial starts from and its `SearchSpace`. Each config
validates itself on construction, turns into JSON-ready dicts and back (`to_dict`,
`from_dict`), and takes flat overrides (`with_overrides({"dropout": 0.1, "seed": 7})`): every
field name is unique across a tree, so a flat key names exactly one field. CLIs turn flags into
these objects at the edge; library code never reads flags. This module imports nothing heavy.

Batch sizes: a bare `batch_size` is always the global batch (tiles per step over all
devices); the training run's own is `per_replica_batch_size`, spelled out.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from satx.errors import InputError

C = TypeVar("C", bound="Config")

COMPRESSIONS = ("none", "gzip")
SIZE_MISMATCH_MODES = ("resize", "reject")
CACHE_MODES = ("auto", "ram", "none")
OPTIMIZERS = ("adam", "rmsprop")
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


def _check(problems: list[str]) -> None:
    if problems:
        raise InputError("; ".join(problems))


def _one_of(problems: list[str], flag: str, value: str, choices: tuple[str, ...]) -> None:
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


@dataclass(frozen=True)
class RecordsConfig(Config):
    """How `make_records` turns labelled tiles into sharded TFRecords."""

    input: str = ""
    output: str = ""
    split: str = "train:0.8,val:0.1,test:0.1"
    split_zoom: int = 12
    seed: int = 42
    shard_size_mb: float = 100.0
    min_shards: int = 8
    on_size_mismatch: str = "reject"
    image_size: int = 256
    overwrite: bool = False
    compression: str = "none"
    workers: int = 0  # 0: one per CPU core
    classes: tuple[str, ...] = ()  # empty: sorted class names found in the input

    def __post_init__(self) -> None:
        problems = []
        if not self.input:
            problems.append("--input is required (folder, CSV file, or gs:// prefix)")
        if not self.output:
            problems.append("--output is required (folder or gs:// prefix)")
        _one_of(problems, "on_size_mismatch", self.on_size_mismatch, SIZE_MISMATCH_MODES)
        _one_of(problems, "compression", self.compression, COMPRESSIONS)
        if self.image_size < 8:
            problems.append("--image_size must be at least 8")
        if not 0 <= self.split_zoom <= 30:
            problems.append("--split_zoom must be in 0..30")
        if self.shard_size_mb <= 0 or self.min_shards < 1:
            problems.append("--shard_size_mb must be > 0 and --min_shards >= 1")
        _check(problems)
        parse_split_spec(self.split)

    @property
    def worker_count(self) -> int:
        """Processes to write shards with."""
        return self.workers or os.cpu_count() or 1


@dataclass(frozen=True)
class DataConfig(Config):
    """How training and evaluation read a records folder.

    The input size, global batch and seed are the run's, passed to the pipeline by the caller.
    """

    records: str = ""
    shuffle_buffer: int = 2048
    cache: str = "auto"  # auto: cache decoded tiles when they fit the RAM budget
    cache_ram_fraction: float = 0.5  # of available memory, for `auto`
    deterministic: bool = False  # also makes training ops deterministic (slower)
    max_corrupt_fraction: float = 0.001
    class_weight: tuple[float, ...] = ()  # empty: derived from manifest counts
    resample_to: tuple[float, ...] = ()  # target class mix, e.g. (0.5, 0.5); empty: off

    def __post_init__(self) -> None:
        problems = []
        _one_of(problems, "cache", self.cache, CACHE_MODES)
        if self.shuffle_buffer < 1:
            problems.append("the shuffle buffer must be >= 1")
        if not 0 < self.cache_ram_fraction <= 1:
            problems.append("cache_ram_fraction must be in (0, 1]")
        if self.resample_to and abs(sum(self.resample_to) - 1) > 1e-6:
            problems.append(f"resample_to {self.resample_to} must add up to 1")
        _check(problems)


@dataclass(frozen=True)
class AugmentConfig(Config):
    """Which augmentations run in training, and how strong; the seed is the run's."""

    dihedral: bool = True
    rotation_deg: float = 0.0  # extra small-angle rotation, +- degrees; 0 = off
    zoom_max: float = 1.2  # zoom in by 1.0 .. zoom_max; 1.0 = off
    brightness: tuple[float, float] = (0.8, 1.2)  # multiplicative; (1, 1) = off
    channel_shift: float = 10.0  # +- levels added per channel; 0 = off
    contrast: tuple[float, float] = (0.9, 1.1)  # around the image mean; (1, 1) = off


NO_AUGMENT = AugmentConfig(
    dihedral=False, zoom_max=1.0, brightness=(1.0, 1.0), channel_shift=0.0, contrast=(1.0, 1.0)
)


@dataclass(frozen=True)
class ModelConfig(Config):
    """Architecture of the classifier. `backbone` names an entry of the backbone registry."""

    backbone: str = "mobilenetv2"
    image_size: int = 0  # 0: the backbone's default
    weights: str = "imagenet"  # imagenet | none | path to a local .weights.h5
    dense_units: int = 256
    dense_activation: str = "relu"
    dropout: float = 0.25
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    @property
    def pretrained(self) -> bool:
        """Whether the backbone starts from trained weights (imagenet or a file)."""
        return (self.weights or "none").strip().lower() != "none"


@dataclass(frozen=True)
class TrainConfig(Config):
    """A training run. Defaults follow the predecessor's train_config where it had one."""

    workdir: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    seed: int = 42  # the one seed: data order, augmentation, initialisation, the tuner
    per_replica_batch_size: int = 32  # global batch = this x replicas
    n_epo_phase1: int = 2
    n_epo_phase2: int = 10
    lr_phase1: float = 3e-4
    lr_phase2: float = 3e-5
    optimizer: str = "adam"
    freeze_cutoff: str = ""  # "" = the backbone's default cut point
    patience: int = 5
    min_delta: float = 0.01
    lr_patience: int = 3
    lr_factor: float = 0.2
    steps_per_epoch: int = 0  # 0 = one pass over the training split
    mixed_precision: str = "auto"
    strategy: str = "auto"
    cpu_devices: int = 0
    profile_batches: str = ""  # "START,END"
    train_split: str = "train"
    val_split: str = "val"  # falls back to "test" when the records have no such split
    monitor: str = "auto"  # auto: val_auc for binary, val_accuracy for multi-class
    export: bool = True
    export_dir: str = ""  # "" = WORKDIR/export
    tensorboard_images: int = 8

    def __post_init__(self) -> None:
        problems = []
        _one_of(problems, "optimizer", self.optimizer, OPTIMIZERS)
        _one_of(problems, "mixed_precision", self.mixed_precision, PRECISIONS)
        _one_of(problems, "strategy", self.strategy, STRATEGIES)
        if min(self.n_epo_phase1, self.n_epo_phase2) < 0 or self.per_replica_batch_size < 1:
            problems.append("epochs must be >= 0 and --batch_size >= 1")
        if min(self.lr_phase1, self.lr_phase2) <= 0:
            problems.append("learning rates must be > 0")
        try:
            self.profile_range()
        except ValueError:
            problems.append(f"--profile_batches={self.profile_batches!r}: expected START,END")
        _check(problems)

    def profile_range(self) -> tuple[int, int]:
        """(start, end) batches to profile, or (0, 0) for none."""
        if not self.profile_batches:
            return 0, 0
        start, end = (int(v) for v in self.profile_batches.split(","))
        if not 0 < start <= end:
            raise ValueError(self.profile_batches)
        return start, end


@dataclass(frozen=True)
class SearchSpace(Config):
    """The hyperparameters and their ranges (defaults: the predecessor's)."""

    overridable_fields: typing.ClassVar[bool] = False

    dense_units: tuple[int, ...] = (128, 256, 512)
    dense_activation: tuple[str, ...] = ("relu", "elu")
    dropout: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5)
    optimizer: tuple[str, ...] = ("adam", "rmsprop")
    lr_phase1: tuple[float, float] = (1e-4, 1e-3)  # log-uniform
    lr_phase2: tuple[float, float] = (1e-5, 1e-4)  # log-uniform
    n_epo_phase1: tuple[int, ...] = (1, 2)
    freeze_cutoffs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # backbone -> cuts


@dataclass(frozen=True)
class TuneConfig(Config):
    """A Hyperband search over `search_space`, each trial a `train` run with its overrides."""

    train: TrainConfig = field(default_factory=TrainConfig)
    backbones: tuple[str, ...] = ()  # empty: the train config's backbone
    search_space: SearchSpace = field(default_factory=SearchSpace)
    max_epochs: int = 6
    factor: int = 3
    hyperband_iterations: int = 1
    directory: str = ""  # tuner state; "" = WORKDIR/tuner
    project_name: str = "satx"
    objective: str = "auto"  # auto: val_auc (binary) / val_accuracy
    max_trials: int = 0  # 0: the whole Hyperband plan
    time_budget_s: float = 0.0  # 0: no limit
    recycle_rss_mb: float = 0.0  # > 0: stop after a trial past this RSS (the CLI restarts)
    export_best: bool = False
    export_best_on: str = "train"
    summary_only: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        problems = []
        _one_of(problems, "export_best_on", self.export_best_on, EXPORT_BEST_ON)
        if self.max_epochs < 1 or self.factor < 2 or self.hyperband_iterations < 1:
            problems.append("--max_epochs >= 1, --factor >= 2 and --hyperband_iterations >= 1")
        _check(problems)

    @property
    def backbone_names(self) -> tuple[str, ...]:
        """The backbones searched over."""
        return self.backbones or (self.train.model.backbone,)


@dataclass(frozen=True)
class EvaluateConfig(Config):
    """Score one split of a records folder with a trained model."""

    model: str = ""  # export folder (or one version of it) or .keras
    records: str = ""
    output: str = ""
    split: str = "test"
    threshold: str = "0.5"  # binary: a number, youden, topleft, precision@P or recall@R
    scores_out: str = ""
    batch_size: int = 64

    def __post_init__(self) -> None:
        if not (self.model and self.records and self.output):
            raise InputError("--model, --records and --output are required")


@dataclass(frozen=True)
class PredictConfig(Config):
    """One prediction run."""

    model: str = ""
    output: str = ""
    input: str = ""
    bbox: tuple[float, ...] = ()
    zoom: int = 0
    tiles: str = ""  # tile template for --bbox and CSVs of z,x,y / lon,lat
    split: str = ""  # records input: "" = every split
    formats: tuple[str, ...] = ("geojson", "csv")
    min_score: float = 0.0  # keep rows with score >= this (errors are always kept)
    list_missing: bool = True  # False: missing tiles (sea, no imagery) are counted, not listed
    threshold: float = 0.5
    positive_class: str = ""
    class_names: tuple[str, ...] = ()  # for a .keras model without class_names.json beside it
    batch_size: int = 128
    chunk_size: int = 4096
    read_threads: int = 16
    strategy: str = "auto"
    cpu_devices: int = 0
    mixed_precision: str = "auto"
    project_tiles: int = COUNTRY_TILES
    overwrite: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not self.model or not self.output:
            problems.append("--model and --output are required")
        if self.batch_size < 1 or self.chunk_size < 1:
            problems.append("--batch_size and --chunk_size must be positive")
        unknown = set(self.formats) - set(PREDICT_FORMATS)
        if unknown or not self.formats:
            problems.append(f"--formats={','.join(self.formats)}: choose from {PREDICT_FORMATS}")
        _one_of(problems, "strategy", self.strategy, STRATEGIES)
        _one_of(problems, "mixed_precision", self.mixed_precision, PRECISIONS)
        _check(problems)

    def identity(self) -> dict[str, Any]:
        """The settings that decide what the output holds; a resumed run must match them."""
        keys = ("formats", "min_score", "threshold", "positive_class", "chunk_size", "list_missing")
        return {k: getattr(self, k) for k in keys}


@dataclass(frozen=True)
class BenchConfig(Config):
    """What `satx.bench` measures and on what."""

    data: str = ""  # a tile folder; "" = generated tiles
    image_size: int = 256  # tile side (records are made at this size)
    tiles: int = 4096  # generated tiles (the split should exceed the 2048-tile shuffle buffer)
    backbones: tuple[str, ...] = ()  # empty: every listed backbone of the registry
    batch_size: int = 8  # train mode
    steps: int = 5  # train mode: timed steps per measurement (after a warm-up epoch), at least
    train_seconds: float = 2.0  # train mode: ... and at least this long
    predict_batch_size: int = 32
    predict_tiles: int = 512  # tiles scored per backbone in the predict mode
    repeats: int = 3  # alternating measurements behind each headline ratio (medians reported)
