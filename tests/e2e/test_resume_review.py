"""The review server killed with SIGKILL mid-decision loses no committed decision."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from satx.review.store import ReviewStore
from tests.support.review import call_api, start_review_process, write_prediction_set


@pytest.mark.slow
def test_kill_9_loses_no_committed_decision(tmp_path):
    pset = write_prediction_set(tmp_path, side=8)
    db = tmp_path / "review.sqlite"
    proc, url = start_review_process(pset, db)
    acked: dict[int, str] = {}
    stop = threading.Event()

    def review() -> None:
        k = 0
        while not stop.is_set():
            try:
                _, tile = call_api(url, "/api/next", {"reviewer": "ana"})
                decision = ("positive", "negative", "skip")[k % 3]
                call_api(
                    url,
                    "/api/decision",
                    {"id": tile["id"], "decision": decision, "reviewer": "ana"},
                )
            except OSError:
                return  # the server is gone
            acked[tile["id"]] = decision
            k += 1

    worker = threading.Thread(target=review)
    worker.start()
    while len(acked) < 25:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # in the middle of the stream of decisions
    proc.wait()
    stop.set()
    worker.join()

    proc, url = start_review_process(pset, db)
    try:
        _, stats = call_api(url, "/api/stats")
        _, tile = call_api(url, "/api/next", {"reviewer": "ana"})
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"satx.review: stopped; {stats['reviewed']} reviewed" in out  # the summary
    store = ReviewStore(db)
    stored = {
        r["tile_id"]: r["decision"]
        for r in store.query("SELECT tile_id, decision FROM decisions WHERE undone_at IS NULL")
    }
    assert set(acked.items()) <= set(stored.items())  # every answered decision survived
    assert len(stored) - len(acked) <= 1  # at most the one in flight, committed, not answered
    assert stats["reviewed"] == len(stored) and stats["remaining"] == 64 - len(stored)
    assert tile["id"] not in stored  # the restarted review goes on where it stopped
