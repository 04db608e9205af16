"""The configs of the stages that use a trained model: evaluate, predict, review, benchmarks.

See `satx.config` for how they nest and how flags and overrides reach them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from satx.config.base import (
    COUNTRY_TILES,
    PRECISIONS,
    PREDICT_FORMATS,
    STRATEGIES,
    TTA_MODES,
    Config,
    check,
    one_of,
)
from satx.config.runs import ENGINES, SourceConfig
from satx.errors import InputError


@dataclass(frozen=True)
class EvaluateConfig(Config):
    """Score one split of a records folder with a trained model."""

    model: str = ""  # export folder (or one version of it) or .keras
    records: str = ""
    output: str = ""
    split: str = "test"
    threshold: str = "0.5"  # binary: a number, youden, topleft, precision@P, recall@R, budget@N
    # a threshold mode other than a number is chosen on this split (when the records have it
    # and it is not the evaluated one), then applied to the evaluated split
    threshold_split: str = "val"
    scores_out: str = ""
    batch_size: int = 64
    tta: str = "none"  # dihedral: mean over the tile's 8 symmetries (8x the model's work)

    def __post_init__(self) -> None:
        if not (self.model and self.records and self.output):
            raise InputError("--model, --records and --output are required")
        problems: list[str] = []
        one_of(problems, "tta", self.tta, TTA_MODES)
        check(problems)


@dataclass(frozen=True)
class PredictConfig(Config):
    """One prediction run."""

    model: str = ""
    output: str = ""
    input: str = ""
    bbox: tuple[float, ...] = ()
    aoi: str = ""  # a GeoJSON of (Multi)Polygons: score the tiles that overlap them
    zoom: int = 0
    source: SourceConfig = field(default_factory=SourceConfig)  # --bbox, --aoi, z,x,y CSVs
    split: str = ""  # records input: "" = every split
    formats: tuple[str, ...] = ("geojson", "csv")
    min_score: float = 0.0  # keep rows with score >= this (errors are always kept)
    list_missing: bool = True  # False: missing tiles (sea, no imagery) are counted, not listed
    threshold: float = 0.5
    threshold_from: str = ""  # an evaluate report.json: use the threshold it chose
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
    dry_run: bool = False  # count the tiles and project the time; fetch and write nothing
    tta: str = "none"  # dihedral: mean over the tile's 8 symmetries (8x the model's work)
    engine: str = "local"  # beam: read, score and write chunks in Beam workers (RunInference)
    beam_options: str = ""  # Beam's own pipeline options, e.g. "--runner=DataflowRunner ..."

    def __post_init__(self) -> None:
        problems = []
        if not self.model or not (self.output or self.dry_run):
            problems.append("--model and --output are required")
        if self.batch_size < 1 or self.chunk_size < 1:
            problems.append("--batch_size and --chunk_size must be positive")
        unknown = set(self.formats) - set(PREDICT_FORMATS)
        if unknown or not self.formats:
            problems.append(f"--formats={','.join(self.formats)}: choose from {PREDICT_FORMATS}")
        one_of(problems, "strategy", self.strategy, STRATEGIES)
        one_of(problems, "mixed_precision", self.mixed_precision, PRECISIONS)
        one_of(problems, "engine", self.engine, ENGINES)
        one_of(problems, "tta", self.tta, TTA_MODES)
        check(problems)

    def identity(self) -> dict[str, Any]:
        """The settings that decide what the output holds; a resumed run must match them."""
        keys = (
            "formats",
            "min_score",
            "threshold",
            "threshold_from",
            "positive_class",
            "chunk_size",
            "list_missing",
            "tta",
        )
        return {k: getattr(self, k) for k in keys}


@dataclass(frozen=True)
class BenchConfig(Config):
    """What `satx.bench` measures and on what."""

    data: str = ""  # a tile folder; "" = generated tiles
    image_size: int = 256  # tile side (records are made at this size)
    num_tiles: int = 4096  # generated tiles (the split should exceed the 2048-tile shuffle buffer)
    backbones: tuple[str, ...] = ()  # empty: every listed backbone of the registry
    batch_size: int = 8  # train mode
    steps: int = 5  # train mode: timed steps per measurement (after a warm-up epoch), at least
    train_seconds: float = 2.0  # train mode: ... and at least this long
    input_seconds: float = 2.0  # input mode: each measurement runs whole passes this long
    predict_batch_size: int = 32
    predict_tiles: int = 512  # tiles scored per backbone in the predict mode
    fetch_thread_counts: tuple[int, ...] = (32, 128)  # fetch mode: concurrent requests tried
    fetch_latency_ms: float = 50.0  # fetch mode: latency the tile server adds to each answer
    engine: str = "local"  # beam: records and predict also on Beam (1 and 2 processes), vs local
    repeats: int = 3  # alternating measurements behind each headline ratio (medians reported)


REVIEW_ORDERS = ("score", "uncertain", "random")


@dataclass(frozen=True)
class ReviewConfig(Config):
    """The mappers' review of one prediction run (`satx.review`), or an export of its labels."""

    predictions: str = ""  # a finished `satx.predict` output folder (local or gs://)
    source: SourceConfig = field(default_factory=SourceConfig)  # where the tiles' images are
    db: str = ""  # the SQLite file holding the queue and every decision
    host: str = "127.0.0.1"
    port: int = 8765  # 0: any free port (printed)
    token: str = ""  # required (or generated) when host is not a loopback address
    order: str = "score"  # score: highest first; uncertain: nearest the threshold; random
    min_score: float = 0.0  # tiles scoring below this are not in the queue
    threshold: float = -1.0  # below 0: the threshold the predictions were labelled with
    positive_class: str = ""  # default: the predictions' positive class
    negative_class: str = ""  # default: the other class of a binary model, else not_<positive>
    reviewer: str = ""  # default: the OS user (the page can change it)
    lease_seconds: float = 300.0  # a tile handed out stays with its reviewer this long
    seed: int = 42  # the random order
    export: str = ""  # labels.csv or labels.geojson: write the decisions and stop

    def __post_init__(self) -> None:
        problems = []
        if not self.db:
            problems.append("--db is required (the review's SQLite file)")
        if not self.export and not (self.predictions and self.source.tiles):
            problems.append("--predictions and --tiles are required (or --export with --db)")
        if self.export and not self.export.lower().endswith((".csv", ".geojson")):
            problems.append(f"--export={self.export}: name a .csv or .geojson file")
        if not 0 <= self.port <= 65535 or self.lease_seconds <= 0:
            problems.append("--port must be 0-65535 and --lease_seconds positive")
        one_of(problems, "order", self.order, REVIEW_ORDERS)
        check(problems)
