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

Review and later stages open a folder with `PredictRun.load` and find its files here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from satx.errors import InputError
from satx.io import storage
from satx.io.run_record import Record

CONFIG_NAME = "predict_config.json"
RUN_NAME = "predict_run.json"
PROGRESS_NAME = "progress.json"
ERRORS_NAME = "errors.csv"
PART_EXT = {"geojson": "geojsonl", "csv": "csv", "jsonl": "jsonl"}
ROW_FORMATS = ("csv", "jsonl", "geojson")  # the order later stages read rows in


def predictions_name(fmt: str) -> str:
    """The merged predictions file of a format (`predictions.csv`)."""
    return f"predictions.{fmt}"


def part_name(chunk: int, suffix: str) -> str:
    """One chunk's part file (`parts/00000012.csv`)."""
    return f"parts/{chunk:08d}.{suffix}"


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
        model, class_names, positive_class, threshold, dtype_policy: how rows were labelled.
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
        store = storage.open_store(root)
        if not store.exists(RUN_NAME):
            raise InputError(
                f"--predictions={root}: no {RUN_NAME}, so not a finished satx.predict output; "
                "run (or resume) satx.predict into it first"
            )
        return cls.read(store.read_bytes(RUN_NAME), store.url(RUN_NAME))

    def rows_file(self) -> str | None:
        """The merged predictions file later stages read (CSV first), if the run wrote one."""
        return next((predictions_name(f) for f in ROW_FORMATS if f in self.files), None)
