"""Plan a records run: hash every input, quarantine what cannot be used, split, and shard.

Planning reads and hashes each file once but decodes nothing (image headers are read for a
sample, to catch a wrong `--image_size` before the run); it is deterministic from the inputs and
the config, and its hash tells a re-run whether partial output belongs to it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass

from satx import geo
from satx.config import RecordsConfig, parse_split_spec
from satx.errors import InputError, StorageError
from satx.records import images, schema, splits
from satx.tiles.base import read_location
from satx.tiles.refs import Listing, Rejection, TileRef


@dataclass(frozen=True)
class ShardItem:
    """One tile to write, with everything the worker needs."""

    location: str
    source_id: str
    label: int
    label_text: str
    sha256: str
    tile: tuple[int, int, int] | None  # z, x, y


@dataclass(frozen=True)
class ShardTask:
    """One output shard and the tiles that go into it, in write order."""

    name: str
    split: str
    items: tuple[ShardItem, ...]


@dataclass(frozen=True)
class Plan:
    """Everything a run will write, before any image is decoded."""

    class_names: tuple[str, ...]
    split_method: str
    tasks: tuple[ShardTask, ...]
    rejections: tuple[Rejection, ...]
    listing_sha256: str
    stats: dict

    @property
    def digest(self) -> str:
        """Hash identifying this plan (what partial output must match to be resumed)."""
        body = [(t.name, [(i.source_id, i.sha256, i.label) for i in t.items]) for t in self.tasks]
        return hashlib.sha256(json.dumps([self.class_names, body]).encode()).hexdigest()


SCAN_CHUNK = 128  # tiles hashed per pool task
SIZE_SAMPLE = 256  # tiles whose header is read to check --image_size before the run


@dataclass(frozen=True)
class _Scanned:
    tile: TileRef
    sha256: str
    nbytes: int


def hash_files(locations: list[str]) -> list[tuple[str, int] | str]:
    """(sha256, size) of each file, or the error that stopped its read."""
    out: list[tuple[str, int] | str] = []
    for location in locations:
        try:
            data = read_location(location)
        except (OSError, StorageError) as err:
            out.append(str(err))
        else:
            out.append((hashlib.sha256(data).hexdigest(), len(data)))
    return out


def _hash_chunks(chunks: list[list[str]], pool: Executor) -> list[list[tuple[str, int] | str]]:
    """hash_files over chunks in `pool`, with this thread taking chunks from the back.

    make_records' worker processes are still starting when the plan begins; rather
    than wait, the parent hashes the chunks no worker has taken yet (a queued future can still
    be cancelled), so small inputs finish before the workers are up and large ones get a third
    hasher.
    """
    futures = [pool.submit(hash_files, chunk) for chunk in chunks]
    done: dict[int, list[tuple[str, int] | str]] = {}
    for i in reversed(range(len(chunks))):
        if futures[i].cancel():
            done[i] = hash_files(chunks[i])
    return [done[i] if i in done else futures[i].result() for i in range(len(chunks))]


def scanned(
    tiles: list[TileRef], hashed: list[tuple[str, int] | str]
) -> list[_Scanned | Rejection]:
    """Each tile's scan result from `hash_files` (a Rejection when it could not be read)."""
    return [
        _Scanned(tile, *h)
        if isinstance(h, tuple)
        else Rejection(tile.source_id, tile.label, "unreadable", f"cannot read: {h}")
        for tile, h in zip(tiles, hashed, strict=True)
    ]


def scan(tiles: tuple[TileRef, ...], pool: Executor) -> list[_Scanned | Rejection]:
    """Hash every input file in `pool` (make_records' worker processes, or threads)."""
    # One task per chunk: a pool task costs a queue round trip (threads) or a pickle (processes).
    chunks = [
        [t.location for t in tiles[i : i + SCAN_CHUNK]] for i in range(0, len(tiles), SCAN_CHUNK)
    ]
    hashed = [h for chunk in _hash_chunks(chunks, pool) for h in chunk]
    return scanned(list(tiles), hashed)


def _peek_size(location: str) -> tuple[int, int] | None:
    try:
        return images.peek_size(read_location(location)[: 64 * 1024])
    except (OSError, StorageError):
        return None


def _peek_sizes(locations: list[str]) -> list[tuple[int, int] | None]:
    """Image (width, height) of each file from its header; None where it cannot be read."""
    return [_peek_size(location) for location in locations]


def _size_sample(tiles: Sequence[TileRef], config: RecordsConfig) -> list[str]:
    """Locations of evenly spaced tiles whose size is checked before the run (none to check)."""
    if config.on_size_mismatch != "reject" or not tiles:
        return []
    return [t.location for t in tiles[:: max(1, len(tiles) // SIZE_SAMPLE)]]


def _check_sizes(
    scanned: list[_Scanned], config: RecordsConfig, peeked: list | None = None
) -> None:
    """Refuse a run where most tiles (in an evenly spaced sample) have another size.

    `peeked`: the sample's sizes, read beside the hashing (`_size_sample`, `_peek_sizes`); the
    sample is read here when None. Every tile's size is checked again when it is written; this
    only saves a run that would quarantine most of its input.
    """
    if config.on_size_mismatch != "reject" or not scanned:
        return
    if peeked is None:
        peeked = _peek_sizes(_size_sample([s.tile for s in scanned], config))
    sizes = Counter(peeked)
    sizes.pop(None, None)
    expected = (config.stored_size, config.stored_size)
    mismatched = sum(n for size, n in sizes.items() if size != expected)
    if mismatched > sum(sizes.values()) / 2:
        ((common, _),) = sizes.most_common(1)
        sampled = "" if len(peeked) >= len(scanned) else " sampled"
        raise InputError(
            f"{config.input}: {mismatched} of {sum(sizes.values())}{sampled} tiles are not "
            f"{config.stored_size}x{config.stored_size} (most are {common[0]}x{common[1]}); "
            f"pass --image_size={common[0]} to keep them as they are, or "
            "--on_size_mismatch=resize to resize them"
        )


def _class_names(listing: Listing, config: RecordsConfig) -> tuple[str, ...]:
    if config.classes:
        return tuple(config.classes)
    labels = {t.label for t in listing.refs}
    return tuple(sorted(labels))


def _reject_conflicts(scanned: list[_Scanned]) -> tuple[list[_Scanned], list[Rejection]]:
    """Identical images with different labels are mislabelled: quarantine every copy."""
    labels = defaultdict(set)
    for s in scanned:
        labels[s.sha256].add(s.tile.label)
    keep, rejected = [], []
    for s in scanned:
        seen = labels[s.sha256]
        if len(seen) > 1:
            detail = f"the same image is labelled {sorted(seen)}; fix the label and re-run"
            rejected.append(Rejection(s.tile.source_id, s.tile.label, "conflicting_labels", detail))
        else:
            keep.append(s)
    return keep, rejected


def _keep_input_splits(scanned: list[_Scanned]) -> tuple[list[str], list[int], list[Rejection]]:
    """Use the input's own splits; a duplicate in a later split than its first copy is dropped."""
    first_split: dict[str, str] = {}
    for s in sorted(scanned, key=lambda s: schema.split_rank(s.tile.split)):
        first_split.setdefault(s.sha256, s.tile.split)
    names, keep, rejected = [], [], []
    for i, s in enumerate(scanned):
        owner = first_split[s.sha256]
        if s.tile.split != owner:
            detail = f"identical to a tile in split {owner!r}; kept there to avoid leakage"
            rejected.append(
                Rejection(s.tile.source_id, s.tile.label, "duplicate_across_splits", detail)
            )
        else:
            keep.append(i)
            names.append(s.tile.split)
    return names, keep, rejected


def _assign(scanned: list[_Scanned], labels: dict[str, int], config: RecordsConfig):
    with_split = sum(1 for s in scanned if s.tile.split)
    if with_split and with_split != len(scanned):
        raise InputError(
            f"{config.input}: {with_split} of {len(scanned)} tiles name a split; "
            "give every row a split or none"
        )
    if with_split:
        names, keep, rejected = _keep_input_splits(scanned)
        return names, keep, rejected, "input"
    items = [
        splits.SplitItem(
            group=geo.tile_key(geo.parent_at_zoom(s.tile.tile, config.split_zoom))
            if s.tile.tile
            else None,
            content=s.sha256,
            label=labels[s.tile.label],
        )
        for s in scanned
    ]
    names = splits.assign_splits(items, parse_split_spec(config.split), config.seed)
    return names, list(range(len(scanned))), [], "spatial"


def _shard_tasks(
    members: dict[str, list[tuple[_Scanned, int]]], config: RecordsConfig
) -> list[ShardTask]:
    tasks = []
    shard_bytes = config.shard_size_mb * 1e6
    for split in sorted(members, key=schema.split_rank):
        entries = sorted(
            members[split],
            key=lambda e: splits.seeded_unit(config.seed, f"{e[0].sha256}:{e[0].tile.source_id}"),
        )
        total = sum(s.nbytes for s, _ in entries)
        count = min(len(entries), max(config.min_shards, math.ceil(total / shard_bytes)))
        buckets: list[list[ShardItem]] = [[] for _ in range(count)]
        for k, (s, label) in enumerate(entries):
            t = s.tile.tile
            item = ShardItem(
                s.tile.location,
                s.tile.source_id,
                label,
                s.tile.label,
                s.sha256,
                (t.z, t.x, t.y) if t else None,
            )
            buckets[k % count].append(item)
        for i, items in enumerate(buckets):
            name = schema.shard_name(split, i, count, config.compression)
            tasks.append(ShardTask(name, split, tuple(items)))
    return tasks


def _listing_hash(scanned: list[_Scanned]) -> str:
    """Hash of the input listing: every (source, label, content hash), order-independent."""
    lines = sorted(f"{s.tile.source_id}\t{s.tile.label}\t{s.sha256}" for s in scanned)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def make_plan(listing: Listing, config: RecordsConfig, pool: Executor | None = None) -> Plan:
    """Hash inputs (in `pool` if given), quarantine what cannot be used, split and shard.

    The size sample is read by a pool task of its own while the hashing runs.
    """
    with contextlib.ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)))
        peeked = pool.submit(_peek_sizes, _size_sample(listing.refs, config))
        results = scan(listing.refs, pool)
        return plan_from_scan(listing, results, config, peeked.result())


def plan_from_scan(
    listing: Listing,
    results: list[_Scanned | Rejection],
    config: RecordsConfig,
    peeked: list | None = None,
) -> Plan:
    """The plan from every tile's scan result, in listing order.

    Split from `make_plan` so that the Beam engine can scan in a pipeline stage of its own.
    `peeked`: the size sample's sizes when already read (see `_check_sizes`).
    """
    rejections = list(listing.rejected)
    scanned = []
    for result in results:
        (rejections if isinstance(result, Rejection) else scanned).append(result)
    all_scanned = list(scanned)
    class_names = _class_names(listing, config)
    labels = {name: i for i, name in enumerate(class_names)}
    known = []
    for s in scanned:
        if s.tile.label in labels:
            known.append(s)
        else:
            detail = f"label not in --classes {list(class_names)}"
            rejections.append(Rejection(s.tile.source_id, s.tile.label, "unknown_label", detail))
    _check_sizes(known, config, peeked)
    known, conflicts = _reject_conflicts(known)
    rejections += conflicts
    split_names, keep, dropped, method = _assign(known, labels, config)
    rejections += dropped
    members: dict[str, list] = defaultdict(list)
    for name, i in zip(split_names, keep, strict=True):
        members[name].append((known[i], labels[known[i].tile.label]))
    geolocated = sum(1 for s in known if s.tile.tile)
    stats = {
        "inputs_found": len(listing.refs) + len(listing.rejected),
        "ignored_files": len(listing.ignored),
        "with_geolocation": geolocated,
        "without_geolocation": len(known) - geolocated,
        "duplicate_images": len(known) - len({s.sha256 for s in known}),
        "layout": listing.layout,
        "tile_source": listing.tile_source,
        "geometries": listing.per_label,
    }
    if method == "spatial":
        method = (
            "spatial"
            if geolocated == len(known)
            else ("hashed" if geolocated == 0 else "spatial+hashed")
        )
    return Plan(
        class_names=class_names,
        split_method=method,
        tasks=tuple(_shard_tasks(members, config)),
        rejections=tuple(sorted(rejections, key=lambda r: r.source_id)),
        listing_sha256=_listing_hash(all_scanned),
        stats=stats,
    )
