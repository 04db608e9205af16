"""What a finished `satx.predict` output offers the review: classes, threshold, model, rows.

The folder is opened with `satx.predict.result.PredictRun` (predict_run.json is written last,
so its presence means every chunk is done); rows are streamed from its first merged file
(CSV, JSON lines, GeoJSON) through the store (local or gs://). Which rows are hits is the rule
of predict's `Labeller`, at the review's threshold and positive class.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from satx.config import ReviewConfig
from satx.errors import InputError
from satx.io import storage
from satx.predict.outputs import Labeller
from satx.predict.result import (
    ROW_FORMATS,
    PredictRun,
    fingerprint,
    iter_records,
    predictions_name,
)


@dataclass(frozen=True)
class Site:
    """A candidate site of `satx.sites`: what the page shows besides its best tile."""

    site_id: str
    tiles: tuple[tuple[int, int, int, float], ...]  # z, x, y, score of each member tile
    mean_score: float
    lon: float
    lat: float
    known: bool | None = None  # near a known school (None: no known schools were given)
    distance_m: float | None = None
    nearest_known: str | None = None


@dataclass(frozen=True)
class Row:
    """One item of the queue: a predicted tile, or a site shown at its best tile."""

    z: int
    x: int
    y: int
    score: float  # probability of the positive class (a site's: its best tile's)
    hit: bool  # the predictions call it positive
    site: Site | None = None


@dataclass(frozen=True)
class Predictions:
    """A prediction run opened for review."""

    url: str
    fingerprint: str  # changes when the run, its model or its rows change
    class_names: tuple[str, ...]
    positive: str  # the label a confirmed tile gets
    negative: str  # the label a rejected tile gets (a hard negative)
    threshold: float
    model: str  # the model's path, stored with each decision
    rows_file: str
    unit: str = "tile"  # what the queue holds: tiles, or sites (`satx.sites` output)
    sites: str = ""  # the sites folder, when the unit is site

    def to_meta(self) -> dict[str, str]:
        """What the review database records about its predictions."""
        return {
            "unit": self.unit,
            "sites": self.sites,
            "predictions": self.url,
            "predictions_fingerprint": self.fingerprint,
            "class_names": json.dumps(list(self.class_names)),
            "positive_class": self.positive,
            "negative_class": self.negative,
            "threshold": repr(self.threshold),
            "model_version": self.model,
        }


def open_predictions(config: ReviewConfig) -> Predictions:
    """Open `config.predictions` and resolve the classes and threshold the review uses."""
    run = PredictRun.load(config.predictions)
    store = storage.open_store(config.predictions)
    rows_file = run.rows_file()
    if rows_file is None or not store.exists(rows_file) or not run.class_names:
        wanted = "/".join(predictions_name(f) for f in ROW_FORMATS)
        raise InputError(f"--predictions={config.predictions}: no {wanted} found")
    class_names = run.class_names
    positive = run.positive(config.positive_class)
    others = [c for c in class_names if c != positive]
    negative = config.negative_class or (others[0] if len(others) == 1 else f"not_{positive}")
    threshold = config.threshold if config.threshold >= 0 else run.threshold
    return Predictions(
        url=store.url(""),
        fingerprint=fingerprint(config.predictions, rows_file),
        class_names=class_names,
        positive=positive,
        negative=negative,
        threshold=threshold,
        model=run.model,
        rows_file=rows_file,
    )


def as_recorded(
    predictions: Predictions, meta: Mapping[str, str], config: ReviewConfig
) -> Predictions:
    """The predictions as a reopened database reviews them: its classes and threshold.

    A flag that asks for other ones is refused: the queue's hits, the page and the export all
    follow what the database recorded when it was made.
    """
    recorded = {
        "threshold": float(meta["threshold"]),
        "positive_class": meta["positive_class"],
        "negative_class": meta["negative_class"],
    }
    asked = {
        "threshold": config.threshold if config.threshold >= 0 else None,
        "positive_class": config.positive_class or None,
        "negative_class": config.negative_class or None,
    }
    for name, value in asked.items():
        if value is not None and value != recorded[name]:
            raise InputError(
                f"--{name}={value}: --db={config.db} reviews with {name} {recorded[name]}; "
                f"omit --{name} to continue that review, or start a new --db"
            )
    return replace(
        predictions,
        threshold=recorded["threshold"],
        positive=recorded["positive_class"],
        negative=recorded["negative_class"],
    )


def iter_rows(predictions: Predictions) -> Iterator[Row | None]:
    """Every predicted tile in file order; None for a row without a tile address.

    Rows of tiles named by path only (a folder not laid out as z/x/y) have no address: the
    review cannot show their neighbourhood or fetch them from a tile source.
    """
    column = f"score_{predictions.positive}"
    labeller = Labeller.make(
        list(predictions.class_names), predictions.positive, predictions.threshold
    )
    for record in iter_records(predictions.url, predictions.rows_file):
        if record.get("z") in (None, ""):
            yield None
            continue
        score = float(record[column])
        yield Row(
            z=int(record["z"]),
            x=int(record["x"]),
            y=int(record["y"]),
            score=score,
            hit=labeller.is_hit(score, record["label"]),
        )
