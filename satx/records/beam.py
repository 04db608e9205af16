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

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from satx.config import RecordsConfig
from satx.errors import RecordsError
from satx.io import beam as beam_io
from satx.io import failpoints, storage
from satx.records.make import (
    PROGRESS_DIR,
    claim_output,
    discover,
    finish_records,
    prepare_output,
)
from satx.records.manifest import Manifest, load_manifest
from satx.records.plan import SCAN_CHUNK, Plan, ShardTask, hash_files, plan_from_scan, scanned
from satx.records.sources import Discovery, SourceTile
from satx.records.worker import WriteSettings, write_shard

log = logging.getLogger(__name__)


def _scan_chunk(chunk: tuple[int, list[SourceTile]]) -> list[tuple[int, Any]]:
    start, tiles = chunk
    results = scanned(tiles, hash_files([t.location for t in tiles]))
    return [(start + i, r) for i, r in enumerate(results)]


def _plan(results: list[tuple[int, Any]], discovery: Discovery, config: RecordsConfig) -> Plan:
    ordered = [r for _, r in sorted(results, key=lambda item: item[0])]
    plan = plan_from_scan(discovery, ordered, config)
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


def _write(task: ShardTask, settings: WriteSettings) -> str:
    out = storage.open_store(settings.out_root)
    if isinstance(out, storage.LocalStore):
        os.makedirs(out.root, exist_ok=True)
        result = write_shard(task, settings)
    else:  # gs://: staged in this worker's own scratch folder, then uploaded
        with tempfile.TemporaryDirectory(prefix="satx-shard-") as stage:
            result = write_shard(task, WriteSettings(**{**settings.__dict__, "staging_dir": stage}))
    out.write_bytes(f"{PROGRESS_DIR}/{result['name']}.json", json.dumps(result).encode())
    failpoints.hit("make_records.after_shard")
    return task.name


def _finish(
    written: list[str], plan: Plan, config: RecordsConfig, start: float, command: str | None
) -> str:
    del written  # the shards' results are read from _progress/, this run's and earlier ones'
    out = storage.open_store(config.output)
    finish_records(out, plan, config, {"pipeline": time.time() - start}, command)
    return config.output


def make_records_beam(config: RecordsConfig, command: str | None = None) -> Manifest:
    """`make_records` as a Beam pipeline (see the module docstring); returns the manifest."""
    import apache_beam as beam

    start = time.time()
    out = storage.open_store(config.output)
    scratch = storage.make_staging_dir("satx-records-")
    try:
        claim_output(out, config)
        discovery = discover(config, out, Path(scratch))
        log.info(
            "found %d tiles (%s layout) in %s; running on Beam",
            len(discovery.tiles),
            discovery.layout,
            config.input,
        )
        tiles = list(discovery.tiles)
        chunks = [(i, tiles[i : i + SCAN_CHUNK]) for i in range(0, len(tiles), SCAN_CHUNK)]
        settings = WriteSettings(
            out.root, None, config.image_size, config.on_size_mismatch, config.compression
        )
        with beam_io.pipeline(config.beam_options) as p:
            plan = (
                p
                | "listing" >> beam.Create(chunks)
                | "spread" >> beam.Reshuffle()
                | "scan" >> beam.FlatMap(_scan_chunk)
                | "gather" >> beam.combiners.ToList()
                | "plan" >> beam.Map(_plan, discovery, config)
            )
            written = (
                plan
                | "claim" >> beam.FlatMap(_todo, out.root)
                | "one shard each" >> beam.Reshuffle()
                | "write" >> beam.Map(_write, settings)
                | "all written" >> beam.combiners.ToList()
            )
            _ = written | "finish" >> beam.Map(
                _finish, beam.pvalue.AsSingleton(plan), config, start, command
            )
        return load_manifest(out.root)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
