"""`python -m satx.review` as people run it: kill -9 and restart, export, make_records, mistakes."""

from __future__ import annotations

import json

import pytest

from satx.review.store import ReviewStore
from tests.support.helpers import cli


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "--db is required"),
        (("--db=r.sqlite",), "--predictions (or --sites) is required"),
        (("--db=r.sqlite", "--export=labels.txt"), "name a .csv or .geojson"),
        (("--db=missing.sqlite", "--export=labels.csv"), "no such review database"),
        (("--db=r.sqlite", "--predictions=EMPTY", "--tiles=t/{z}/{x}/{y}.jpg"), "not a finished"),
        (("--db=r.sqlite", "--order=best"), "order"),
    ],
)
def test_usual_mistakes_get_one_line_and_exit_code_2(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    args = [a.replace("EMPTY", str(tmp_path / "empty")) for a in args]
    args = [a.replace("=r.sqlite", f"={tmp_path / 'r.sqlite'}") for a in args]
    args = [a.replace("=missing.sqlite", f"={tmp_path / 'missing.sqlite'}") for a in args]
    proc = cli("satx.review", *args)
    assert proc.returncode in (1, 2), proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_a_review_without_decisions_exports_only_the_header(prediction_set, tmp_path):
    from satx.review.export import COLUMNS
    from satx.review.imports import load_queue
    from satx.review.predictions import iter_rows, open_predictions
    from tests.support.review import review_config

    config = review_config(prediction_set, tmp_path / "r.sqlite")
    predictions = open_predictions(config)
    load_queue(ReviewStore(config.db), predictions, iter_rows(predictions), 0)
    labels = tmp_path / "labels.csv"
    proc = cli("satx.review", f"--db={config.db}", f"--export={labels}", check=True)
    unrecognized = tmp_path / "labels.unrecognized.geojson"
    assert proc.stdout.splitlines() == [
        f"0 labels (none yet) -> {labels}",
        f"0 unrecognized -> {unrecognized}",
    ]
    assert json.loads(unrecognized.read_text())["features"] == []
    assert labels.read_text() == ",".join(COLUMNS) + "\n"
