"""The review's SQLite database: the queue of predicted tiles, leases, and every decision.

WAL journal with `synchronous=FULL`: a decision is on disk when its request is answered, and
kill -9 at any moment loses no committed decision. Every change is one `BEGIN IMMEDIATE`
transaction, so two reviewers (threads or processes) never take the same tile:

- `tiles` holds the queue (imported once, in one transaction by `satx.review.imports`): each
  predicted tile, or each site at its best tile (`sites`, `site_tiles`), with its state:
  `pending`, or the live decision (`positive`, `negative`, `unrecognized`, `skip`), and lease;
- `decisions` is the log: an undo marks a row `undone_at` rather than deleting it, and a partial
  unique index allows one live decision per tile, so no tile is ever counted twice.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import mercantile

from satx import geo
from satx.errors import InputError, SatxError

DECISIONS = ("positive", "negative", "unrecognized", "skip")
STATES = ("pending", *DECISIONS)
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tiles (
    id INTEGER PRIMARY KEY,
    z INTEGER NOT NULL, x INTEGER NOT NULL, y INTEGER NOT NULL,
    score REAL NOT NULL,
    hit INTEGER NOT NULL,
    uncertainty REAL NOT NULL,
    shuffle INTEGER NOT NULL,
    cx INTEGER NOT NULL, cy INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    lease_reviewer TEXT, lease_until REAL,
    UNIQUE (z, x, y)
);
CREATE INDEX IF NOT EXISTS tiles_score ON tiles (state, score DESC, id);
CREATE INDEX IF NOT EXISTS tiles_uncertain ON tiles (state, uncertainty, id);
CREATE INDEX IF NOT EXISTS tiles_random ON tiles (state, shuffle, id);
CREATE INDEX IF NOT EXISTS tiles_lease ON tiles (lease_reviewer, lease_until);
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tile_id INTEGER NOT NULL REFERENCES tiles (id),
    decision TEXT NOT NULL CHECK (decision IN ('positive', 'negative', 'unrecognized', 'skip')),
    reviewer TEXT NOT NULL,
    decided_at REAL NOT NULL,
    score REAL NOT NULL,
    model_version TEXT NOT NULL,
    undone_at REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS one_live_decision ON decisions (tile_id)
    WHERE undone_at IS NULL;
CREATE TABLE IF NOT EXISTS runs (started_at REAL NOT NULL, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sites (
    tile_id INTEGER PRIMARY KEY REFERENCES tiles (id),
    site_id TEXT NOT NULL UNIQUE,
    tiles INTEGER NOT NULL,
    mean_score REAL NOT NULL,
    lon REAL NOT NULL, lat REAL NOT NULL,
    known INTEGER, distance_m REAL, nearest_known TEXT
);
CREATE TABLE IF NOT EXISTS site_tiles (
    tile_id INTEGER NOT NULL REFERENCES tiles (id),
    z INTEGER NOT NULL, x INTEGER NOT NULL, y INTEGER NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (tile_id, z, x, y)
);
"""
ORDER_BY = {
    "score": "score DESC, id",
    "uncertain": "uncertainty, id",
    "random": "shuffle, id",
}
TILE_COLUMNS = "id, z, x, y, score, hit, state, cx, cy, lease_reviewer, lease_until"


class Conflict(SatxError):
    """The request contradicts the database: another reviewer holds the tile, or it is decided."""


class NotFound(SatxError):
    """No such tile in this review."""


def _upgrade(conn: sqlite3.Connection) -> None:
    """Let a database made before `unrecognized` existed record it (the CHECK is rebuilt)."""
    (sql,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'decisions'"
    ).fetchone()
    if "unrecognized" in sql:
        return
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("ALTER TABLE decisions RENAME TO decisions_before_unrecognized")
    conn.execute("DROP INDEX one_live_decision")
    for statement in SCHEMA.split(";"):  # the decisions table and its index, anew
        if " decisions " in statement or " decisions (" in statement:
            conn.execute(statement)
    conn.execute("INSERT INTO decisions SELECT * FROM decisions_before_unrecognized")
    conn.execute("DROP TABLE decisions_before_unrecognized")
    conn.execute("COMMIT")


def _tile_dict(row: sqlite3.Row) -> dict[str, Any]:
    lon, lat = tile_centre(row["z"], row["x"], row["y"])
    keys = ("id", "z", "x", "y", "score", "state", "cx", "cy")
    return {**{k: row[k] for k in keys}, "hit": bool(row["hit"]), "lon": lon, "lat": lat}


def tile_centre(z: int, x: int, y: int) -> tuple[float, float]:
    """The (lon, lat) of a tile's centre, to ~1 cm."""
    g = geo.geolocate(mercantile.Tile(x, y, z))
    return round(g.lon, 7), round(g.lat, 7)  # as predict's outputs round them


class ReviewStore:
    """One review database; safe to share between the server's threads."""

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path).expanduser()
        self.readonly = readonly
        self._pool: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        if readonly:
            if not self.path.is_file() or self.path.stat().st_size == 0:
                raise InputError(f"--db={self.path}: no such review database (or it is empty)")
            self.meta()  # a file that is not a review fails here, with its name
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connection() as conn:
            conn.executescript(SCHEMA)
            _upgrade(conn)

    def _connect(self) -> sqlite3.Connection:
        try:
            # The pool hands a connection to one thread at a time.
            if self.readonly:
                conn = sqlite3.connect(
                    f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
                )
            else:
                conn = sqlite3.connect(
                    self.path, timeout=30, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
            conn.row_factory = sqlite3.Row
        except sqlite3.DatabaseError as err:
            raise InputError(f"--db={self.path}: not a review database ({err})") from err
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            yield conn
        finally:
            self._pool.put(conn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken before reading (so check-then-write cannot race)."""
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def query(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """Rows of one read-only statement."""
        with self._connection() as conn:
            return conn.execute(sql, tuple(args)).fetchall()

    def close(self) -> None:
        """Close every pooled connection."""
        while not self._pool.empty():
            self._pool.get_nowait().close()

    # -- predictions -------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        """What the database records about its predictions (empty before the first import)."""
        try:
            rows = self.query("SELECT key, value FROM meta")
        except sqlite3.DatabaseError as err:
            raise InputError(f"--db={self.path}: not a review database ({err})") from err
        return {r["key"]: r["value"] for r in rows}

    def record_run(self, started_at: float, record: bytes) -> None:
        """Keep what one server run was (config, predictions, versions), secrets scrubbed."""
        with self.transaction() as conn:
            conn.execute("INSERT INTO runs VALUES (?, ?)", (started_at, record.decode()))

    # -- the queue ---------------------------------------------------------------------------

    def tile(self, tile_id: int) -> dict[str, Any]:
        """One tile of the review (NotFound otherwise)."""
        rows = self.query(f"SELECT {TILE_COLUMNS} FROM tiles WHERE id = ?", (tile_id,))
        if not rows:
            raise NotFound(f"no tile {tile_id} in this review")
        return {**_tile_dict(rows[0]), **self._site(tile_id)}

    def next_tile(
        self, reviewer: str, order: str, min_score: float, lease_s: float, now: float
    ) -> dict[str, Any] | None:
        """The reviewer's leased tile, else lease them the next free one; None when done."""
        with self.transaction() as conn:
            held = conn.execute(
                f"SELECT {TILE_COLUMNS} FROM tiles WHERE lease_reviewer = ? AND lease_until > ? "
                "AND state = 'pending' ORDER BY id LIMIT 1",
                (reviewer, now),
            ).fetchone()
            row = (
                held
                or conn.execute(
                    f"SELECT {TILE_COLUMNS} FROM tiles WHERE state = 'pending' AND score >= ? "
                    "AND (lease_until IS NULL OR lease_until <= ?) "
                    f"ORDER BY {ORDER_BY[order]} LIMIT 1",
                    (min_score, now),
                ).fetchone()
            )
            if row is None:
                return None
            conn.execute(
                "UPDATE tiles SET lease_reviewer = ?, lease_until = ? WHERE id = ?",
                (reviewer, now + lease_s, row["id"]),
            )
        return {**_tile_dict(row), **self._site(row["id"]), "lease_until": now + lease_s}

    def _site(self, tile_id: int) -> dict[str, Any]:
        """`{"site": ...}` for a queue row that is a site (its facts and member tiles), else {}.

        Members are (dx, dy, score) from the tile shown, which is the site's best.
        """
        found = self.query("SELECT * FROM sites WHERE tile_id = ?", (tile_id,))
        if not found:
            return {}
        site = dict(found[0])
        site["known"] = None if site["known"] is None else bool(site["known"])
        members = self.query(
            "SELECT s.x - t.x AS dx, s.y - t.y AS dy, s.score FROM site_tiles s "
            "JOIN tiles t ON t.id = s.tile_id WHERE s.tile_id = ? ORDER BY s.score DESC, dx, dy",
            (tile_id,),
        )
        site["members"] = [[m["dx"], m["dy"], m["score"]] for m in members]
        del site["tile_id"]
        return {"site": site}

    def decide(
        self, tile_id: int, decision: str, reviewer: str, now: float
    ) -> tuple[bool, dict[str, Any]]:
        """Record a decision; (False, the decision) when this exact one is already recorded.

        A retried request is answered with the decision it already made, never stored twice;
        a tile decided otherwise, or leased to someone else, is a Conflict.
        """
        if decision not in DECISIONS:
            raise InputError(f"decision {decision!r}: use one of {DECISIONS}")
        with self.transaction() as conn:
            tile = conn.execute(
                "SELECT id, score, state, lease_reviewer, lease_until FROM tiles WHERE id = ?",
                (tile_id,),
            ).fetchone()
            if tile is None:
                raise NotFound(f"no tile {tile_id} in this review")
            live = conn.execute(
                "SELECT seq, decision, reviewer, decided_at FROM decisions "
                "WHERE tile_id = ? AND undone_at IS NULL",
                (tile_id,),
            ).fetchone()
            if live is not None:
                if live["decision"] == decision and live["reviewer"] == reviewer:
                    return False, dict(live)
                raise Conflict(f"tile {tile_id} is already decided ({live['decision']})")
            holder, until = tile["lease_reviewer"], tile["lease_until"]
            if holder and holder != reviewer and until and until > now:
                raise Conflict(f"tile {tile_id} is leased to {holder}")
            (model,) = conn.execute(
                "SELECT value FROM meta WHERE key = 'model_version'"
            ).fetchone() or ("",)
            seq = conn.execute(
                "INSERT INTO decisions (tile_id, decision, reviewer, decided_at, score, "
                "model_version) VALUES (?, ?, ?, ?, ?, ?)",
                (tile_id, decision, reviewer, now, tile["score"], model),
            ).lastrowid
            conn.execute(
                "UPDATE tiles SET state = ?, lease_reviewer = NULL, lease_until = NULL "
                "WHERE id = ?",
                (decision, tile_id),
            )
        return True, {"seq": seq, "decision": decision, "reviewer": reviewer, "decided_at": now}

    def undo(self, reviewer: str, lease_s: float, now: float) -> dict[str, Any] | None:
        """Take back the reviewer's last live decision; its tile is leased back to them.

        Whatever tile the reviewer held is released, so the undone tile is what they see next.
        """
        with self.transaction() as conn:
            last = conn.execute(
                "SELECT seq, tile_id, decision FROM decisions WHERE reviewer = ? "
                "AND undone_at IS NULL ORDER BY seq DESC LIMIT 1",
                (reviewer,),
            ).fetchone()
            if last is None:
                return None
            conn.execute("UPDATE decisions SET undone_at = ? WHERE seq = ?", (now, last["seq"]))
            conn.execute(
                "UPDATE tiles SET lease_reviewer = NULL, lease_until = NULL "
                "WHERE lease_reviewer = ? AND state = 'pending'",
                (reviewer,),
            )
            conn.execute(
                "UPDATE tiles SET state = 'pending', lease_reviewer = ?, lease_until = ? "
                "WHERE id = ?",
                (reviewer, now + lease_s, last["tile_id"]),
            )
        return {"id": last["tile_id"], "undone": last["decision"]}

    # -- what the page shows and the export writes -------------------------------------------

    def counts(self, min_score: float) -> dict[str, int]:
        """Tiles per state (decided ones whatever their score), hits decided per state."""
        out = dict.fromkeys(STATES, 0)
        hits = {"positive": 0, "negative": 0}
        for r in self.query(
            "SELECT state, hit, count(*) AS n FROM tiles "
            "WHERE state != 'pending' OR score >= ? GROUP BY state, hit",
            (min_score,),
        ):
            out[r["state"]] += r["n"]
            if r["hit"] and r["state"] in hits:
                hits[r["state"]] += r["n"]
        return {**out, "hit_positive": hits["positive"], "hit_negative": hits["negative"]}

    def recent_decision_times(self, since: float) -> list[float]:
        """When the live decisions made after `since` were made, oldest first."""
        rows = self.query(
            "SELECT decided_at FROM decisions WHERE undone_at IS NULL AND decided_at >= ? "
            "ORDER BY decided_at",
            (since,),
        )
        return [r["decided_at"] for r in rows]

    def overview_cells(self, min_score: float) -> list[sqlite3.Row]:
        """Tiles per overview cell and state."""
        return self.query(
            "SELECT cx, cy, state, count(*) AS n FROM tiles "
            "WHERE state != 'pending' OR score >= ? GROUP BY cx, cy, state",
            (min_score,),
        )

    def live_decisions(self) -> list[sqlite3.Row]:
        """Every live decision with its tile (and site), in the order they were made."""
        return self.query(
            "SELECT d.seq, d.tile_id, t.z, t.x, t.y, d.decision, d.reviewer, d.decided_at, "
            "d.score, d.model_version, s.site_id, s.lon AS site_lon, s.lat AS site_lat, "
            "s.tiles AS site_tiles, s.known, s.distance_m FROM decisions d "
            "JOIN tiles t ON t.id = d.tile_id LEFT JOIN sites s ON s.tile_id = d.tile_id "
            "WHERE d.undone_at IS NULL ORDER BY d.seq"
        )

    def site_members(self, tile_id: int) -> list[sqlite3.Row]:
        """The tiles of the site shown at queue row `tile_id` (none for a plain tile)."""
        return self.query(
            "SELECT z, x, y, score FROM site_tiles WHERE tile_id = ? ORDER BY z, x, y", (tile_id,)
        )
