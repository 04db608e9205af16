"""One make_records worker: validate, encode and write one shard (no TensorFlow import).

`satx.records.make` runs `write_shard` in a pool of processes. This module and everything it imports
stay free of TensorFlow, so a worker starts in a fraction of a second instead of seconds, and the
records are serialised by `satx.io.tfrecord` (byte-identical to TensorFlow's writer).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from typing import Any

import mercantile

from satx.errors import StorageError
from satx.io import failpoints, storage, tfrecord
from satx.records import images, schema
from satx.records.plan import ShardItem, ShardTask
from satx.tiles.base import read_location
from satx.tiles.refs import Rejection

_counter: Synchronized | None = None  # tiles processed in this process, read by the parent
_COUNT_EVERY = 16  # tiles between updates of the shared counter (it takes a lock)


@dataclass(frozen=True)
class WriteSettings:
    """What every shard worker needs besides its task."""

    out_root: str
    staging_dir: str | None  # local scratch for gs:// output; None writes in place
    image_size: int
    on_size_mismatch: str
    compression: str
    window: int = 1  # --context: every image is a window of this many tiles a side


def _exit_with_parent(parent: int) -> None:
    # A pool worker holds both ends of its task queue, so it never sees EOF when the parent is
    # killed (kill -9, OOM): without this it would linger forever.
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def init_worker(counter: Synchronized, parent: int | None = None) -> None:
    """Pool initializer: share the progress counter; exit when the parent dies."""
    global _counter
    _counter = counter
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _count(n: int) -> None:
    if _counter is not None and n:
        with _counter.get_lock():
            _counter.value += n


def _read_checked(item: ShardItem) -> bytes:
    data = read_location(item.location)  # a local path, or gs:// (Beam workers)
    if hashlib.sha256(data).hexdigest() != item.sha256:
        raise images.ImageRejected(
            "changed_during_run", "file content changed after it was scanned; re-run"
        )
    return data


def _encode_item(item: ShardItem, settings: WriteSettings) -> tuple[bytes, images.PreparedImage]:
    try:
        data = _read_checked(item)
    except (OSError, StorageError) as err:
        raise images.ImageRejected("unreadable", f"cannot read: {err}") from err
    prepared = images.prepare_image(
        data, item.source_id, settings.image_size, settings.on_size_mismatch
    )
    example = schema.TileExample(
        encoded=prepared.encoded,
        image_format=prepared.image_format,
        height=prepared.height,
        width=prepared.width,
        label=item.label,
        label_text=item.label_text,
        source_id=item.source_id,
        sha256=item.sha256,
        tile=mercantile.Tile(item.tile[1], item.tile[2], item.tile[0]) if item.tile else None,
        window=settings.window if item.tile else 1,
    )
    return schema.encode_example(example), prepared


def write_shard(task: ShardTask, settings: WriteSettings) -> dict[str, Any]:
    """Validate, encode and write one shard; return its result for the manifest."""
    out = storage.open_store(settings.out_root)
    folder = settings.staging_dir or out.root
    tmp = os.path.join(folder, f".{task.name}.tmp-{os.getpid()}")
    try:
        return _write_shard(task, settings, out, tmp)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StorageError(
            f"could not write {out.url(task.name)}: {err.strerror or err}; free space and "
            "run again (finished shards are kept)"
        ) from err


def _write_shard(
    task: ShardTask, settings: WriteSettings, out: storage.Store, tmp: str
) -> dict[str, Any]:
    classes, changes, formats = Counter(), Counter(), Counter()
    rejected: list[dict[str, str]] = []
    uncounted = 0
    with tfrecord.RecordFileWriter(tmp, settings.compression) as writer:
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
            uncounted += 1
            if uncounted == _COUNT_EVERY:
                _count(uncounted)
                uncounted = 0
    _count(uncounted)
    with open(tmp, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
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
