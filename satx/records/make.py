"""Execute a records plan: write shards in parallel, resumably, then the manifest (last).

Each shard is written under a temporary name and renamed (or uploaded, for gs://) when complete;
its result is then recorded in `_progress/<shard>.json`. A re-run of the same plan skips shards
with a progress file, so a run killed at any point completes without duplicate or missing
records. `manifest.json` is written last and atomically: its presence means "complete".
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import multiprocessing
import os
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

from satx.config import RecordsConfig
from satx.errors import OutputExistsError, RecordsError
from satx.io import claim, failpoints, secrets, storage
from satx.io.lock import output_lock
from satx.io.progress import Progress
from satx.io.run_record import run_record
from satx.records import inputs
from satx.records.manifest import (
    MANIFEST_NAME,
    QUARANTINE_NAME,
    InputSummary,
    Manifest,
    QuarantineSummary,
    ShardEntry,
    SplitMethod,
    SplitSummary,
)
from satx.records.plan import Plan, ShardTask, make_plan
from satx.records.worker import WriteSettings, init_worker, write_shard
from satx.tiles.refs import Listing

log = logging.getLogger(__name__)

PROGRESS_DIR = "_progress"


LAYOUT = claim.Layout(
    "make_records",
    owned=(
        MANIFEST_NAME,
        QUARANTINE_NAME,
        "*-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].tfrecord",
        "*-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].tfrecord.gz",
        f"{PROGRESS_DIR}/",
    ),
    legacy=(MANIFEST_NAME, f"{PROGRESS_DIR}/plan.json"),
)


def locked_output(config: RecordsConfig) -> contextlib.AbstractContextManager:
    """The output claimed for make_records (`satx.io.claim`) and locked, for either engine."""
    inputs = (("--input", config.input), ("--tiles", claim.template_root(config.source.tiles)))
    return output_lock(config.output, "make_records", LAYOUT, inputs)


def claim_output(out: storage.Store, config: RecordsConfig) -> None:
    """Refuse complete records unless --overwrite, which empties what make_records owns.

    Before discovery: fetched tiles of labelled places land under `_progress/` and must outlive
    the clean-up.
    """
    if out.exists(MANIFEST_NAME) and not config.overwrite:
        raise OutputExistsError(
            f"{out.url(MANIFEST_NAME)} exists: these records are complete. "
            "Pass --overwrite to rebuild them, or choose another --output"
        )
    if config.overwrite:
        claim.remove_owned(out, LAYOUT)


def prepare_output(out: storage.Store, plan: Plan) -> set[str]:
    """Check the output folder and return the names of shards already done by this plan."""
    plan_name = f"{PROGRESS_DIR}/plan.json"
    if out.exists(plan_name):
        previous = json.loads(out.read_bytes(plan_name))
        if previous.get("digest") != plan.digest:
            raise OutputExistsError(
                f"{out.root} holds a partial run made from different inputs or flags; "
                "pass --overwrite to discard it, or choose another --output"
            )
    else:
        out.write_bytes(plan_name, json.dumps({"digest": plan.digest}).encode())
    storage.delete_temps(out)  # of a killed run
    done = set()
    for name in out.list(PROGRESS_DIR):
        if name.count("/") > 1 or name == plan_name or not name.endswith(".json"):
            continue  # fetched tiles, the plan, the Beam engine's listing
        result = json.loads(out.read_bytes(name))
        if (
            result.get("name")
            and out.exists(result["name"])
            and out.size(result["name"]) == result["bytes"]
        ):
            done.add(result["name"])
    return done


def _context() -> multiprocessing.context.BaseContext:
    """Fork when this process is light (the CLI never imports TensorFlow), else spawn.

    A forked worker is ready at once; a spawned one boots a new interpreter, a real share of a
    small run. A process holding TensorFlow (tests, the bench, notebooks) or other threads may
    hold locks that must not be forked, so it spawns.
    """
    light = "tensorflow" not in sys.modules and threading.active_count() == 1
    if light and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _executor(workers: int, counter: Synchronized) -> Executor:
    """Worker processes, started now so that they boot while the parent plans."""
    if workers <= 1:
        init_worker(counter)
        return ThreadPoolExecutor(max_workers=1)
    ctx = _context()
    pool = ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=init_worker, initargs=(counter, os.getpid())
    )
    for _ in range(workers):  # one process is started per submit while none is idle
        pool.submit(os.getpid)
    return pool


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while the plan builds a few objects per tile.

    Each collection walks every object in the process; in a process that has imported
    TensorFlow (the bench, notebooks) that made discovery and planning twice as slow. The plan's
    objects hold no cycles, so reference counting frees them anyway.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def record_shard(out: storage.Store, result: dict) -> None:
    """Mark a shard complete: its result in `_progress/` (after the shard itself is in place)."""
    out.write_bytes(f"{PROGRESS_DIR}/{result['name']}.json", json.dumps(result).encode())
    failpoints.hit("make_records.after_shard")


def _run_tasks(
    tasks: list[ShardTask],
    settings: WriteSettings,
    out: storage.Store,
    pool: Executor,
    counter: Synchronized,
) -> None:
    progress = Progress("make_records", sum(len(t.items) for t in tasks))
    pending = {pool.submit(write_shard, task, settings) for task in tasks}
    while pending:
        finished, pending = wait_futures(pending, timeout=1.0, return_when=FIRST_COMPLETED)
        for future in finished:
            try:
                result = future.result()
            except BrokenProcessPool as err:
                raise RecordsError(
                    f"a worker process died ({err}); finished shards are kept, "
                    "re-run the same command to resume"
                ) from err
            record_shard(out, result)
        progress.update(counter.value)
    progress.update(counter.value)
    progress.finish()


def _splits(results: list[dict]) -> dict[str, SplitSummary]:
    records: Counter = Counter()
    shards: Counter = Counter()
    classes: dict[str, Counter] = {}
    for r in results:
        records[r["split"]] += r["records"]
        shards[r["split"]] += 1
        classes.setdefault(r["split"], Counter()).update(r["classes"])
    return {s: SplitSummary(records[s], shards[s], dict(classes[s])) for s in records}


def _build_manifest(
    plan: Plan,
    results: list[dict],
    config: RecordsConfig,
    phases: dict[str, float],
    command: str | None,
) -> tuple[Manifest, list[dict]]:
    quarantined = [q.to_dict() for q in plan.rejections]
    quarantined += [q for r in results for q in r["quarantined"]]
    quarantined.sort(key=lambda q: (q["source_id"], q["reason"]))
    reasons = Counter(q["reason"] for q in quarantined)
    changes = sum((Counter(r["changes"]) for r in results), Counter())
    formats = sum((Counter(r["formats"]) for r in results), Counter())
    manifest = Manifest(
        class_names=plan.class_names,
        image_size=config.stored_size,
        compression=config.compression,
        records=sum(r["records"] for r in results),
        splits=_splits(results),
        shards=tuple(
            ShardEntry(**{k: r[k] for k in ("name", "split", "records", "bytes", "sha256")})
            for r in results
        ),
        split_method=SplitMethod(plan.split_method, config.split_zoom, config.seed, config.split),
        geolocation={
            "with": plan.stats["with_geolocation"],
            "without": plan.stats["without_geolocation"],
        },
        inputs=InputSummary(
            path=config.input,
            found=plan.stats["inputs_found"],
            ignored_files=plan.stats["ignored_files"],
            duplicate_images=plan.stats["duplicate_images"],
            listing_sha256=plan.listing_sha256,
            layout=plan.stats["layout"],
            tile_source=plan.stats["tile_source"],
            geometries=plan.stats["geometries"],
        ),
        quarantine=QuarantineSummary(len(quarantined), dict(sorted(reasons.items()))),
        image_changes=dict(sorted(changes.items())),
        formats=dict(sorted(formats.items())),
        context=config.context,
        run=run_record(
            command,
            config,
            seed=config.seed,
            tool="tools.make_records",
            elapsed_s=round(sum(phases.values()), 4),
            phases_s={name: round(seconds, 4) for name, seconds in phases.items()},
            finished_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        ),
    )
    return manifest, quarantined


def finish_records(
    out: storage.Store,
    plan: Plan,
    config: RecordsConfig,
    phases: dict[str, float],
    command: str | None,
) -> Manifest:
    """Every shard is written: the quarantine list, then `manifest.json` (last), then clean up.

    The shards' results are read back from `_progress/` in plan order, whichever run (or
    engine) wrote them.
    """
    finishing = time.monotonic()
    results = [json.loads(out.read_bytes(f"{PROGRESS_DIR}/{t.name}.json")) for t in plan.tasks]
    phases = {**phases, "finish": time.monotonic() - finishing}
    manifest, quarantined = _build_manifest(plan, results, config, phases, command)
    lines = "".join(secrets.scrub(json.dumps(q, sort_keys=True)) + "\n" for q in quarantined)
    out.write_bytes(QUARANTINE_NAME, lines.encode())
    # every shard is in place: a temp now is a dead writer's (a worker killed mid-shard whose
    # shard another worker then wrote)
    storage.delete_temps(out)
    out.write_bytes(MANIFEST_NAME, manifest.to_json())
    for name in out.list(PROGRESS_DIR):
        out.delete(name)
    if isinstance(out, storage.LocalStore):
        shutil.rmtree(out.path(PROGRESS_DIR), ignore_errors=True)
    return manifest


def _local_listing(config: RecordsConfig, out: storage.Store, scratch: Path) -> Listing:
    """What the input holds, every tile in a local file (gs:// mirrored, places fetched).

    gs:// files are copied to `scratch`. Fetched tiles go to the tile cache, else under the
    output's `_progress/` (local outputs: a re-run after a kill fetches nothing twice) or the
    scratch folder (gs:// outputs).
    """
    listing = inputs.mirror(inputs.list_input(config), scratch / "input")
    local = isinstance(out, storage.LocalStore)
    fetch_dir = out.path(f"{PROGRESS_DIR}/tiles") if local else scratch / "tiles"
    return inputs.fetch_places(listing, config, fetch_dir)


def make_records(config: RecordsConfig, command: str | None = None) -> Manifest:
    """Turn labelled tiles into sharded TFRecords plus `manifest.json`; return the manifest.

    Args:
        config: what to read, where to write and how.
        command: the command line to record (defaults to `sys.argv`).

    Raises:
        InputError: the input cannot be used as given.
        OutputExistsError: the output is complete (or foreign) and `overwrite` is off.
        OutputLockedError: another run is writing the same output.
    """
    with locked_output(config):
        return _make_records(config, command)


def _make_records(config: RecordsConfig, command: str | None) -> Manifest:
    start = time.monotonic()
    out = storage.open_store(config.output)
    scratch = storage.make_staging_dir("satx-records-")
    counter = _context().Value("q", 0)
    pool = _executor(config.worker_count, counter)
    try:
        claim_output(out, config)
        with _gc_paused():
            listing = _local_listing(config, out, Path(scratch))
            log.info(
                "found %d tiles (%s layout) in %s",
                len(listing.refs),
                listing.layout,
                config.input,
            )
            plan = make_plan(listing, config, pool)
        if not plan.tasks:
            reasons = Counter(r.reason for r in plan.rejections)
            first = plan.rejections[0].detail if plan.rejections else "nothing listed"
            raise RecordsError(
                f"{config.input}: no usable tiles: all {len(plan.rejections)} were quarantined "
                f"({', '.join(f'{k}: {n}' for k, n in reasons.most_common())}); the first: {first}"
            )
        done = prepare_output(out, plan)
        todo = [t for t in plan.tasks if t.name not in done]
        if done:
            log.info("resuming: %d of %d shards already written", len(done), len(plan.tasks))
        staging = None if isinstance(out, storage.LocalStore) else os.path.join(scratch, "stage")
        if staging:
            os.makedirs(staging)
        else:
            os.makedirs(out.root, exist_ok=True)
        settings = WriteSettings(
            out.root,
            staging,
            config.stored_size,
            config.on_size_mismatch,
            config.compression,
            config.context,
        )
        planned = time.monotonic()
        _run_tasks(todo, settings, out, pool, counter)
        written = time.monotonic()
        # plan = start-up, discovery, hashing, splits; write = validate, encode, write shards
        phases = {"plan": planned - start, "write": written - planned}
        manifest = finish_records(out, plan, config, phases, command)
        return manifest
    finally:
        pool.shutdown(cancel_futures=True)
        shutil.rmtree(scratch, ignore_errors=True)
