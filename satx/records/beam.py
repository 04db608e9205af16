"""make_records on Apache Beam (`--engine=beam`): the local engine's steps as pipeline stages.

    listing (driver: paths and labels, no bytes)
      -> scan: hash every file, in chunks            (workers)
      -> plan: quarantine, splits, shard assignment  (one worker: metadata of every tile)
      -> claim: check or record the plan digest, skip shards already written
      -> write: validate, encode and write each shard, then its `_progress/` record (workers)
      -> finish: quarantine list, manifest.json last (one worker)

Every stage calls the local engine's own functions (`plan_from_scan`, `write_shard`,
`prepare_output`, `finish_records`), so the plan, the shards (byte for byte) and the manifest
are the local engine's. A shard becomes visible by an atomic rename (or a completed upload)
before its progress record is written, so a run killed at any point, driver included, resumes:
the re-run plans again (same inputs, same plan), skips the shards with a record, writes the
rest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from typing import Any

from satx.config import RecordsConfig
from satx.errors import RecordsError
from satx.io import beam as beam_io
from satx.io import storage
from satx.records.inputs import fetch_failure, list_input
from satx.records.make import (
    PROGRESS_DIR,
    claim_output,
    finish_records,
    locked_output,
    prepare_output,
    record_shard,
)
from satx.records.manifest import Manifest, load_manifest
from satx.records.plan import (
    SCAN_CHUNK,
    Plan,
    ShardTask,
    hash_files,
    plan_from_scan,
    scanned,
)
from satx.records.windows import window_image
from satx.records.worker import WriteSettings, write_shard
from satx.tiles.refs import Listing, Rejection, TileRef
from satx.tiles.sources import open_source
from satx.tiles.windows import Window

log = logging.getLogger(__name__)


LISTING = f"{PROGRESS_DIR}/listing.jsonl"  # the input listing, one tile per line


def _write_listing(out: storage.Store, tiles: tuple[TileRef, ...]) -> list[tuple[int, int, int]]:
    """Write the listing where every worker can read it; return chunks `(first, start, length)`.

    The listing goes to the workers as a file read by byte ranges rather than inside the
    pipeline: a `Create` of every tile is pickled and compressed into the pipeline itself, and
    a country's listing would not fit.
    """
    lines = [json.dumps(t.to_row()).encode() + b"\n" for t in tiles]
    chunks, offset = [], 0
    for first in range(0, len(lines), SCAN_CHUNK):
        size = sum(len(line) for line in lines[first : first + SCAN_CHUNK])
        chunks.append((first, offset, size))
        offset += size
    out.write_bytes(LISTING, b"".join(lines))
    return chunks


def _parse_listing(data: bytes) -> list[TileRef]:
    return [TileRef.from_row(json.loads(line)) for line in data.splitlines()]


FETCHED = f"{PROGRESS_DIR}/tiles"  # places inputs: tiles fetched by the workers, {z}/{x}/{y}


def _fetch(tiles: list[TileRef], config: RecordsConfig) -> list[Any]:
    """Fetch places' tiles into the output's `_progress/tiles` (kept across a killed run).

    Per tile `(sha256, size, location)`, or `(reason, detail)` when the source has none.
    """
    if not tiles:
        return []
    if config.context > 1:
        return _fetch_windows(tiles, config)
    store = storage.open_store(config.output)
    names = [f"{FETCHED}/{t.tile.z}/{t.tile.x}/{t.tile.y}" for t in tiles]
    todo = [i for i, name in enumerate(names) if not store.exists(name)]
    data, errors = beam_io.once_per_process(open_source, config.source).read(
        [tiles[i].tile for i in todo]
    )
    fresh = {i: (data[k], errors.get(k)) for k, i in enumerate(todo)}
    out: list[Any] = []
    for i, (tile, name) in enumerate(zip(tiles, names, strict=True)):
        blob, error = fresh.get(i, (None, None))
        if error is not None:
            failed = fetch_failure(tile, error)
            out.append((failed.reason, failed.detail))
            continue
        if blob is None:
            blob = store.read_bytes(name)
        else:
            store.write_bytes(name, blob)
        out.append((hashlib.sha256(blob).hexdigest(), len(blob), store.url(name)))
    return out


def _fetch_windows(refs: list[TileRef], config: RecordsConfig) -> list[Any]:
    """`--context`: each place's window made from its tiles (`records.windows.window_image`).

    The window's image, not its tiles, is kept in `_progress/tiles` (`{z}/{x}/{y}+C`).
    """
    size, store = config.context, storage.open_store(config.output)
    windows = [Window.of(r.tile, size) for r in refs]  # type: ignore[arg-type]
    names = [f"{FETCHED}/{w.z}/{w.x}/{w.y}+{size}" for w in windows]
    todo = [i for i, name in enumerate(names) if not store.exists(name)]
    wanted = sorted({t for i in todo for t in windows[i].tiles}, key=lambda t: (t.x, t.y))
    data, errors = beam_io.once_per_process(open_source, config.source).read(wanted)
    found = {t: d for k, (t, d) in enumerate(zip(wanted, data, strict=True)) if k not in errors}
    failed = {wanted[k]: error for k, error in errors.items()}
    out: list[Any] = []
    fresh = set(todo)
    for i, (ref, name) in enumerate(zip(refs, names, strict=True)):
        if i in fresh:
            image = window_image(ref, windows[i], found, failed, config.image_size)
            if isinstance(image, Rejection):
                out.append((image.reason, image.detail))
                continue
            blob = image.encoded
            store.write_bytes(name, blob)
        else:
            blob = store.read_bytes(name)
        out.append((hashlib.sha256(blob).hexdigest(), len(blob), store.url(name)))
    return out


def _scan_chunk(chunk: tuple[int, int, int], config: RecordsConfig) -> tuple[int, tuple[int, list]]:
    """Each listed tile's scan: files hashed where they are, places fetched first."""
    first, offset, size = chunk
    store = storage.open_store(config.output)
    tiles = _parse_listing(store.read_range(LISTING, offset, size))
    places = [i for i, t in enumerate(tiles) if t.location is None]
    files = [i for i, t in enumerate(tiles) if t.location is not None]
    entries: list[Any] = [None] * len(tiles)
    for i, entry in zip(places, _fetch([tiles[i] for i in places], config), strict=True):
        entries[i] = entry
    for i, entry in zip(files, hash_files([tiles[i].location for i in files]), strict=True):
        entries[i] = entry
    return 0, (first, entries)


def _plan(
    keyed: tuple[int, Iterable[tuple[int, list]]],
    listing: Listing,
    config: RecordsConfig,
) -> Plan:
    """The plan from every chunk's scan and the listing file (one worker, metadata only).

    A places input's tiles that could not be fetched join the listing's unusable entries, as
    the local engine's fetch puts them, so both engines plan from the same Listing.
    """
    tiles = _parse_listing(storage.open_store(config.output).read_bytes(LISTING))
    entries = [e for _, chunk in sorted(keyed[1], key=lambda c: c[0]) for e in chunk]
    kept, hashed, failed = [], [], []
    for tile, entry in zip(tiles, entries, strict=True):
        if isinstance(entry, tuple) and len(entry) == 3:  # fetched: (sha256, size, location)
            kept.append(dataclasses.replace(tile, location=entry[2]))
            hashed.append(entry[:2])
        elif isinstance(entry, tuple) and isinstance(entry[1], str):  # not fetched
            failed.append(Rejection(tile.source_id, tile.label, *entry))
        else:  # a file: (sha256, size), or why it could not be read
            kept.append(tile)
            hashed.append(entry)
    full = dataclasses.replace(listing, refs=tuple(kept), rejected=(*listing.rejected, *failed))
    plan = plan_from_scan(full, scanned(kept, hashed), config)
    if not plan.tasks:
        raise RecordsError(
            f"{config.input}: no usable tiles (all {len(plan.rejections)} were quarantined)"
        )
    return plan


def _todo(plan: Plan, out_root: str) -> list[ShardTask]:
    done = prepare_output(storage.open_store(out_root), plan)
    if done:
        log.info("resuming: %d of %d shards already written", len(done), len(plan.tasks))
    return [t for t in plan.tasks if t.name not in done]


def _shard_name(task: ShardTask) -> str:
    return task.name


def _write(task: ShardTask, settings: WriteSettings) -> str:
    out = storage.open_store(settings.out_root)
    if isinstance(out, storage.LocalStore):
        os.makedirs(out.root, exist_ok=True)
        result = write_shard(task, settings)
    else:  # gs://: staged in this worker's own scratch folder, then uploaded
        with tempfile.TemporaryDirectory(prefix="satx-shard-") as stage:
            result = write_shard(task, WriteSettings(**{**settings.__dict__, "staging_dir": stage}))
    record_shard(out, result)
    return task.name


def _finish(
    keyed: tuple[int, list[Any]], config: RecordsConfig, start: float, command: str | None
) -> str:
    # The plan and this run's shard names meet here through one GroupByKey (a side input of the
    # whole plan made Beam's state cache walk every object in it to size it).
    (plan,) = [v for v in keyed[1] if isinstance(v, Plan)]
    out = storage.open_store(config.output)
    finish_records(out, plan, config, {"pipeline": time.time() - start}, command)
    return config.output


def _keyed(value: Any) -> tuple[int, Any]:
    return 0, value


def make_records_beam(config: RecordsConfig, command: str | None = None) -> Manifest:
    """`make_records` as a Beam pipeline (see the module docstring); returns the manifest."""
    with locked_output(config):  # the driver holds it for the pipeline
        return _make_records_beam(config, command)


def _make_records_beam(config: RecordsConfig, command: str | None) -> Manifest:
    import apache_beam as beam

    start = time.time()
    out = storage.open_store(config.output)
    scratch = storage.make_staging_dir("satx-records-")
    try:
        claim_output(out, config)
        # the workers read files where they are (gs:// included) and fetch places' tiles
        # into the output, where every worker can reach them
        listed = list_input(config)
        if any(r.location is None for r in listed.refs):
            source = open_source(config.source)  # checks it, and names it (redacted)
            source.close()
            listed = dataclasses.replace(listed, tile_source=source.description)
        log.info(
            "found %d tiles (%s layout) in %s; running on Beam",
            len(listed.refs),
            listed.layout,
            config.input,
        )
        settings = WriteSettings(
            out.root,
            None,
            config.stored_size,
            config.on_size_mismatch,
            config.compression,
            config.context,
        )
        chunks = _write_listing(out, listed.refs)
        listing = dataclasses.replace(listed, refs=())  # the tiles are in the listing file
        with beam_io.pipeline(config.beam_options, shuffles=True) as p:
            plan = (
                p
                | "chunks" >> beam.Create(chunks)
                | "spread" >> beam.Reshuffle()
                | "scan" >> beam.Map(_scan_chunk, config)
                | "gather" >> beam.GroupByKey()
                | "plan" >> beam.Map(_plan, listing, config)
            )
            written = (
                plan
                | "claim" >> beam.FlatMap(_todo, out.root)
                | "one shard each" >> beam_io.spread(_shard_name)
                | "write" >> beam.Map(_write, settings)
            )
            _ = (
                (plan | "key plan" >> beam.Map(_keyed), written | "key shards" >> beam.Map(_keyed))
                | "together" >> beam.Flatten()
                | "meet" >> beam.GroupByKey()
                | "finish" >> beam.Map(_finish, config, start, command)
            )
        return load_manifest(out.root)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
