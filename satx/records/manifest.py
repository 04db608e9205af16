"""`manifest.json`: what a records folder holds, typed and versioned, with one loader.

make_records writes the manifest last (its presence means the folder is complete); every
reader (training, evaluation, prediction, inspection, benchmarks) goes through `load_records`
or `load_manifest`. Two hashes, two names: `inputs.listing_sha256` is the hash of the *input
listing* (every source, label and content hash: what the records were made from), and
`Records.manifest_sha256` is the hash of the manifest file itself (what a run read).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from satx.errors import RecordsError
from satx.io import secrets, storage
from satx.records.schema import SCHEMA_VERSION, split_rank
from satx.tiles.windows import shape_name

MANIFEST_NAME = "manifest.json"
QUARANTINE_NAME = "quarantine.jsonl"
_READABLE_VERSIONS = (1, SCHEMA_VERSION)  # 1 differs only in a key name, upgraded on load


@dataclass(frozen=True)
class SplitSummary:
    """Records, shards and records per class of one split."""

    records: int
    shards: int
    classes: dict[str, int]


@dataclass(frozen=True)
class ShardEntry:
    """One shard file: its split, record count, size and content hash."""

    name: str
    split: str
    records: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class SplitMethod:
    """How tiles were assigned to splits."""

    method: str  # spatial, hashed, spatial+hashed or input
    zoom: int
    seed: int
    fractions: str
    note: str = "tiles without geolocation are split by a seeded hash of their content"


@dataclass(frozen=True)
class InputSummary:
    """What the records were made from."""

    path: str
    found: int
    ignored_files: int
    duplicate_images: int
    listing_sha256: str  # every (source, label, content hash) of the input, order-independent
    layout: str = ""  # folder, folder_presplit, csv or locations
    tile_source: str = ""  # labelled places: the source the tiles came from (secrets redacted)
    # labelled places: per label, how many geometries (or rows) became how many tiles
    geometries: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class QuarantineSummary:
    """How many inputs were kept out, why, and the file listing each."""

    count: int
    reasons: dict[str, int]
    file: str = QUARANTINE_NAME


@dataclass(frozen=True)
class Manifest:
    """The content of `manifest.json`."""

    class_names: tuple[str, ...]
    image_size: int
    compression: str
    records: int
    splits: dict[str, SplitSummary]
    shards: tuple[ShardEntry, ...]
    split_method: SplitMethod
    geolocation: dict[str, int]  # "with" / "without" geolocation
    inputs: InputSummary
    quarantine: QuarantineSummary
    image_changes: dict[str, int] = field(default_factory=dict)
    formats: dict[str, int] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)  # tool, command, config, versions, seed
    schema_version: int = SCHEMA_VERSION
    context: int = 1  # each record is a window of context x context tiles (--context)

    @property
    def window_name(self) -> str:
        """What one record holds, in words: `2x2 windows`."""
        return f"{shape_name(self.context)} windows"

    @property
    def num_classes(self) -> int:
        """How many classes."""
        return len(self.class_names)

    def has_split(self, split: str) -> bool:
        """Whether the records have this split (`a+b` names the union of splits a and b)."""
        return all(part in self.splits for part in split.split("+"))

    def _parts(self, split: str) -> list[str]:
        if not self.has_split(split):
            raise RecordsError(f"no split {split!r}; the records have {sorted(self.splits)}")
        return split.split("+")

    def count(self, split: str) -> int:
        """Records in a split."""
        return sum(self.splits[part].records for part in self._parts(split))

    def class_counts(self, split: str) -> list[int]:
        """Records per class (label-index order) in a split."""
        parts = [self.splits[part].classes for part in self._parts(split)]
        return [sum(per.get(name, 0) for per in parts) for name in self.class_names]

    def shards_of(self, split: str) -> list[ShardEntry]:
        """A split's shards, in manifest order."""
        parts = self._parts(split)
        return [s for s in self.shards if s.split in parts]

    def to_json(self) -> bytes:
        """Stable JSON encoding (sorted keys, trailing newline)."""
        content = dataclasses.asdict(self)
        if self.context == 1:  # records of single tiles: the manifest of before --context
            del content["context"]
        text = json.dumps(content, indent=2, sort_keys=True)
        return (secrets.scrub(text) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Manifest:
        """Parse and check a manifest; `where` names it in errors."""
        try:
            raw = json.loads(data)
        except json.JSONDecodeError as err:
            raise RecordsError(f"{where}: not valid JSON ({err}); re-run make_records") from err
        version = raw.get("schema_version") if isinstance(raw, dict) else None
        if version not in _READABLE_VERSIONS:
            raise RecordsError(
                f"{where}: schema_version {version!r}, this satx reads {_READABLE_VERSIONS}; "
                "re-make the records with this version of tools.make_records"
            )
        try:
            return _from_dict(raw)
        except (KeyError, TypeError) as err:
            raise RecordsError(f"{where}: missing or bad key {err}; re-run make_records") from err

    def describe(self) -> str:
        """A short human summary: splits x classes, shards, quarantine."""
        classes = self.class_names
        width = max(12, *(len(c) for c in classes))
        header = (
            f"{'split':<10} " + " ".join(f"{c:>{width}}" for c in classes) + f" {'total':>8} shards"
        )
        lines = [
            f"records: {self.records} {'tiles' if self.context == 1 else self.window_name}, "
            f"{len(classes)} classes, {self.image_size}px, "
            f"schema v{self.schema_version}, compression {self.compression}",
            header,
        ]
        for split, entry in sorted(self.splits.items(), key=lambda kv: split_rank(kv[0])):
            counts = " ".join(f"{entry.classes.get(c, 0):>{width}}" for c in classes)
            lines.append(f"{split:<10} {counts} {entry.records:>8} {entry.shards:>6}")
        method = self.split_method
        lines.append(
            f"split: {method.method} (zoom {method.zoom}, seed {method.seed}); geolocated "
            f"{self.geolocation.get('with', 0)}, without {self.geolocation.get('without', 0)}"
        )
        lines.append(
            f"quarantined: {self.quarantine.count} {self.quarantine.reasons}; "
            f"image changes: {self.image_changes}"
        )
        return "\n".join(lines)


def _from_dict(raw: Mapping[str, Any]) -> Manifest:
    inputs = dict(raw["inputs"])
    if raw["schema_version"] == 1:  # v1 called the input listing's hash `manifest_sha256`
        inputs["listing_sha256"] = inputs.pop("manifest_sha256")
    return Manifest(
        class_names=tuple(raw["class_names"]),
        image_size=int(raw["image_size"]),
        compression=raw.get("compression", "none"),
        records=int(raw["records"]),
        splits={k: SplitSummary(**v) for k, v in raw["splits"].items()},
        shards=tuple(ShardEntry(**s) for s in raw["shards"]),
        split_method=SplitMethod(**raw["split_method"]),
        geolocation=dict(raw["geolocation"]),
        inputs=InputSummary(**inputs),
        quarantine=QuarantineSummary(**raw["quarantine"]),
        image_changes=dict(raw.get("image_changes", {})),
        formats=dict(raw.get("formats", {})),
        run=dict(raw.get("run", {})),
        schema_version=SCHEMA_VERSION,
        context=int(raw.get("context", 1)),
    )


@dataclass(frozen=True)
class Records:
    """A complete records folder: where it is, its manifest, and the manifest file's hash."""

    root: str
    manifest: Manifest
    manifest_sha256: str

    def identity(self) -> dict[str, str]:
        """What a run records about the records it read: where, and both hashes."""
        return {
            "records": self.root,
            "records_manifest_sha256": self.manifest_sha256,
            "records_listing_sha256": self.manifest.inputs.listing_sha256,
        }

    def shard_paths(self, split: str) -> list[str]:
        """Paths (or gs:// URLs) of a split's shards, in manifest order."""
        root = self.root.rstrip("/")
        return [f"{root}/{s.name}" for s in self.manifest.shards_of(split)]


def _read(root: str) -> tuple[storage.Store, bytes]:
    if not storage.is_gcs(root) and Path(root).is_file():
        raise RecordsError(
            f"{root}: a file, not a records folder (make_records writes a folder with "
            "manifest.json and shards)"
        )
    store = storage.open_store(root)
    try:
        return store, store.read_bytes(MANIFEST_NAME)
    except FileNotFoundError as err:
        raise RecordsError(
            f"{store.url(MANIFEST_NAME)} not found: not a records folder, or make_records did "
            "not finish (re-run it to complete)"
        ) from err


def load_manifest(root: str) -> Manifest:
    """Read and check `ROOT/manifest.json` (local or gs://)."""
    store, data = _read(root)
    return Manifest.from_json(data, store.url(MANIFEST_NAME))


def load_records(root: str, check_shards: bool = True) -> Records:
    """Read a records folder's manifest and check that its shards exist with the listed sizes.

    Raises:
        RecordsError: no manifest, an unknown schema, or a shard that is missing or resized.
    """
    store, data = _read(root)
    manifest = Manifest.from_json(data, store.url(MANIFEST_NAME))
    if check_shards:
        for shard in manifest.shards:
            try:
                size: int | None = store.size(shard.name)
            except FileNotFoundError:
                size = None
            if size != shard.bytes:
                found = "missing" if size is None else f"{size} bytes"
                raise RecordsError(
                    f"{store.url(shard.name)}: manifest lists {shard.bytes} bytes, found {found}; "
                    "the records are incomplete or damaged: re-run make_records (or check with "
                    "`python -m tools.inspect_records`)"
                )
    return Records(root, manifest, hashlib.sha256(data).hexdigest())
