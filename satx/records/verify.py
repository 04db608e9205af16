"""Check a records folder against its manifest; show a few examples with their geolocation."""

from __future__ import annotations

import hashlib
import itertools
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from satx.errors import RecordsError
from satx.io import storage
from satx.records import schema
from satx.records.manifest import ShardEntry, load_manifest


@dataclass(frozen=True)
class ShardCheck:
    """One shard: what the manifest says and what the file holds."""

    name: str
    expected_records: int
    records: int | None
    expected_sha256: str
    sha256: str | None
    problem: str | None


@contextmanager
def local_shard(store: storage.Store, name: str) -> Iterator[str]:
    """A local path for a shard; gs:// shards are downloaded to a temporary file."""
    if isinstance(store, storage.LocalStore):
        yield str(store.path(name))
        return
    with tempfile.TemporaryDirectory(prefix="satx-inspect-") as tmp:
        path = os.path.join(tmp, name)
        store.get_file(name, path)
        yield path


def check_shard(store: storage.Store, entry: ShardEntry, compression: str) -> ShardCheck:
    """Verify one shard's sha256 and record count (every record's checksums included)."""

    def result(count: int | None, digest: str | None, problem: str | None) -> ShardCheck:
        return ShardCheck(entry.name, entry.records, count, entry.sha256, digest, problem)

    try:
        with local_shard(store, entry.name) as path:
            with open(path, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            count = schema.count_records(path, compression)
    except FileNotFoundError:
        return result(None, None, "missing")
    except RecordsError as err:
        return result(None, None, str(err))
    problems = []
    if digest != entry.sha256:
        problems.append("sha256 differs")
    if count != entry.records:
        problems.append(f"{count} records, manifest says {entry.records}")
    return result(count, digest, "; ".join(problems) or None)


def verify(root: str) -> list[ShardCheck]:
    """Check every shard listed in the manifest."""
    manifest = load_manifest(root)
    store = storage.open_store(root)
    return [check_shard(store, entry, manifest.compression) for entry in manifest.shards]


def first_examples(root: str, count: int, split: str | None = None) -> list[schema.TileExample]:
    """The first `count` examples of a split (default: the first shard's split)."""
    manifest = load_manifest(root)
    store = storage.open_store(root)
    shards = [s for s in manifest.shards if split is None or s.split == split]
    found: list[schema.TileExample] = []
    for entry in shards:
        if len(found) >= count:
            break
        with local_shard(store, entry.name) as path:
            found += itertools.islice(
                schema.iter_shard(path, manifest.compression), count - len(found)
            )
    return found


def describe_example(example: schema.TileExample) -> str:
    """One line per example: label, source, tile and where it is."""
    where = "no geolocation"
    if (loc := example.geolocation) is not None:
        t = example.tile
        where = (
            f"tile z{t.z}/x{t.x}/y{t.y} quadkey {loc.quadkey} "
            f"centre ({loc.lon:.6f}, {loc.lat:.6f}) "
            f"bbox [{', '.join(f'{v:.6f}' for v in loc.bbox)}]"
        )
    return (
        f"{example.label_text} ({example.label}) {example.source_id} "
        f"{example.image_format} {example.width}x{example.height} sha256 {example.sha256[:12]} "
        f"{where}"
    )
