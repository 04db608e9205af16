"""The review over sites: a queue of sites, the three answers, and the export they make."""

from __future__ import annotations

import csv
import json
import sqlite3

import pytest

from satx.config import SitesConfig
from satx.errors import InputError
from satx.review.export import export_labels, unrecognized_path
from satx.review.store import ReviewStore
from satx.sites.run import find_sites
from tests.support.review import call_api, review_config
from tests.support.sites import BLOBS, site_tile


@pytest.fixture
def sites_dir(site_set, tmp_path):
    out = tmp_path / "sites"
    find_sites(
        SitesConfig(predictions=site_set["predictions"], output=str(out), known=site_set["known"])
    )
    return str(out)


def _config(site_set, sites_dir, db, **overrides):
    return review_config(site_set, db, predictions="", sites=sites_dir, **overrides)


def test_sites_are_queued_and_answered_yes_unrecognized_no(
    site_set, sites_dir, tmp_path, serve_review
):
    review = serve_review(_config(site_set, sites_dir, tmp_path / "r.sqlite"))
    assert call_api(review.url, "/api/config")[1]["unit"] == "site"
    answers = {}
    for decision in ("positive", "unrecognized", "negative"):
        _, item = call_api(review.url, "/api/next", {"reviewer": "ana"})
        site = item["site"]
        answers[site["site_id"]] = decision
        status, _ = call_api(
            review.url, "/api/decision", {"id": item["id"], "decision": decision, "reviewer": "ana"}
        )
        assert status == 200
        if decision == "positive":  # the best site first: the 2x2 campus, shown at its best tile
            assert site["tiles"] == 4 and site["known"] is True and site["nearest_known"] == "k0"
            assert (item["x"], item["y"]) == (site_tile(3, 3).x, site_tile(3, 3).y)
            assert sorted(m[:2] for m in site["members"]) == [[0, 0], [0, 1], [1, 0], [1, 1]]
    status, _ = call_api(review.url, "/api/next", {"reviewer": "ana"})
    assert status == 204  # three sites, three answers
    stats = call_api(review.url, "/api/stats")[1]
    assert (stats["positive"], stats["unrecognized"], stats["negative"]) == (1, 1, 1)
    # u takes back the last answer (the single tile's "no") and hands that site back
    _, undone = call_api(review.url, "/api/undo", {"reviewer": "ana"})
    assert undone["undone"] == "negative"
    _, again = call_api(review.url, "/api/next", {"reviewer": "ana"})
    assert again["site"]["tiles"] == 1
    call_api(
        review.url, "/api/decision", {"id": again["id"], "decision": "negative", "reviewer": "ana"}
    )

    labels = tmp_path / "labels.csv"
    done = export_labels(review.app.store, str(labels))
    rows = list(csv.DictReader(labels.open()))
    # yes -> every campus tile positive; no -> the single tile a hard negative; the L, answered
    # unrecognized, is no label but a point of the field-check layer
    got = {(int(r["x"]), int(r["y"])): r["label"] for r in rows}
    want = {(site_tile(*c).x, site_tile(*c).y): "school" for c in BLOBS["campus"]}
    want |= {(site_tile(*c).x, site_tile(*c).y): "not_school" for c in BLOBS["single"]}
    assert got == want and done["labels"] == {"school": 4, "not_school": 1}
    assert {r["site_id"] for r in rows} == {k for k, v in answers.items() if v != "unrecognized"}
    field = json.loads(unrecognized_path(str(labels)).read_text())["features"]
    assert len(field) == 1 and done["unrecognized"] == 1
    assert field[0]["properties"]["site_id"] == next(
        k for k, v in answers.items() if v == "unrecognized"
    )
    assert field[0]["properties"]["tiles"] == 3 and field[0]["geometry"]["type"] == "Point"


def test_a_sites_review_reopens_and_refuses_other_sites(
    site_set, sites_dir, tmp_path, serve_review
):
    db = tmp_path / "r.sqlite"
    review = serve_review(_config(site_set, sites_dir, db))
    _, item = call_api(review.url, "/api/next", {"reviewer": "ana"})
    call_api(
        review.url,
        "/api/decision",
        {"id": item["id"], "decision": "unrecognized", "reviewer": "ana"},
    )
    review.stop()
    again = serve_review(_config(site_set, sites_dir, db))
    assert again.app.store.counts(0.0)["unrecognized"] == 1
    other = tmp_path / "other"
    find_sites(SitesConfig(predictions=site_set["predictions"], output=str(other), max_gap=4))
    with pytest.raises(InputError, match="reviews other sites"):
        serve_review(_config(site_set, str(other), db))
    with pytest.raises(InputError, match="these sites are of class 'school'"):
        serve_review(
            _config(site_set, sites_dir, tmp_path / "new.sqlite", positive_class="not_school")
        )


def test_a_database_made_before_unrecognized_takes_it_and_keeps_its_decisions(tmp_path):
    db = tmp_path / "old.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript(
        """
        CREATE TABLE tiles (id INTEGER PRIMARY KEY, z INTEGER NOT NULL, x INTEGER NOT NULL,
            y INTEGER NOT NULL, score REAL NOT NULL, hit INTEGER NOT NULL,
            uncertainty REAL NOT NULL, shuffle INTEGER NOT NULL, cx INTEGER NOT NULL,
            cy INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending', lease_reviewer TEXT,
            lease_until REAL, UNIQUE (z, x, y));
        CREATE TABLE decisions (seq INTEGER PRIMARY KEY AUTOINCREMENT,
            tile_id INTEGER NOT NULL REFERENCES tiles (id),
            decision TEXT NOT NULL CHECK (decision IN ('positive', 'negative', 'skip')),
            reviewer TEXT NOT NULL, decided_at REAL NOT NULL, score REAL NOT NULL,
            model_version TEXT NOT NULL, undone_at REAL);
        CREATE UNIQUE INDEX one_live_decision ON decisions (tile_id) WHERE undone_at IS NULL;
        INSERT INTO tiles VALUES (1, 18, 5, 5, 0.9, 1, 0.4, 7, 0, 0, 'positive', NULL, NULL);
        INSERT INTO tiles VALUES (2, 18, 5, 6, 0.8, 1, 0.3, 8, 0, 0, 'pending', NULL, NULL);
        INSERT INTO decisions VALUES (1, 1, 'positive', 'ana', 1000.0, 0.9, 'm', NULL);
        """
    )
    conn.close()
    store = ReviewStore(db)
    assert [r["decision"] for r in store.live_decisions()] == ["positive"]
    store.decide(2, "unrecognized", "ana", 1001.0)
    assert [r["decision"] for r in store.live_decisions()] == ["positive", "unrecognized"]
    with pytest.raises(sqlite3.IntegrityError):  # still one live decision per tile
        store.query("INSERT INTO decisions VALUES (9, 2, 'negative', 'bo', 1002.0, 0.8, 'm', NULL)")
