"""The review database: the queue orders, leases, decisions, undo, reopening, export."""

from __future__ import annotations

import csv
import json

import mercantile
import pytest

from satx.errors import InputError
from satx.review.export import export_labels
from satx.review.imports import load_queue
from satx.review.predictions import iter_rows, open_predictions
from satx.review.store import Conflict, NotFound, ReviewStore
from satx.review.summary import stats, wilson_interval
from tests.support.review import review_config, write_prediction_set

LEASE = 300.0


def open_store(pset, tmp_path, **overrides):
    config = review_config(pset, tmp_path / "review.sqlite", **overrides)
    predictions = open_predictions(config)
    store = ReviewStore(config.db)
    counts = load_queue(store, predictions, iter_rows(predictions), config.seed)
    return store, counts, predictions


def test_predictions_are_read_as_predict_wrote_them(prediction_set, tmp_path):
    store, counts, predictions = open_store(prediction_set, tmp_path)
    assert counts == {"tiles": 225, "unaddressed": 0, "duplicates": 0}
    assert (predictions.positive, predictions.negative) == ("school", "not_school")
    assert predictions.model == "models/school/export/3"
    rows = store.query("SELECT z, x, y, score, hit FROM tiles")
    scores = prediction_set["scores"]
    assert {mercantile.Tile(r["x"], r["y"], r["z"]): r["score"] for r in rows} == pytest.approx(
        scores
    )
    assert all(bool(r["hit"]) == (r["score"] >= 0.5) for r in rows)


def test_each_order_hands_out_tiles_as_it_promises(prediction_set, tmp_path):
    store, _, _ = open_store(prediction_set, tmp_path)
    scores = sorted(prediction_set["scores"].values())

    def first_five(order: str, min_score: float = 0.0) -> list[float]:
        out = []
        for k in range(5):  # five reviewers: each takes the best free tile
            out.append(store.next_tile(f"{order}{k}", order, min_score, LEASE, 1000.0)["score"])
        store.query("UPDATE tiles SET lease_reviewer = NULL, lease_until = NULL")
        return out

    assert first_five("score") == scores[::-1][:5]
    by_distance = sorted(scores, key=lambda s: abs(s - 0.5))
    assert first_five("uncertain") == by_distance[:5]
    random_order = first_five("random")
    assert random_order != scores[::-1][:5] and random_order == first_five("random")
    assert min(first_five("random", min_score=0.9)) >= 0.9


def test_leases_keep_reviewers_apart_until_they_expire(prediction_set, tmp_path):
    store, _, _ = open_store(prediction_set, tmp_path)
    a = store.next_tile("ana", "score", 0.0, LEASE, 1000.0)
    assert store.next_tile("ana", "score", 0.0, LEASE, 1001.0)["id"] == a["id"]  # a reload
    b = store.next_tile("ben", "score", 0.0, LEASE, 1002.0)
    assert b["id"] != a["id"]
    with pytest.raises(Conflict, match="leased to ana"):
        store.decide(a["id"], "positive", "ben", 1003.0)
    # Ana walked away: after the lease, her tile goes to the next reviewer who asks.
    assert store.next_tile("cho", "score", 0.0, LEASE, 1000.0 + LEASE + 1)["id"] == a["id"]


def test_a_decision_is_stored_once_and_retries_are_answered_with_it(prediction_set, tmp_path):
    store, _, _ = open_store(prediction_set, tmp_path)
    t = store.next_tile("ana", "score", 0.0, LEASE, 1000.0)
    recorded, first = store.decide(t["id"], "positive", "ana", 1001.0)
    again, second = store.decide(t["id"], "positive", "ana", 1002.0)  # the client retried
    assert recorded and not again and second["seq"] == first["seq"]
    with pytest.raises(Conflict, match="already decided"):
        store.decide(t["id"], "negative", "ben", 1003.0)
    with pytest.raises(NotFound):
        store.decide(10**6, "positive", "ana", 1004.0)
    with pytest.raises(InputError, match="decision"):
        store.decide(t["id"], "maybe", "ana", 1005.0)
    assert len(store.live_decisions()) == 1
    assert store.next_tile("ana", "score", 0.0, LEASE, 1006.0)["id"] != t["id"]


def test_undo_takes_back_the_last_decision_and_shows_that_tile_again(prediction_set, tmp_path):
    store, _, _ = open_store(prediction_set, tmp_path)
    decided = []
    for k, decision in enumerate(["positive", "positive", "negative"]):
        t = store.next_tile("ana", "score", 0.0, LEASE, 1000.0 + k)
        store.decide(t["id"], decision, "ana", 1000.5 + k)
        decided.append(t["id"])
    shown = store.next_tile("ana", "score", 0.0, LEASE, 1010.0)  # on screen when u is pressed
    assert store.undo("ana", LEASE, 1011.0) == {"id": decided[-1], "undone": "negative"}
    assert store.next_tile("ana", "score", 0.0, LEASE, 1012.0)["id"] == decided[-1]
    assert store.next_tile("ben", "score", 0.0, LEASE, 1013.0)["id"] == shown["id"]  # released
    store.decide(decided[-1], "skip", "ana", 1014.0)
    assert [r["decision"] for r in store.live_decisions()] == ["positive", "positive", "skip"]
    assert store.query("SELECT count(*) AS n FROM decisions")[0]["n"] == 4  # the log keeps all
    assert store.undo("nobody", LEASE, 1015.0) is None


def test_reopening_continues_and_other_predictions_are_refused(prediction_set, tmp_path):
    store, _, _ = open_store(prediction_set, tmp_path)
    t = store.next_tile("ana", "score", 0.0, LEASE, 1000.0)
    store.decide(t["id"], "negative", "ana", 1001.0)
    store.close()
    again, counts, _ = open_store(prediction_set, tmp_path)
    assert counts["tiles"] == 225 and len(again.live_decisions()) == 1
    assert again.counts(0.0)["pending"] == 224
    other = write_prediction_set(tmp_path / "other", side=4, seed=1)
    with pytest.raises(InputError, match="reviews other predictions"):
        open_store(other, tmp_path)


def test_progress_counts_rate_eta_and_precision(prediction_set, tmp_path):
    store, _, _ = open_store(prediction_set, tmp_path)
    for k in range(10):  # the ten best scores are all hits; one decision a minute
        t = store.next_tile("ana", "score", 0.0, LEASE, 60.0 * k)
        store.decide(t["id"], "positive" if k < 8 else "negative", "ana", 60.0 * k + 1)
    s = stats(store, 0.0, now=60.0 * 9 + 1)
    assert (s["reviewed"], s["remaining"], s["positive"], s["negative"]) == (10, 215, 8, 2)
    assert s["rate_per_hour"] == pytest.approx(3600 * 10 / 540, abs=0.05)
    assert s["eta_s"] == pytest.approx(215 / (10 / 540), rel=1e-3)
    assert s["precision"]["value"] == 0.8 and s["precision"]["hits_checked"] == 10
    low, high = wilson_interval(8, 10)
    assert (s["precision"]["low"], s["precision"]["high"]) == (low, high)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)  # the textbook Wilson interval


def test_export_writes_confirmed_and_rejected_tiles_only(prediction_set, tmp_path):
    store, _, _ = open_store(prediction_set, tmp_path)
    made = {}
    for k, decision in enumerate(["positive", "negative", "skip", "positive"]):
        t = store.next_tile("ana", "uncertain", 0.0, LEASE, 1000.0 + k)
        store.decide(t["id"], decision, "ana", 1700000000.0 + k)
        made[mercantile.Tile(t["x"], t["y"], t["z"])] = decision
    done = export_labels(store, str(tmp_path / "labels.csv"))
    assert done["labels"] == {"school": 2, "not_school": 1}
    with open(tmp_path / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    names = {"positive": "school", "negative": "not_school"}
    want = {t: names[d] for t, d in made.items() if d != "skip"}
    got = {mercantile.Tile(int(r["x"]), int(r["y"]), int(r["z"])): r["label"] for r in rows}
    assert got == want
    assert rows[0]["reviewer"] == "ana" and rows[0]["decided_at"] == "2023-11-14T22:13:20+00:00"
    assert rows[0]["model_version"] == "models/school/export/3"
    export_labels(store, str(tmp_path / "labels.geojson"))
    features = json.loads((tmp_path / "labels.geojson").read_text())["features"]
    by_point = {
        mercantile.tile(*f["geometry"]["coordinates"], f["properties"]["z"]): f["properties"][
            "label"
        ]
        for f in features
    }
    assert by_point == want  # each point is inside its own tile
