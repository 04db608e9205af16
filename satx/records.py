"""The TFRecord schema of satx, defined once for the writer and every reader.

TensorFlow is imported only by the readers below: make_records' writer processes serialise
examples with `tfrecord_io` and start without it.

Feature keys follow TensorFlow's image-record convention (Model Garden / Object Detection API)
so other tools can read the shards; geolocation lives under `tile/*` and `geo/*`.
`image/key/sha256` is the SHA-256 of the *source file's* bytes (the content hash used for
de-duplication); it equals the hash of `image/encoded` whenever the source was kept as-is.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mercantile

from satx import geo, tfrecord_io
from satx.errors import RecordsError

if TYPE_CHECKING:
    import tensorflow as tf

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
QUARANTINE_NAME = "quarantine.jsonl"
COMPRESSIONS = {"none": "", "gzip": "GZIP"}

IMAGE_ENCODED = "image/encoded"
IMAGE_FORMAT = "image/format"
IMAGE_HEIGHT = "image/height"
IMAGE_WIDTH = "image/width"
CLASS_LABEL = "image/class/label"
CLASS_TEXT = "image/class/text"
SOURCE_ID = "image/source_id"
SHA256 = "image/key/sha256"
TILE_Z = "tile/z"
TILE_X = "tile/x"
TILE_Y = "tile/y"
QUADKEY = "tile/quadkey"
LON = "geo/lon"
LAT = "geo/lat"
BBOX = "geo/bbox"

SPLIT_PRIORITY = ("train", "val", "valid", "validation", "dev", "eval", "test")
_SHARD_RE = re.compile(r"^(?P<split>[a-z0-9_]+)-(?P<i>\d{5})-of-(?P<n>\d{5})\.tfrecord(\.gz)?$")


@dataclass(frozen=True)
class TileExample:
    """One labelled tile as stored in a record."""

    encoded: bytes
    image_format: str  # "jpeg" or "png"
    height: int
    width: int
    label: int
    label_text: str
    source_id: str
    sha256: str
    tile: mercantile.Tile | None

    @property
    def geolocation(self) -> geo.Geolocation | None:
        """Centre, bounds and quadkey, when the tile address is known."""
        return geo.geolocate(self.tile) if self.tile is not None else None


def feature_spec() -> dict[str, tf.io.FixedLenFeature]:
    """The parse spec; defaults let records without geolocation parse as 'unknown'."""
    import tensorflow as tf

    nan = float("nan")
    return {
        IMAGE_ENCODED: tf.io.FixedLenFeature([], tf.string),
        IMAGE_FORMAT: tf.io.FixedLenFeature([], tf.string, default_value=b"jpeg"),
        IMAGE_HEIGHT: tf.io.FixedLenFeature([], tf.int64),
        IMAGE_WIDTH: tf.io.FixedLenFeature([], tf.int64),
        CLASS_LABEL: tf.io.FixedLenFeature([], tf.int64),
        CLASS_TEXT: tf.io.FixedLenFeature([], tf.string, default_value=b""),
        SOURCE_ID: tf.io.FixedLenFeature([], tf.string, default_value=b""),
        SHA256: tf.io.FixedLenFeature([], tf.string, default_value=b""),
        TILE_Z: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        TILE_X: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        TILE_Y: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        QUADKEY: tf.io.FixedLenFeature([], tf.string, default_value=b""),
        LON: tf.io.FixedLenFeature([], tf.float32, default_value=nan),
        LAT: tf.io.FixedLenFeature([], tf.float32, default_value=nan),
        BBOX: tf.io.FixedLenFeature([4], tf.float32, default_value=[nan] * 4),
    }


def encode_example(example: TileExample) -> bytes:
    """Serialize a tile to `tf.train.Example` bytes, deterministically (sorted map keys)."""
    location = example.geolocation
    z, x, y = (example.tile.z, example.tile.x, example.tile.y) if example.tile else (-1, -1, -1)
    nan = math.nan
    features = {
        IMAGE_ENCODED: [example.encoded],
        IMAGE_FORMAT: [example.image_format.encode()],
        IMAGE_HEIGHT: [example.height],
        IMAGE_WIDTH: [example.width],
        CLASS_LABEL: [example.label],
        CLASS_TEXT: [example.label_text.encode()],
        SOURCE_ID: [example.source_id.encode()],
        SHA256: [example.sha256.encode()],
        TILE_Z: [z],
        TILE_X: [x],
        TILE_Y: [y],
        QUADKEY: [location.quadkey.encode() if location else b""],
        LON: [float(location.lon) if location else nan],
        LAT: [float(location.lat) if location else nan],
        BBOX: [float(v) for v in location.bbox] if location else [nan] * 4,
    }
    return tfrecord_io.example_bytes(features)


def parse_examples(
    serialized: tf.Tensor, keys: tuple[str, ...] | None = None
) -> dict[str, tf.Tensor]:
    """Parse a batch (1-D string tensor) of serialized records; works eagerly and in tf.data.

    `keys` limits parsing to those features (training needs only the image and its label).
    """
    import tensorflow as tf

    spec = feature_spec()
    if keys is not None:
        spec = {key: spec[key] for key in keys}
    return tf.io.parse_example(serialized, spec)


def example_from_features(features: Mapping[str, Any]) -> TileExample:
    """Build a `TileExample` from one parsed record (numpy scalars / arrays)."""
    z, x, y = (int(features[k]) for k in (TILE_Z, TILE_X, TILE_Y))
    tile = geo.make_tile(z, x, y) if z >= 0 else None
    return TileExample(
        encoded=bytes(features[IMAGE_ENCODED]),
        image_format=bytes(features[IMAGE_FORMAT]).decode(),
        height=int(features[IMAGE_HEIGHT]),
        width=int(features[IMAGE_WIDTH]),
        label=int(features[CLASS_LABEL]),
        label_text=bytes(features[CLASS_TEXT]).decode(),
        source_id=bytes(features[SOURCE_ID]).decode(),
        sha256=bytes(features[SHA256]).decode(),
        tile=tile,
    )


def iter_shard(
    path: str, compression: str = "none", batch_size: int = 256, skip: int = 0, take: int = -1
) -> Iterator[TileExample]:
    """Yield the examples of one shard in file order (records `skip..skip+take-1` if given)."""
    import tensorflow as tf

    dataset = tf.data.TFRecordDataset(path, compression_type=COMPRESSIONS[compression])
    dataset = dataset.skip(skip).take(take)
    for batch in dataset.batch(batch_size).map(parse_examples).as_numpy_iterator():
        for i in range(len(batch[IMAGE_ENCODED])):
            yield example_from_features({k: v[i] for k, v in batch.items()})


def count_records(path: str, compression: str = "none") -> int:
    """Count the records of a local shard (reads framing only; raises on a damaged file)."""
    import tensorflow as tf

    dataset = tf.data.TFRecordDataset(path, compression_type=COMPRESSIONS[compression])
    try:
        return int(dataset.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1).numpy())
    except tf.errors.OpError as err:
        raise RecordsError(
            f"{path}: damaged TFRecord shard ({err.message.splitlines()[0]})"
        ) from err


def shard_name(split: str, index: int, count: int, compression: str = "none") -> str:
    """`{split}-{i:05d}-of-{n:05d}.tfrecord`, with `.gz` appended for GZIP shards."""
    suffix = ".gz" if compression == "gzip" else ""
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord{suffix}"


def split_rank(name: str) -> tuple[int, str]:
    """Sort key putting splits in their usual order (train, val, ..., test, then others)."""
    known = name in SPLIT_PRIORITY
    return (SPLIT_PRIORITY.index(name) if known else len(SPLIT_PRIORITY), name)


def is_shard_name(name: str) -> bool:
    """Whether a file name is one of ours (used before deleting anything on --overwrite)."""
    return _SHARD_RE.match(name) is not None


def manifest_to_json(manifest: Mapping[str, Any]) -> bytes:
    """Stable JSON encoding of a manifest (sorted keys, trailing newline)."""
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    """Parse and check a manifest; `where` names it in errors."""
    try:
        manifest = json.loads(data)
    except json.JSONDecodeError as err:
        raise RecordsError(f"{where}: not valid JSON ({err}); re-run make_records") from err
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise RecordsError(
            f"{where}: schema_version {version!r}, this satx reads {SCHEMA_VERSION}; "
            "re-make the records with this version of tools.make_records"
        )
    for key in ("class_names", "splits", "shards", "image_size"):
        if key not in manifest:
            raise RecordsError(f"{where}: missing key {key!r}; re-run make_records")
    return manifest


def describe_manifest(manifest: Mapping[str, Any]) -> str:
    """A short human summary of a records folder: splits x classes, shards, quarantine."""
    classes = manifest["class_names"]
    width = max(12, *(len(c) for c in classes))
    header = (
        f"{'split':<10} " + " ".join(f"{c:>{width}}" for c in classes) + f" {'total':>8} shards"
    )
    lines = [
        f"records: {manifest.get('records', '?')} tiles, {len(classes)} classes, "
        f"{manifest['image_size']}px, schema v{manifest['schema_version']}, "
        f"compression {manifest.get('compression', 'none')}",
        header,
    ]
    for split, entry in sorted(manifest["splits"].items(), key=lambda kv: split_rank(kv[0])):
        counts = " ".join(f"{entry['classes'].get(c, 0):>{width}}" for c in classes)
        lines.append(f"{split:<10} {counts} {entry['records']:>8} {entry['shards']:>6}")
    method = manifest.get("split_method", {})
    geoinfo = manifest.get("geolocation", {})
    quarantine = manifest.get("quarantine", {})
    lines.append(
        f"split: {method.get('method')} (zoom {method.get('zoom')}, seed {method.get('seed')}); "
        f"geolocated {geoinfo.get('with', 0)}, without {geoinfo.get('without', 0)}"
    )
    lines.append(
        f"quarantined: {quarantine.get('count', 0)} {quarantine.get('reasons', {})}; "
        f"image changes: {manifest.get('image_changes', {})}"
    )
    return "\n".join(lines)
