"""Check a records folder against its manifest; show a few examples with their geolocation."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import BinaryIO

from satx.errors import RecordsError
from satx.io import storage
from satx.records import schema
from satx.records.manifest import ShardEntry, load_manifest
from satx.tiles.windows import shape_name


@dataclass(frozen=True)
class ShardCheck:
    """One shard: what the manifest says and what the file holds."""

    name: str
    expected_records: int
    records: int | None
    expected_sha256: str
    sha256: str | None
    problem: str | None


class _HashingReader:
    """A binary reader that hashes every byte read through it."""

    def __init__(self, f: BinaryIO):
        self.f, self.sha256 = f, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        """Read and hash."""
        data = self.f.read(size)
        self.sha256.update(data)
        return data


def _check_shard(store: storage.Store, entry: ShardEntry, compression: str) -> ShardCheck:
    """Verify one shard's sha256 and record count (every record's checksums included).

    One streaming pass (gs:// included): the bytes are hashed as the records are counted.
    """

    def result(count: int | None, digest: str | None, problem: str | None) -> ShardCheck:
        return ShardCheck(entry.name, entry.records, count, entry.sha256, digest, problem)

    try:
        with store.open(entry.name) as f:
            reader = _HashingReader(f)
            count = schema.count_records(reader, compression, entry.name)
            while reader.read(1 << 20):  # anything after the last record is hashed too
                pass
    except FileNotFoundError:
        return result(None, None, "missing")
    except RecordsError as err:
        return result(None, None, str(err))
    digest = reader.sha256.hexdigest()
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
    return [_check_shard(store, entry, manifest.compression) for entry in manifest.shards]


def first_examples(root: str, count: int, split: str | None = None) -> list[schema.TileExample]:
    """The first `count` examples of a split (default: the first shard's split)."""
    manifest = load_manifest(root)
    store = storage.open_store(root)
    shards = [s for s in manifest.shards if split is None or s.split == split]
    found: list[schema.TileExample] = []
    for entry in shards:
        if len(found) >= count:
            break
        with store.open(entry.name) as f:
            found += itertools.islice(
                schema.iter_shard(f, manifest.compression), count - len(found)
            )
    return found


def describe_example(example: schema.TileExample) -> str:
    """One line per example: label, source, tile and where it is."""
    where = "no geolocation"
    if (loc := example.geolocation) is not None:
        t, n = example.tile, example.window
        window = f"{shape_name(n)} window from " if n > 1 else ""
        where = (
            f"{window}tile z{t.z}/x{t.x}/y{t.y} quadkey {loc.quadkey} "
            f"centre ({loc.lon:.6f}, {loc.lat:.6f}) "
            f"bbox [{', '.join(f'{v:.6f}' for v in loc.bbox)}]"
        )
    return (
        f"{example.label_text} ({example.label}) {example.source_id} "
        f"{example.image_format} {example.width}x{example.height} sha256 {example.sha256[:12]} "
        f"{where}"
    )
