"""Execute a records plan: write shards in parallel, resumably, then the manifest (last).

Each shard is written under a temporary name and renamed (or uploaded, for gs://) when complete;
its result is then recorded in `_progress/<shard>.json`. A re-run of the same plan skips shards
with a progress file, so a run killed at any point completes without duplicate or missing
records. `manifest.json` is written last and atomically: its presence means "complete".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import mercantile
import tensorflow as tf

from satx import failpoints, images, records, sources, storage
from satx.config import RecordsConfig
from satx.errors import OutputExistsError, RecordsError
from satx.plan import Plan, Rejection, ShardItem, ShardTask, make_plan
from satx.progress import Progress
from satx.run_record import versions

log = logging.getLogger(__name__)

PROGRESS_DIR = "_progress"
_WORKER_ENV = {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
_counter = None  # per-process count of tiles processed, shared with the parent for progress


@dataclass(frozen=True)
class WriteSettings:
    """What every shard worker needs besides its task."""

    out_root: str
    staging_dir: str | None  # local scratch for gs:// output; None writes in place
    image_size: int
    on_size_mismatch: str
    compression: str


def _exit_with_parent(parent: int) -> None:
    # A pool worker holds both ends of its task queue, so it never sees EOF when the parent is
    # killed (kill -9, OOM): without this it would linger forever.
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _init_worker(counter: Synchronized, parent: int | None = None) -> None:
    global _counter
    _counter = counter
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _read_checked(item: ShardItem) -> bytes:
    with open(item.location, "rb") as f:
        data = f.read()
    if hashlib.sha256(data).hexdigest() != item.sha256:
        raise images.ImageRejected(
            "changed_during_run", "file content changed after it was scanned; re-run"
        )
    return data


def _encode_item(item: ShardItem, settings: WriteSettings) -> tuple[bytes, images.PreparedImage]:
    try:
        data = _read_checked(item)
    except OSError as err:
        raise images.ImageRejected("unreadable", f"cannot read: {err}") from err
    prepared = images.prepare_image(
        data, item.source_id, settings.image_size, settings.on_size_mismatch
    )
    example = records.TileExample(
        encoded=prepared.encoded,
        image_format=prepared.image_format,
        height=prepared.height,
        width=prepared.width,
        label=item.label,
        label_text=item.label_text,
        source_id=item.source_id,
        sha256=item.sha256,
        tile=mercantile.Tile(item.tile[1], item.tile[2], item.tile[0]) if item.tile else None,
    )
    return records.encode_example(example), prepared


def write_shard(task: ShardTask, settings: WriteSettings) -> dict[str, Any]:
    """Validate, encode and write one shard; return its result for the manifest."""
    out = storage.open_store(settings.out_root)
    folder = settings.staging_dir or out.root
    tmp = os.path.join(folder, f".{task.name}.tmp-{os.getpid()}")
    options = tf.io.TFRecordOptions(compression_type=records.COMPRESSIONS[settings.compression])
    classes, changes, formats = Counter(), Counter(), Counter()
    rejected: list[dict[str, str]] = []
    with tf.io.TFRecordWriter(tmp, options) as writer:
        for k, item in enumerate(task.items):
            if k == len(task.items) // 2:
                failpoints.hit("make_records.mid_shard")
            try:
                serialized, prepared = _encode_item(item, settings)
            except images.ImageRejected as err:
                rejected.append(
                    Rejection(item.source_id, item.label_text, err.reason, err.detail).to_dict()
                )
            else:
                writer.write(serialized)
                classes[item.label_text] += 1
                changes.update(prepared.changes)
                formats[prepared.image_format] += 1
            if _counter is not None:
                with _counter.get_lock():
                    _counter.value += 1
    digest = hashlib.sha256(Path(tmp).read_bytes()).hexdigest()
    nbytes = os.path.getsize(tmp)
    out.put_file(tmp, task.name)
    return {
        "name": task.name,
        "split": task.split,
        "records": sum(classes.values()),
        "bytes": nbytes,
        "sha256": digest,
        "classes": dict(classes),
        "changes": dict(changes),
        "formats": dict(formats),
        "quarantined": rejected,
    }


def clean_output(out: storage.Store) -> None:
    """Delete everything make_records owns in an output (and nothing else)."""
    for name in out.list():
        base = name.rsplit("/", 1)[-1]
        ours = (
            name.startswith(f"{PROGRESS_DIR}/")
            or records.is_shard_name(base)
            or base in (records.MANIFEST_NAME, records.QUARANTINE_NAME)
            or (base.startswith(".") and ".tmp-" in base)
        )
        if ours:
            out.delete(name)


def _prepare_output(out: storage.Store, plan: Plan, config: RecordsConfig) -> set[str]:
    """Check the output folder and return the names of shards already done by this plan."""
    plan_name = f"{PROGRESS_DIR}/plan.json"
    if out.exists(records.MANIFEST_NAME) or config.overwrite:
        if not config.overwrite:
            raise OutputExistsError(
                f"{out.url(records.MANIFEST_NAME)} exists: these records are complete. "
                "Pass --overwrite to rebuild them, or choose another --output"
            )
        clean_output(out)
    if out.exists(plan_name):
        previous = json.loads(out.read_bytes(plan_name))
        if previous.get("digest") != plan.digest:
            raise OutputExistsError(
                f"{out.root} holds a partial run made from different inputs or flags; "
                "pass --overwrite to discard it, or choose another --output"
            )
    else:
        out.write_bytes(plan_name, json.dumps({"digest": plan.digest}).encode())
    for name in out.list():  # temp files of a killed run
        if name.rsplit("/", 1)[-1].startswith(".") and ".tmp-" in name:
            out.delete(name)
    done = set()
    for name in out.list(PROGRESS_DIR):
        result = json.loads(out.read_bytes(name))
        if (
            result.get("name")
            and out.exists(result["name"])
            and out.size(result["name"]) == result["bytes"]
        ):
            done.add(result["name"])
    return done


def _executor(workers: int, counter: Synchronized) -> Executor:
    if workers <= 1:
        _init_worker(counter)
        return ThreadPoolExecutor(max_workers=1)
    ctx = multiprocessing.get_context("spawn")  # TF state must not be forked
    return ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(counter, os.getpid())
    )


@contextlib.contextmanager
def _quiet_worker_env():
    """Workers only serialize protos: skip oneDNN (and its start-up banner on every worker)."""
    saved = {k: os.environ.get(k) for k in _WORKER_ENV}
    os.environ.update(_WORKER_ENV)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _run_tasks(
    tasks: list[ShardTask], settings: WriteSettings, out: storage.Store, workers: int
) -> None:
    counter = multiprocessing.get_context("spawn").Value("q", 0)
    progress = Progress("make_records", sum(len(t.items) for t in tasks))
    with _quiet_worker_env(), _executor(min(workers, max(len(tasks), 1)), counter) as pool:
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
                out.write_bytes(
                    f"{PROGRESS_DIR}/{result['name']}.json", json.dumps(result).encode()
                )
                failpoints.hit("make_records.after_shard")
            progress.update(counter.value)
    progress.update(counter.value)
    progress.finish()


def _summarise(plan: Plan, results: list[dict], config: RecordsConfig) -> dict[str, Any]:
    splits: dict[str, dict] = {}
    changes, formats = Counter(), Counter()
    for r in results:
        entry = splits.setdefault(r["split"], {"records": 0, "classes": {}, "shards": 0})
        entry["records"] += r["records"]
        entry["shards"] += 1
        for name, n in r["classes"].items():
            entry["classes"][name] = entry["classes"].get(name, 0) + n
        changes.update(r["changes"])
        formats.update(r["formats"])
    quarantined = [q.to_dict() for q in plan.rejections]
    quarantined += [q for r in results for q in r["quarantined"]]
    quarantined.sort(key=lambda q: (q["source_id"], q["reason"]))
    return {
        "splits": splits,
        "changes": dict(sorted(changes.items())),
        "formats": dict(sorted(formats.items())),
        "quarantine": quarantined,
    }


def _build_manifest(
    plan: Plan, results: list[dict], config: RecordsConfig, elapsed: float, command: str | None
) -> tuple[dict, list[dict]]:
    summary = _summarise(plan, results, config)
    quarantined = summary.pop("quarantine")
    reasons = Counter(q["reason"] for q in quarantined)
    written = sum(s["records"] for s in summary["splits"].values())
    manifest = {
        "schema_version": records.SCHEMA_VERSION,
        "class_names": list(plan.class_names),
        "image_size": config.image_size,
        "compression": config.compression,
        "records": written,
        "splits": summary["splits"],
        "shards": [
            {k: r[k] for k in ("name", "split", "records", "bytes", "sha256")} for r in results
        ],
        "split_method": {
            "method": plan.split_method,
            "zoom": config.split_zoom,
            "seed": config.seed,
            "fractions": config.split,
            "note": "tiles without geolocation are split by a seeded hash of their content",
        },
        "geolocation": {
            "with": plan.stats["with_geolocation"],
            "without": plan.stats["without_geolocation"],
        },
        "inputs": {
            "path": config.input,
            "found": plan.stats["inputs_found"],
            "ignored_files": plan.stats["ignored_files"],
            "duplicate_images": plan.stats["duplicate_images"],
            "manifest_sha256": plan.input_hash,
        },
        "image_changes": summary["changes"],
        "formats": summary["formats"],
        "quarantine": {
            "count": len(quarantined),
            "reasons": dict(sorted(reasons.items())),
            "file": records.QUARANTINE_NAME,
        },
        "run": {
            "tool": "tools.make_records",
            "command": command if command is not None else " ".join(sys.argv),
            "config": config.to_dict(),
            "versions": versions(),
            "seed": config.seed,
            "elapsed_s": round(elapsed, 3),
            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    }
    return manifest, quarantined


def make_records(config: RecordsConfig, command: str | None = None) -> dict[str, Any]:
    """Turn labelled tiles into sharded TFRecords plus `manifest.json`; return the manifest.

    Args:
        config: what to read, where to write and how.
        command: the command line to record (defaults to `sys.argv`).

    Raises:
        InputError: the input cannot be used as given.
        OutputExistsError: the output is complete (or foreign) and `overwrite` is off.
    """
    start = time.monotonic()
    out = storage.open_store(config.output)
    scratch = tempfile.mkdtemp(prefix="satx-records-")
    try:
        discovery = sources.discover(config.input, Path(scratch) / "input")
        log.info(
            "found %d tiles (%s layout) in %s", len(discovery.tiles), discovery.layout, config.input
        )
        plan = make_plan(discovery, config)
        if not plan.tasks:
            raise RecordsError(
                f"{config.input}: no usable tiles (all {len(plan.rejections)} "
                "were quarantined); see the reasons above"
            )
        done = _prepare_output(out, plan, config)
        todo = [t for t in plan.tasks if t.name not in done]
        if done:
            log.info("resuming: %d of %d shards already written", len(done), len(plan.tasks))
        staging = None if isinstance(out, storage.LocalStore) else os.path.join(scratch, "stage")
        if staging:
            os.makedirs(staging)
        else:
            os.makedirs(out.root, exist_ok=True)
        settings = WriteSettings(
            out.root, staging, config.image_size, config.on_size_mismatch, config.compression
        )
        _run_tasks(todo, settings, out, config.worker_count)
        results = [json.loads(out.read_bytes(f"{PROGRESS_DIR}/{t.name}.json")) for t in plan.tasks]
        manifest, quarantined = _build_manifest(
            plan, results, config, time.monotonic() - start, command
        )
        lines = "".join(json.dumps(q, sort_keys=True) + "\n" for q in quarantined)
        out.write_bytes(records.QUARANTINE_NAME, lines.encode())
        out.write_bytes(records.MANIFEST_NAME, records.manifest_to_json(manifest))
        for name in out.list(PROGRESS_DIR):
            out.delete(name)
        if isinstance(out, storage.LocalStore):
            shutil.rmtree(out.path(PROGRESS_DIR), ignore_errors=True)
        return manifest
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
