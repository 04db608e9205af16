"""Open a review (predictions -> database, tile source, token) and serve it, or export it."""

from __future__ import annotations

import getpass
import logging
import secrets as token_secrets
import signal
import threading
import time
from typing import Any

import mercantile

from satx.config import ReviewConfig
from satx.errors import InputError
from satx.io import secrets
from satx.io.run_record import json_bytes, run_record
from satx.review.app import ReviewApp
from satx.review.export import export_labels
from satx.review.imports import load_queue
from satx.review.predictions import as_recorded, iter_rows, open_predictions
from satx.review.protocol import is_loopback
from satx.review.server import ReviewServer
from satx.review.sites import iter_site_rows, open_sites
from satx.review.store import ReviewStore
from satx.review.summary import stats
from satx.review.tiles import input_source
from satx.tiles.base import MISSING, TileSource
from satx.tiles.sources import open_source

log = logging.getLogger(__name__)


def resolve(config: ReviewConfig) -> ReviewConfig:
    """The config with the reviewer and token filled in.

    Off loopback a token is required: the one given, else a new random one (printed once).
    """
    changes: dict[str, Any] = {}
    if not config.reviewer:
        changes["reviewer"] = getpass.getuser()
    if not config.token and not is_loopback(config.host):
        changes["token"] = token_secrets.token_urlsafe(24)
    resolved = config.with_overrides(changes) if changes else config
    if resolved.token:
        if len(resolved.token) < 16:
            raise InputError("--token: use at least 16 characters (or omit it to get one)")
        secrets.register(resolved.token)
    return resolved


def open_review(config: ReviewConfig, **server_options: Any) -> ReviewServer:
    """Load the predictions into the database (once), open the source, bind the server.

    `server_options` go to `ReviewServer` (`idle_seconds`, `max_connections`).
    """
    config = resolve(config)
    predictions = open_sites(config) if config.sites else open_predictions(config)
    rows = iter_site_rows(predictions) if config.sites else iter_rows(predictions)
    store = ReviewStore(config.db)
    started = time.time()
    counts = load_queue(store, predictions, rows, config.seed)
    predictions = as_recorded(predictions, store.meta(), config)
    if counts["unaddressed"] or counts["duplicates"]:
        log.warning(
            "%d predicted tiles have no z/x/y (tiles named by path only) and %d are repeats: "
            "not in the review",
            counts["unaddressed"],
            counts["duplicates"],
        )
    if config.source.tiles:
        source = open_source(config.source, confined=True)
    else:  # the predictions' own files, or their source
        source = input_source(predictions.url)
    try:
        _probe(source, store, config)
        server = ReviewServer(ReviewApp(config, store, source, config.token), **server_options)
    except OSError as err:
        source.close()
        raise InputError(
            f"--host={config.host} --port={config.port}: cannot listen ({err})"
        ) from err
    except InputError:
        source.close()
        raise
    record = run_record(None, config, predictions=predictions.to_meta(), imported=counts)
    store.record_run(started, json_bytes(record))
    log.info(
        "%d %ss under review (%s vs %s, threshold %.4g, order %s), model %s",
        counts["tiles"],
        predictions.unit,
        predictions.positive,
        predictions.negative,
        predictions.threshold,
        config.order,
        predictions.model,
    )
    return server


PROBE_TILES = 8


def _probe(source: TileSource, store: ReviewStore, config: ReviewConfig) -> None:
    """Refuse a tile source that has none of the queue's first tiles, or fails on them.

    A mistyped --tiles would otherwise serve a page of missing images for hours.
    """
    rows = store.query(
        "SELECT z, x, y FROM tiles WHERE state = 'pending' AND score >= ? "
        "ORDER BY score DESC, id LIMIT ?",
        (config.min_score, PROBE_TILES),
    )
    if not rows:
        return
    tiles = [mercantile.Tile(r["x"], r["y"], r["z"]) for r in rows]
    found, errors = source.read(tiles)
    failed = [i for i, (reason, _) in errors.items() if reason != MISSING]
    if any(found):
        for i in failed:
            log.warning("--tiles: %s", errors[i][1])
        return
    what = errors[failed[0]][1] if failed else errors[0][1]
    raise InputError(
        f"--tiles={source.description}: none of the first {len(tiles)} tiles in the queue has "
        f"an image ({what}); check the path or URL template"
    )


def serve(config: ReviewConfig) -> None:
    """Serve until interrupted; prints the page's address (with a generated token) first."""
    server = open_review(config)
    app = server.app
    for url in server.urls:
        if app.token and not config.token:
            url += f"?token={app.token}"  # generated: the person running this needs to see it
        print(f"satx.review: open {url}", flush=True)
    if app.token and config.token:
        print("satx.review: open it with ?token=<your --token>", flush=True)
    # SIGTERM asks serve_forever to return at its next poll (from a thread: shutdown waits for
    # the loop); raising in the handler instead could interrupt the loop anywhere, holding a lock
    signal.signal(
        signal.SIGTERM, lambda signum, frame: threading.Thread(target=server.shutdown).start()
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        s = stats(app.store, config.min_score, time.time())
        print(
            f"satx.review: stopped; {s['reviewed']} reviewed ({s['positive']} confirmed, "
            f"{s['negative']} rejected, {s['unrecognized']} unrecognized, {s['skip']} skipped), "
            f"{s['remaining']} remaining",
            flush=True,
        )
        app.source.close()
        app.store.close()


def export(config: ReviewConfig) -> dict[str, Any]:
    """Write the decisions of `config.db` to `config.export`."""
    store = ReviewStore(config.db, readonly=True)
    try:
        return export_labels(store, config.export)
    finally:
        store.close()
