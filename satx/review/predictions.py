"""What a finished `satx.predict` output offers the review: classes, threshold, model, rows.

The folder is opened with `satx.predict.result.PredictRun` (predict_run.json is written last,
so its presence means every chunk is done); rows are streamed from its first merged file
(CSV, JSON lines, GeoJSON) through the store (local or gs://). Which rows are hits is the rule
of predict's `Labeller`, at the review's threshold and positive class.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from satx.config import ReviewConfig
from satx.errors import InputError
from satx.io import storage
from satx.predict.outputs import Labeller
from satx.predict.result import CONFIG_NAME, ROW_FORMATS, PredictRun, predictions_name


@dataclass(frozen=True)
class Row:
    """One predicted tile, as the review needs it."""

    z: int
    x: int
    y: int
    score: float  # probability of the positive class
    hit: bool  # the predictions call it positive


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

    def to_meta(self) -> dict[str, str]:
        """What the review database records about its predictions."""
        return {
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
    positive = config.positive_class or run.positive_class or ""
    if not positive and len(class_names) == 2:
        positive = class_names[1]
    if positive not in class_names:
        raise InputError(
            f"--positive_class={positive or '(none)'}: the predictions' classes are "
            f"{list(class_names)}; name the class the mappers confirm"
        )
    others = [c for c in class_names if c != positive]
    negative = config.negative_class or (others[0] if len(others) == 1 else f"not_{positive}")
    threshold = config.threshold if config.threshold >= 0 else run.threshold
    identity = store.read_bytes(CONFIG_NAME) if store.exists(CONFIG_NAME) else b""
    digest = hashlib.sha256(identity + rows_file.encode())
    digest.update(str(store.size(rows_file)).encode())
    return Predictions(
        url=store.url(""),
        fingerprint=digest.hexdigest()[:16],
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


def _records(predictions: Predictions) -> Iterator[dict[str, Any]]:
    store = storage.open_store(predictions.url)
    with store.open(predictions.rows_file) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8")
        if predictions.rows_file.endswith(".csv"):
            yield from csv.DictReader(text)
        elif predictions.rows_file.endswith(".jsonl"):
            yield from (json.loads(line) for line in text if line.strip())
        else:
            yield from (f["properties"] for f in json.load(text)["features"])


def iter_rows(predictions: Predictions) -> Iterator[Row | None]:
    """Every predicted tile in file order; None for a row without a tile address.

    Rows of tiles named by path only (a folder not laid out as z/x/y) have no address: the
    review cannot show their neighbourhood or fetch them from a tile source.
    """
    column = f"score_{predictions.positive}"
    labeller = Labeller.make(
        list(predictions.class_names), predictions.positive, predictions.threshold
    )
    for record in _records(predictions):
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
