"""A predictions folder: its file names, and the run that filled it (`PredictRun`).

Layout of `--output` (local folder or gs:// prefix):

    predict_config.json         what this output is for (config + input fingerprint); a re-run
                                must match it to resume
    parts/00000012.csv|.jsonl|.geojsonl|.errors.csv
                                one file per format per chunk, each written atomically
    parts/00000012.done.json    written last: the chunk is finished (the resume index)
    progress.json               chunks and tiles done so far, rate, ETA (for people)
    predictions.geojson|.csv|.jsonl, errors.csv
                                merged in chunk order when every chunk is done
    predict_run.json            the `PredictRun`, written last: the folder is complete
    predictions.parquet/chunk-00000012.parquet, parts/00000012.raster.npz, predictions.tif
                                GeoParquet chunks; the score raster's parts and its COG
    windows.csv, parts/00000012.windows.csv
                                --context: each window's row (its footprint and scores)
    _mask/<sha16>-z<Z>-<buffer>m-<threshold>.npy
                                a --mask's tile keys (kept by --overwrite: named by content)

`LAYOUT` is what predict owns there (`satx.io.claim`): `--overwrite` deletes nothing else.

Review and later stages open a folder with `PredictRun.load` and find its files here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from satx.errors import InputError
from satx.io import claim, storage
from satx.io.run_record import Record
from satx.predict.formats import FORMATS, ROW_FORMATS, format_of
from satx.predict.windows import WINDOWS_NAME

CONFIG_NAME = "predict_config.json"
RUN_NAME = "predict_run.json"
PROGRESS_NAME = "progress.json"
ERRORS_NAME = "errors.csv"
MASK_DIR = "_mask"  # the mask's tiles, built once
LAYOUT = claim.Layout(
    "predict",
    owned=(
        CONFIG_NAME,
        RUN_NAME,
        PROGRESS_NAME,
        ERRORS_NAME,
        WINDOWS_NAME,
        *(f.owned for f in FORMATS.values()),
        "parts/",
        f"{MASK_DIR}/",
    ),
    legacy=(CONFIG_NAME,),
)


def predictions_name(fmt: str) -> str:
    """The merged output of a format (`predictions.csv`)."""
    return FORMATS[fmt].merged


@dataclass(frozen=True)
class ThisRun(Record):
    """What this session scored, and how fast."""

    tiles: int = 0
    seconds: float = 0.0
    tiles_per_s: float = 0.0


@dataclass(frozen=True)
class Projection(Record):
    """The time `tiles` tiles would take at this session's rate."""

    tiles: int = 0
    devices: int = 1
    seconds: float | None = None
    human: str | None = None


@dataclass(frozen=True)
class DryRun(Record):
    """What a run would score and how long the model alone would take here (`--dry_run`)."""

    tiles: int
    input: dict[str, Any]
    model: str
    runtime: str
    devices: int
    model_tiles_per_s: float
    projected_seconds: float
    projected_human: str


@dataclass(frozen=True)
class PredictRun(Record):
    """A finished prediction run (predict_run.json).

    Attributes:
        tiles, scored, errors, missing, kept: the whole output's counts (missing tiles are
            errors without imagery; kept rows scored at least `--min_score`).
        files: format (and `errors`) -> URL of the merged file.
        this_run, projection: this session's rate, and a country's time at it.
        model, class_names, positive_class, threshold, dtype_policy, runtime: how rows were
            scored and labelled.
        input: the input's fingerprint.
        command, config, versions: the run record.
    """

    tiles: int = 0
    scored: int = 0
    errors: int = 0
    missing: int = 0
    kept: int = 0
    files: dict[str, str] = field(default_factory=dict)
    this_run: ThisRun = field(default_factory=ThisRun)
    projection: Projection = field(default_factory=Projection)
    model: str = ""
    class_names: tuple[str, ...] = ()
    positive_class: str | None = None
    threshold: float = 0.5
    dtype_policy: str = ""
    runtime: str = "tf"
    input: dict[str, Any] = field(default_factory=dict)
    command: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, root: str) -> PredictRun:
        """The run of a finished predictions folder (local or gs://).

        Raises:
            InputError: the folder has no predict_run.json (predict did not finish there).
        """
        return cls.load_finished(root, RUN_NAME, "--predictions", "satx.predict")

    @property
    def min_score(self) -> float:
        """The run's `--min_score`: its files hold no scored tile below it."""
        recorded = self.config.get("outputs", self.config)  # a flat config before 2026-12-07
        return float(recorded.get("min_score", 0.0) or 0.0)

    def rows_file(self) -> str | None:
        """The merged predictions file later stages read (CSV first), if the run wrote one."""
        return next((predictions_name(f) for f in ROW_FORMATS if f in self.files), None)

    def positive(self, asked: str = "") -> str:
        """The class whose score later stages read: `asked`, the run's, or the second of two.

        Raises:
            InputError: none of those names one of the run's classes.
        """
        positive = asked or self.positive_class or ""
        if not positive and len(self.class_names) == 2:
            positive = self.class_names[1]
        if positive not in self.class_names:
            raise InputError(
                f"--positive_class={positive or '(none)'}: the predictions' classes are "
                f"{list(self.class_names)}; name the class to look for"
            )
        return positive


def fingerprint(root: str, rows_file: str) -> str:
    """A short hash that changes when the run, its model or its rows change."""
    store = storage.open_store(root)
    identity = store.read_bytes(CONFIG_NAME) if store.exists(CONFIG_NAME) else b""
    digest = hashlib.sha256(identity + rows_file.encode())
    spec = format_of(rows_file)
    size = spec.size(store, root) if spec.size else store.size(rows_file)
    digest.update(str(size).encode())
    return digest.hexdigest()[:16]


def iter_records(root: str, rows_file: str) -> Iterator[dict[str, Any]]:
    """Every row of a predictions file (CSV, JSON lines, GeoJSON, GeoParquet) as a dict, in order.

    CSV values stay text; rows of tiles named by path only have an empty (or null) `z`.
    GeoParquet rows come from the chunk files, without their geometry.
    """
    read = format_of(rows_file).read_rows
    assert read is not None, f"{rows_file} holds no rows"
    yield from read(root, rows_file)
