"""The configs that make records and train models; each validates itself on construction.

See `satx.config` for how they nest and how flags and overrides reach them.
"""

from __future__ import annotations

import os
import typing
from dataclasses import dataclass, field

from satx.config.base import (
    CACHE_MODES,
    COMPRESSIONS,
    EXPORT_BEST_ON,
    LR_SCHEDULES,
    OPTIMIZERS,
    PRECISIONS,
    SIZE_MISMATCH_MODES,
    STRATEGIES,
    Config,
    check,
    one_of,
    parse_split_spec,
)

POLYGON_MODES = ("cover", "centroid")
ENGINES = ("local", "beam")


@dataclass(frozen=True)
class SourceConfig(Config):
    """Where tiles are read from when an input names places rather than files.

    `tiles` is a path or gs:// template, an HTTP(S) XYZ/TMS/WMS template, an `.mbtiles` file
    or a `.pmtiles` archive (local or gs://). The rest tunes the HTTP client and the cache.
    """

    tiles: str = ""
    tile_subdomains: tuple[str, ...] = ()  # what {s} takes
    tile_header: tuple[str, ...] = ()  # "Name: value" (${ENV} expanded), sent with every request
    tile_cache: str = ""  # a folder keeping fetched tiles as {z}/{x}/{y} (and no-imagery marks)
    fetch_threads: int = 32
    max_rps: float = 0.0  # requests per second over all threads; 0: no cap
    fetch_timeout: float = 15.0  # seconds to connect, and to read
    fetch_retries: int = 5  # per tile, for timeouts, connection errors, 429 and 5xx

    def __post_init__(self) -> None:
        problems = []
        if self.fetch_threads < 1:
            problems.append("--fetch_threads must be at least 1")
        if self.max_rps < 0 or self.fetch_timeout <= 0 or self.fetch_retries < 0:
            problems.append("--max_rps, --fetch_retries must be >= 0 and --fetch_timeout > 0")
        check(problems)


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
    # labelled places (GeoJSON, CSV of lon,lat,label or z,x,y,label): their tiles come from here
    source: SourceConfig = field(default_factory=SourceConfig)
    zoom: int = 0
    label_property: str = "label"
    polygon_mode: str = "cover"  # cover: every tile a polygon overlaps; centroid: one tile
    engine: str = "local"  # beam: the same work as Apache Beam pipeline stages
    beam_options: str = ""  # Beam's own pipeline options, e.g. "--runner=DataflowRunner ..."

    def __post_init__(self) -> None:
        problems = []
        one_of(problems, "polygon_mode", self.polygon_mode, POLYGON_MODES)
        one_of(problems, "engine", self.engine, ENGINES)
        if not self.input:
            problems.append("--input is required (folder, CSV file, or gs:// prefix)")
        if not self.output:
            problems.append("--output is required (folder or gs:// prefix)")
        one_of(problems, "on_size_mismatch", self.on_size_mismatch, SIZE_MISMATCH_MODES)
        one_of(problems, "compression", self.compression, COMPRESSIONS)
        if self.image_size < 8:
            problems.append("--image_size must be at least 8")
        if not 0 <= self.split_zoom <= 30:
            problems.append("--split_zoom must be in 0..30")
        if self.shard_size_mb <= 0 or self.min_shards < 1:
            problems.append("--shard_size_mb must be > 0 and --min_shards >= 1")
        check(problems)
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
    mixup_alpha: float = 0.0  # training batches: mixup with Beta(a, a) weights; 0 = off
    cutmix_alpha: float = 0.0  # ... cutmix; both > 0: each batch gets one of them (50/50)

    def __post_init__(self) -> None:
        problems = []
        one_of(problems, "cache", self.cache, CACHE_MODES)
        if self.shuffle_buffer < 1:
            problems.append("the shuffle buffer must be >= 1")
        if not 0 < self.cache_ram_fraction <= 1:
            problems.append("cache_ram_fraction must be in (0, 1]")
        if self.resample_to and abs(sum(self.resample_to) - 1) > 1e-6:
            problems.append(f"resample_to {self.resample_to} must add up to 1")
        if min(self.mixup_alpha, self.cutmix_alpha) < 0:
            problems.append("--mixup_alpha and --cutmix_alpha must be >= 0")
        check(problems)


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
    bn_momentum: float = 0.5  # from scratch: BatchNorm's moving-average momentum (see classifier)
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
    phase1_image_size: int = 0  # > 0: phase 1 trains at this input size (progressive resizing)
    lr_phase1: float = 3e-4
    lr_phase2: float = 3e-5
    optimizer: str = "adam"  # adam, rmsprop, adamw (with weight_decay)
    weight_decay: float = 0.0  # adamw: decoupled decay of the kernels (not biases, not BN)
    lr_schedule: str = "plateau"  # plateau: cut on a plateau; cosine: warm-up + cosine by step
    warmup_epochs: float = 0.0  # cosine: linear warm-up over this many epochs of each phase
    label_smoothing: float = 0.0
    ema_momentum: float = 0.0  # > 0: validate, checkpoint and export an EMA of the weights
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
    export_tta: bool = False  # also a `serving_tta` signature (mean over the 8 symmetries)
    calibrate: bool = True  # fit temperature and class bias on the validation split
    tensorboard_images: int = 8

    def __post_init__(self) -> None:
        problems = []
        one_of(problems, "optimizer", self.optimizer, OPTIMIZERS)
        one_of(problems, "lr_schedule", self.lr_schedule, LR_SCHEDULES)
        one_of(problems, "mixed_precision", self.mixed_precision, PRECISIONS)
        if not 0 <= self.label_smoothing < 1 or not 0 <= self.ema_momentum < 1:
            problems.append("--label_smoothing and --ema_momentum must be in [0, 1)")
        if self.weight_decay < 0 or self.warmup_epochs < 0:
            problems.append("--weight_decay and --warmup_epochs must be >= 0")
        one_of(problems, "strategy", self.strategy, STRATEGIES)
        if min(self.n_epo_phase1, self.n_epo_phase2) < 0 or self.per_replica_batch_size < 1:
            problems.append("epochs must be >= 0 and --batch_size >= 1")
        if self.phase1_image_size < 0:
            problems.append("--phase1_image_size must be >= 0 (0: the model's input size)")
        if min(self.lr_phase1, self.lr_phase2) <= 0:
            problems.append("learning rates must be > 0")
        try:
            self.profile_range()
        except ValueError:
            problems.append(f"--profile_batches={self.profile_batches!r}: expected START,END")
        check(problems)

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
    """The hyperparameters and their ranges.

    Defaults: the predecessor's, plus issue 15's recipe knobs (AdamW's weight decay, the cosine
    schedule, label smoothing). A one-value tuple fixes a knob.
    """

    overridable_fields: typing.ClassVar[bool] = False

    dense_units: tuple[int, ...] = (128, 256, 512)
    dense_activation: tuple[str, ...] = ("relu", "elu")
    dropout: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5)
    optimizer: tuple[str, ...] = ("adam", "rmsprop", "adamw")
    weight_decay: tuple[float, float] = (1e-3, 1e-1)  # log-uniform; only when adamw is chosen
    lr_schedule: tuple[str, ...] = ("plateau", "cosine")
    label_smoothing: tuple[float, ...] = (0.0, 0.1)
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
        one_of(problems, "export_best_on", self.export_best_on, EXPORT_BEST_ON)
        if self.max_epochs < 1 or self.factor < 2 or self.hyperband_iterations < 1:
            problems.append("--max_epochs >= 1, --factor >= 2 and --hyperband_iterations >= 1")
        if self.train.phase1_image_size:
            problems.append("--phase1_image_size is for satx.train; trials train at one size")
        check(problems)

    @property
    def backbone_names(self) -> tuple[str, ...]:
        """The backbones searched over."""
        return self.backbones or (self.train.model.backbone,)
