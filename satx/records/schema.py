"""The TFRecord schema of satx, defined once for the writer and every reader.

`FEATURES` is the table of every feature (kind, length, default); the writer below, the
pure-Python reader below and the tf.data parser (`satx.data.read.feature_spec`) all derive from
it. Nothing here imports TensorFlow: make_records' workers and `tools.inspect_records` run
without it.

Feature keys follow TensorFlow's image-record convention (Model Garden / Object Detection API)
so other tools can read the shards; geolocation lives under `tile/*` and `geo/*`.
`image/key/sha256` is the SHA-256 of the *source file's* bytes (the content hash used for
de-duplication); it equals the hash of `image/encoded` whenever the source was kept as-is.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import mercantile

from satx import geo
from satx.io import tfrecord
from satx.tiles.windows import Window

SCHEMA_VERSION = 2  # 2: the manifest names the input listing's hash `listing_sha256`
COMPRESSION_TYPES = {"none": "", "gzip": "GZIP"}  # satx's names -> TFRecordDataset's

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
WINDOW = "tile/window"  # a context window's side in tiles; tile/* is its top-left tile


@dataclass(frozen=True)
class Feature:
    """One stored feature: its kind, how many values, and the value a missing one reads as."""

    kind: str  # "bytes", "int64" or "float"
    length: int = 1
    default: Any = None  # None: required


_NAN = float("nan")
FEATURES: dict[str, Feature] = {
    IMAGE_ENCODED: Feature("bytes"),
    IMAGE_FORMAT: Feature("bytes", default=b"jpeg"),
    IMAGE_HEIGHT: Feature("int64"),
    IMAGE_WIDTH: Feature("int64"),
    CLASS_LABEL: Feature("int64"),
    CLASS_TEXT: Feature("bytes", default=b""),
    SOURCE_ID: Feature("bytes", default=b""),
    SHA256: Feature("bytes", default=b""),
    # Unknown geolocation reads as -1 / "" / NaN, so shards from other tools parse too.
    TILE_Z: Feature("int64", default=-1),
    TILE_X: Feature("int64", default=-1),
    TILE_Y: Feature("int64", default=-1),
    QUADKEY: Feature("bytes", default=b""),
    LON: Feature("float", default=_NAN),
    LAT: Feature("float", default=_NAN),
    BBOX: Feature("float", length=4, default=[_NAN] * 4),
    WINDOW: Feature("int64", default=1),  # written only for windows: tiles' records unchanged
}

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
    tile: mercantile.Tile | None  # a window's top-left tile
    window: int = 1  # the image is a window of window x window tiles (`satx.tiles.windows`)

    @property
    def geolocation(self) -> geo.Geolocation | None:
        """Centre, bounds and quadkey (a window's: its centre and bounds, its top-left's key)."""
        if self.tile is None:
            return None
        if self.window == 1:
            return geo.geolocate(self.tile)
        window = Window.of(self.tile, self.window)
        lon, lat = window.centre()
        return geo.Geolocation(mercantile.quadkey(self.tile), lon, lat, window.bounds())


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
    if example.window != 1:
        features[WINDOW] = [example.window]
    return tfrecord.example_bytes(features)


def example_from_features(features: Mapping[str, Any]) -> TileExample:
    """Build a `TileExample` from one record's features (scalars; numpy or Python)."""
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
        window=int(features.get(WINDOW, 1)),
    )


def decode_example(data: bytes) -> TileExample:
    """Serialised record bytes -> `TileExample` (pure Python; missing features take defaults)."""
    raw = tfrecord.parse_example(data)
    features: dict[str, Any] = {}
    for key, spec in FEATURES.items():
        values = raw.get(key)
        if not values:
            if spec.default is None:
                raise ValueError(f"record without the required feature {key!r}")
            values = spec.default if spec.length > 1 else [spec.default]
        features[key] = values[0] if spec.length == 1 else list(values)
    return example_from_features(features)


def iter_shard(
    source: str | BinaryIO, compression: str = "none", skip: int = 0, take: int = -1
) -> Iterator[TileExample]:
    """Yield the examples of one shard (a local path or an open file) in file order.

    Records `skip..skip+take-1` only, when given.

    Raises:
        RecordsError: at the first damaged record.
    """
    stop = None if take < 0 else skip + take
    for data in itertools.islice(tfrecord.read_records(source, compression), skip, stop):
        yield decode_example(data)


def count_records(source: str | BinaryIO, compression: str = "none", name: str = "") -> int:
    """Count the records of a shard (a local path or an open file), checking every checksum.

    Raises:
        RecordsError: the shard is damaged (naming the record).
    """
    return sum(1 for _ in tfrecord.read_records(source, compression, name))


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
