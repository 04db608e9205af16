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
    ENGINES,
    EXPORT_BEST_ON,
    EXPORT_RUNTIMES,
    LR_SCHEDULES,
    MAX_IMAGERY_ZOOM,
    OPTIMIZERS,
    PRECISIONS,
    SIZE_MISMATCH_MODES,
    STRATEGIES,
    Config,
    knob,
    parse_split_spec,
    searched,
)
from satx.config.source import BEAM_OPTIONS_HELP, ENGINE_HELP, OVERWRITE_HELP, SourceConfig

POLYGON_MODES = ("cover", "centroid")


@dataclass(frozen=True)
class RecordsConfig(Config):
    """How `make_records` turns labelled tiles into sharded TFRecords."""

    input: str = knob(
        "",
        "Folder (ROOT/<class>/...), labels CSV (path,label), gs:// prefix, or labelled places: "
        "GeoJSON, or a CSV of lon,lat,label or z,x,y,label (with --zoom and --tiles).",
    )
    output: str = knob("", "Output folder or gs://bucket/prefix.")
    split: str = knob(
        "train:0.8,val:0.1,test:0.1", "Named split fractions (ignored when the input is split)."
    )
    split_zoom: int = knob(
        12, "Tiles sharing a parent tile at this zoom go to the same split.", at_least=0, at_most=30
    )
    seed: int = knob(42, "Random seed; same inputs and seed give the same output.")
    shard_size_mb: float = knob(100.0, "Target shard size in MB.", above=0)
    min_shards: int = knob(8, "At least this many shards per split.", at_least=1)
    on_size_mismatch: str = knob(
        "reject", "What to do with tiles of another size.", choices=SIZE_MISMATCH_MODES
    )
    image_size: int = knob(
        256, "Stored tile side in pixels (with --context: of each tile).", at_least=8
    )
    context: int = knob(
        1,
        "Labelled places: store each as the CxC window of tiles around it (2: a 2x2 "
        "'supertile', a zoom-17 footprint at zoom-18 detail), C x --image_size px a side.",
        at_least=1,
        at_most=4,
    )
    overwrite: bool = knob(False, OVERWRITE_HELP)
    compression: str = knob("none", "Shard compression.", choices=COMPRESSIONS)
    workers: int = knob(0, "Worker processes; 0 means one per CPU core.")
    classes: tuple[str, ...] = knob(
        (), "Class names in label-index order (default: sorted names found)."
    )
    source: SourceConfig = field(default_factory=SourceConfig)  # labelled places' tiles
    zoom: int = knob(
        0,
        "Zoom of labelled places (a lon,lat CSV or GeoJSON); with scenes as --tiles, 0 or "
        "native: the zoom closest to the scenes' ground resolution.",
        at_least=0,
        at_most=MAX_IMAGERY_ZOOM,
        words={"native": 0},
    )
    label_property: str = knob("label", "GeoJSON: the feature property holding the label.")
    polygon_mode: str = knob(
        "cover",
        "GeoJSON polygons: every tile they overlap (cover), or their centroid's tile.",
        choices=POLYGON_MODES,
    )
    engine: str = knob("local", ENGINE_HELP, choices=ENGINES)
    beam_options: str = knob("", BEAM_OPTIONS_HELP)

    def problems(self) -> list[str]:
        """Required paths; the split spec parses."""
        problems = []
        if not self.input:
            problems.append("--input is required (folder, CSV file, or gs:// prefix)")
        if not self.output:
            problems.append("--output is required (folder or gs:// prefix)")
        if not problems:
            parse_split_spec(self.split)
        return problems

    @property
    def stored_size(self) -> int:
        """The side of every stored image: a tile's, times the window's tiles with --context."""
        return self.image_size * self.context

    @property
    def worker_count(self) -> int:
        """Processes to write shards with."""
        return self.workers or os.cpu_count() or 1


@dataclass(frozen=True)
class DataConfig(Config):
    """How training and evaluation read a records folder.

    The input size, global batch and seed are the run's, passed to the pipeline by the caller.
    """

    records: str = knob("", "Records folder (with manifest.json) or gs:// prefix.")
    shuffle_buffer: int = knob(2048, "Tiles in the shuffle buffer.", at_least=1)
    cache: str = knob(
        "auto",
        "Decoded-tile RAM cache (auto: when it fits the RAM budget).",
        choices=CACHE_MODES,
    )
    cache_ram_fraction: float = knob(
        0.5, "auto cache: the share of available memory it may use.", above=0, at_most=1
    )
    deterministic: bool = knob(False, "Reproducible (slower) run: deterministic ops and order.")
    max_corrupt_fraction: float = knob(
        0.001, "Stop when more than this share of records cannot be read."
    )
    class_weight: tuple[float, ...] = knob((), "Per-class weights; default from counts.")
    resample_to: tuple[float, ...] = knob(
        (), "Resample training to this class mix, e.g. 0.5,0.5; empty: off."
    )
    mixup_alpha: float = knob(0.0, "Mixup of training batches, Beta(a, a); 0 = off.", at_least=0)
    cutmix_alpha: float = knob(
        0.0,
        "CutMix of training batches, Beta(a, a); 0 = off (both on: one of them per batch).",
        at_least=0,
    )

    def problems(self) -> list[str]:
        """The class mix adds up."""
        if self.resample_to and abs(sum(self.resample_to) - 1) > 1e-6:
            return [f"--resample_to={self.resample_to}: must add up to 1"]
        return []


@dataclass(frozen=True)
class AugmentConfig(Config):
    """Which augmentations run in training, and how strong; the seed is the run's."""

    dihedral: bool = knob(True, "Augment: the tile's 8 symmetries (flips, quarter turns).")
    rotation_deg: float = knob(0.0, "Augment: an extra rotation of +- this many degrees; 0 = off.")
    zoom_max: float = knob(1.2, "Augment: zoom in by 1 .. this; 1 = off.")
    brightness: tuple[float, float] = knob(
        (0.8, 1.2), "Augment: multiplicative brightness range LOW,HIGH; 1,1 = off."
    )
    channel_shift: float = knob(10.0, "Augment: +- levels added to each channel; 0 = off.")
    contrast: tuple[float, float] = knob(
        (0.9, 1.1), "Augment: contrast range LOW,HIGH around the image mean; 1,1 = off."
    )


NO_AUGMENT = AugmentConfig(
    dihedral=False, zoom_max=1.0, brightness=(1.0, 1.0), channel_shift=0.0, contrast=(1.0, 1.0)
)


@dataclass(frozen=True)
class ModelConfig(Config):
    """Architecture of the classifier. `backbone` names an entry of the backbone registry."""

    backbone: str = knob("mobilenetv2", "Backbone name from the registry (satx.models.backbones).")
    image_size: int = knob(0, "Model input side in pixels; 0: the backbone's default.")
    weights: str = knob(
        "imagenet",
        "imagenet (the backbone's sources in order: the Keras download, an installed weights "
        "package), none, or a file: .weights.h5, or .pth/.pt/.safetensors (PyTorch state "
        "dicts) for backbones in PyTorch's layout (mobilenetv2_tv).",
    )
    dense_units: int = knob(256, "Units of the dense head layer.")
    dense_activation: str = knob("relu", "Activation of the dense head.")
    dropout: float = knob(0.25, "Dropout before the output layer.")
    bn_momentum: float = knob(0.5, "From scratch: BatchNorm's moving-average momentum.")
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    @property
    def pretrained(self) -> bool:
        """Whether the backbone starts from trained weights (imagenet or a file)."""
        return (self.weights or "none").strip().lower() != "none"


@dataclass(frozen=True)
class TrainConfig(Config):
    """A training run. Defaults follow the predecessor's train_config where it had one."""

    workdir: str = knob("", "Run folder: config, checkpoints, logs, export.")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    seed: int = knob(
        42, "The one seed: data order, augmentation, initialisation, the tuner's sampling."
    )
    per_replica_batch_size: int = knob(
        32, "Per-replica batch; the global batch is this x replicas.", flag="batch_size", at_least=1
    )
    n_epo_phase1: int = knob(2, "Epochs with the backbone frozen.", at_least=0)
    n_epo_phase2: int = knob(10, "Fine-tuning epochs (early stopping may end sooner).", at_least=0)
    phase1_image_size: int = knob(
        0,
        "Phase 1 trains at this input size, phase 2 at the model's (progressive resizing).",
        at_least=0,
    )
    lr_phase1: float = knob(3e-4, "Learning rate of phase 1.", above=0)
    lr_phase2: float = knob(3e-5, "Learning rate of phase 2.", above=0)
    optimizer: str = knob("adam", "Optimizer (adamw: with --weight_decay).", choices=OPTIMIZERS)
    weight_decay: float = knob(0.0, "adamw: decoupled weight decay of the kernels.", at_least=0)
    lr_schedule: str = knob(
        "plateau",
        "plateau (cut the rate on a plateau) or cosine (linear warm-up, then cosine by step).",
        choices=LR_SCHEDULES,
    )
    warmup_epochs: float = knob(
        0.0, "cosine: warm-up epochs at the start of each phase.", at_least=0
    )
    label_smoothing: float = knob(0.0, "Label smoothing of the cross-entropy.", at_least=0, below=1)
    focal_gamma: float = knob(
        0.0,
        "Focal loss: weigh each tile's loss by (1 - p)^gamma, easy tiles less; 0 = off.",
        at_least=0,
    )
    ema_momentum: float = knob(
        0.0, "> 0: validate, checkpoint and export an EMA of the weights.", at_least=0, below=1
    )
    freeze_cutoff: str = knob(
        "", "Fine-tune from this backbone layer: name, index, fraction or cut; '' = the default."
    )
    patience: int = knob(5, "Phase 2 stops after this many epochs without a real improvement.")
    min_delta: float = knob(0.01, "What counts as a real improvement of the monitored metric.")
    lr_patience: int = knob(3, "plateau: epochs without improvement before the rate is cut.")
    lr_factor: float = knob(0.2, "plateau: the factor the rate is cut by.")
    steps_per_epoch: int = knob(0, "Steps per epoch; 0 = one pass over the training split.")
    mixed_precision: str = knob("auto", "Mixed precision policy.", choices=PRECISIONS)
    strategy: str = knob("auto", "Distribution strategy.", choices=STRATEGIES)
    cpu_devices: int = knob(0, "Split the CPU into N logical devices.")
    profile_batches: str = knob("", "Profile batches START,END to TensorBoard.")
    train_split: str = knob("train", "Split to train on (a+b for a union).")
    val_split: str = knob("val", "Validation split (falls back to test).")
    monitor: str = knob(
        "auto",
        "Validation metric that picks the best checkpoint and stops early: auto (val_auc binary, "
        "val_accuracy multi-class; val_loss multi-worker), or e.g. val_loss.",
    )
    export: bool = knob(True, "Export a SavedModel at the end.")
    export_dir: str = knob("", "Where the SavedModel goes; '' = WORKDIR/export.")
    export_tta: bool = knob(False, "Also export serving_tta (mean over the 8 symmetries).")
    export_runtimes: tuple[str, ...] = knob(
        (),
        "Also convert the export for these inference runtimes (satx.export; calibrated and "
        "checked on the run's records).",
        choices=EXPORT_RUNTIMES,
    )
    export_int8: bool = knob(False, "With --export_runtimes: also int8 models (satx.export).")
    calibrate: bool = knob(True, "Fit temperature and class bias on the validation split.")
    tensorboard_images: int = knob(8, "Augmented training images shown in TensorBoard.")

    def problems(self) -> list[str]:
        """The profile range parses."""
        try:
            self.profile_range()
        except ValueError:
            return [f"--profile_batches={self.profile_batches!r}: expected START,END"]
        return []

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
    """The hyperparameters and their ranges; each entry sets the TrainConfig field of its name.

    Entries are declared to Keras Tuner in this order (the order decides which values a seed
    draws). A one-value tuple fixes a knob. Defaults: the predecessor's, plus issue 15's recipe
    knobs (AdamW's weight decay, the cosine schedule, label smoothing).
    """

    overridable_fields: typing.ClassVar[bool] = False

    optimizer: tuple[str, ...] = searched(("adam", "rmsprop", "adamw"), "Optimizers.")
    weight_decay: tuple[float, float] = searched(
        (1e-3, 1e-1), "AdamW's decay, log-uniform.", log=True, when=("optimizer", "adamw")
    )
    dense_units: tuple[int, ...] = searched((128, 256, 512), "Dense head sizes.")
    dense_activation: tuple[str, ...] = searched(("relu", "elu"), "Dense head activations.")
    dropout: tuple[float, ...] = searched((0.0, 0.1, 0.25, 0.5), "Dropout rates.")
    lr_schedule: tuple[str, ...] = searched(("plateau", "cosine"), "Learning-rate schedules.")
    label_smoothing: tuple[float, ...] = searched((0.0, 0.1), "Label smoothing.")
    lr_phase1: tuple[float, float] = searched((1e-4, 1e-3), "Phase 1 rate, log-uniform.", log=True)
    lr_phase2: tuple[float, float] = searched((1e-5, 1e-4), "Phase 2 rate, log-uniform.", log=True)
    n_epo_phase1: tuple[int, ...] = searched((1, 2), "Phase 1 epochs.")
    focal_gamma: tuple[float, ...] = searched((0.0,), "Focal loss strengths (0: cross-entropy).")
    # backbone -> cut-off choices (default: the backbone's named cut points); searched first,
    # under the backbone's conditional scope
    freeze_cutoffs: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class TuneConfig(Config):
    """A Hyperband search over `search_space`, each trial a `train` run with its overrides."""

    train: TrainConfig = field(default_factory=TrainConfig)
    backbones: tuple[str, ...] = knob((), "", flag=None)  # from --backbone (a name or all)
    search_space: SearchSpace = field(default_factory=SearchSpace)  # from --search_space
    max_epochs: int = knob(6, "Hyperband: most epochs any trial trains.", at_least=1)
    factor: int = knob(3, "Hyperband: reduction factor between brackets.", at_least=2)
    hyperband_iterations: int = knob(1, "Hyperband: full iterations.", at_least=1)
    directory: str = knob("", "Tuner state folder (default WORKDIR/tuner).")
    project_name: str = knob("satx", "Tuner project name.")
    objective: str = knob("auto", "auto: val_auc (binary) / val_accuracy.")
    max_trials: int = knob(0, "Start at most this many trials (0: the whole Hyperband plan).")
    time_budget_s: float = knob(0.0, "", flag=None)  # from --time_budget (90s, 30m, 2h)
    # > 0: stop after a trial past this RSS (the CLI restarts itself); from --recycle_rss_mb
    recycle_rss_mb: float = knob(0.0, "", flag=None)
    export_best: bool = knob(
        False, "Retrain the best configuration and export it to WORKDIR/export/."
    )
    export_best_on: str = knob(
        "train", "Splits the best configuration retrains on.", choices=EXPORT_BEST_ON
    )
    summary_only: bool = knob(False, "Only print and write the leaderboard.", flag="summary")
    overwrite: bool = knob(False, "Start the search over instead of continuing it.")

    def problems(self) -> list[str]:
        """Trials train at one size."""
        if self.train.phase1_image_size:
            return ["--phase1_image_size is for satx.train; trials train at one size"]
        return []

    @property
    def backbone_names(self) -> tuple[str, ...]:
        """The backbones searched over."""
        return self.backbones or (self.train.model.backbone,)
