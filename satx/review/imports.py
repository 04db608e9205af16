"""Filling a review database: the queue, once, from predictions or sites; older schemas upgraded.

The queue's rows live in `tiles`: a predicted tile, or a site shown at its best tile. A site's
facts (id, size, known/new) are in `sites` and its member tiles in `site_tiles`, keyed by the
queue row, so leases, decisions, undo and the overview work the same for both.
"""

from __future__ import annotations

import json
import math
import sqlite3
import zlib
from collections.abc import Iterable

from satx.errors import InputError
from satx.review.predictions import Predictions, Row
from satx.review.store import ReviewStore

BATCH = 10_000
OVERVIEW_CELLS = 64  # the overview's longer side, in cells


def load_queue(
    store: ReviewStore, predictions: Predictions, rows: Iterable[Row | None], seed: int
) -> dict:
    """Import the queue once; a reopened database must hold the same predictions (or sites).

    Returns counts: `tiles` (queue rows: tiles or sites), `unaddressed` rows without a z/x/y,
    `duplicates`.
    """
    meta = store.meta()
    if meta:
        if meta.get("predictions_fingerprint") != predictions.fingerprint:
            raise InputError(
                f"--db={store.path} reviews other "
                f"{'sites' if meta.get('unit') == 'site' else 'predictions'} "
                f"({meta.get('sites') or meta.get('predictions')}); open it with those, or "
                "start a new --db for these"
            )
        return json.loads(meta["import_counts"])
    counts = {"tiles": 0, "unaddressed": 0, "duplicates": 0}
    with store.transaction() as conn:
        batch: list[Row] = []
        for row in rows:
            if row is None:
                counts["unaddressed"] += 1
                continue
            counts["duplicates"] += 1  # less the rows inserted, below
            batch.append(row)
            if len(batch) >= BATCH:
                counts["tiles"] += _insert(conn, batch, predictions.threshold, seed)
                batch = []
        counts["tiles"] += _insert(conn, batch, predictions.threshold, seed)
        counts["duplicates"] -= counts["tiles"]
        _place_cells(conn)
        values = {**predictions.to_meta(), "import_counts": json.dumps(counts)}
        conn.executemany("INSERT INTO meta VALUES (?, ?)", sorted(values.items()))
    return counts


def _insert(conn: sqlite3.Connection, rows: list[Row], threshold: float, seed: int) -> int:
    before = conn.total_changes
    conn.executemany(
        "INSERT OR IGNORE INTO tiles (z, x, y, score, hit, uncertainty, shuffle, cx, cy) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0)",
        [
            (
                r.z,
                r.x,
                r.y,
                r.score,
                int(r.hit),
                abs(r.score - threshold),
                zlib.crc32(f"{seed}/{r.z}/{r.x}/{r.y}".encode()),
            )
            for r in rows
        ],
    )
    inserted = conn.total_changes - before
    sites = [r for r in rows if r.site is not None]
    if sites:
        queue_id = "(SELECT id FROM tiles WHERE z = ? AND x = ? AND y = ?)"
        conn.executemany(
            f"INSERT INTO sites VALUES ({queue_id}, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (r.z, r.x, r.y, s.site_id, len(s.tiles), s.mean_score, s.lon, s.lat)
                + (None if s.known is None else int(s.known), s.distance_m, s.nearest_known)
                for r in sites
                if (s := r.site) is not None
            ],
        )
        conn.executemany(
            f"INSERT OR IGNORE INTO site_tiles VALUES ({queue_id}, ?, ?, ?, ?)",
            [(r.z, r.x, r.y, *t) for r in sites if r.site is not None for t in r.site.tiles],
        )
    return inserted


def _place_cells(conn: sqlite3.Connection) -> None:
    # The overview's grid over the tiles' extent in web-mercator (x, y as fractions).
    (z,) = conn.execute("SELECT max(z) FROM tiles").fetchone()
    if z is None:
        return
    conn.create_function("fx", 2, lambda v, zz: (v + 0.5) * 2.0 ** (z - zz))
    x0, x1, y0, y1 = conn.execute(
        "SELECT min(fx(x, z)), max(fx(x, z)), min(fx(y, z)), max(fx(y, z)) FROM tiles"
    ).fetchone()
    side = max(x1 - x0, y1 - y0, 1.0)
    step = max(side / OVERVIEW_CELLS, 1.0)  # a cell: at least one tile
    conn.execute(
        "UPDATE tiles SET cx = CAST((fx(x, z) - ?) / ? AS INTEGER), "
        "cy = CAST((fx(y, z) - ?) / ? AS INTEGER)",
        (x0, step, y0, step),
    )
    grid = {
        "cols": math.floor((x1 - x0) / step) + 1,
        "rows": math.floor((y1 - y0) / step) + 1,
    }
    conn.execute("INSERT INTO meta VALUES ('overview_grid', ?)", (json.dumps(grid),))
