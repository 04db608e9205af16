"""What `satx.predict` runs over: an ordered, indexable list of tiles and a way to read them.

Four kinds of input, one interface (`len`, `fingerprint`, `read(start, stop)`):
- a records folder (every split, or `--split`): tiles with their stored geolocation;
- a folder of tiles, local or gs://, named by any make_records pattern (`z/x/y`, `x-y-z`,
  `z_x_y`); files without a tile address are scored but have no place on the map;
- a CSV listing tiles by `path`, or by `z,x,y` or `lon,lat` (with `--zoom`) plus a `--tiles`
  source;
- an area and zoom with a `--tiles` source (any of `satx.tiles.sources`): a bounding box
  (enumerated arithmetically in mercantile's order) or a polygon AOI (`satx.tiles.aoi`:
  counted exactly, handed out lazily in quadkey order), so a country (tens of millions of
  tiles) is never a list in memory.

Reading returns encoded bytes, or a reason per tile that cannot be read (missing file, no
imagery at the service, bad CSV row); nothing is ever replaced by a blank tile.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

import mercantile

from satx import geo
from satx.config import SourceConfig
from satx.errors import InputError, RecordsError
from satx.io import storage
from satx.records.manifest import MANIFEST_NAME, load_records
from satx.records.schema import iter_shard
from satx.records.sources import IMAGE_EXTENSIONS
from satx.tiles.aoi import load_aoi
from satx.tiles.areas import Area, BboxArea
from satx.tiles.sources import TileSource, open_source, read_locations

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictTile:
    """One item to score: what the user knows it by, and where it is on the map (if anywhere)."""

    source_id: str
    tile: mercantile.Tile | None


@dataclass
class ChunkData:
    """A contiguous run of input items: their bytes, or why they could not be read."""

    tiles: list[PredictTile]
    encoded: list[bytes | None]
    errors: dict[int, tuple[str, str]] = field(default_factory=dict)  # position -> (reason, detail)


class TileInput(Protocol):
    """An ordered list of tiles to score."""

    kind: str

    def __len__(self) -> int:
        """How many items."""

    def fingerprint(self) -> dict:
        """What identifies this input (a re-run must see the same to resume)."""

    def read(self, start: int, stop: int) -> ChunkData:
        """Items `start..stop-1` with their bytes."""

    def close(self) -> None:
        """Release threads, connections and files."""


def _sha256_lines(lines: list[str]) -> str:
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()


class FileTiles:
    """Tiles read from files (a folder listing, CSV paths) or from the tile source.

    CSV rows that name a tile (z,x,y or lon,lat) rather than a file read through the source.
    """

    def __init__(
        self,
        kind: str,
        where: str,
        tiles: list[PredictTile],
        locations: list[str | mercantile.Tile | None],
        *,
        bad_rows: dict[int, tuple[str, str]] | None = None,
        source: TileSource | None = None,
        threads: int = 16,
    ):
        self.kind, self.where = kind, where
        self.tiles, self.locations = tiles, locations
        self.bad_rows = bad_rows or {}
        self.source = source
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads))

    def __len__(self) -> int:
        return len(self.tiles)

    def _location_text(self, location: str | mercantile.Tile | None) -> str:
        if isinstance(location, mercantile.Tile):
            assert self.source is not None
            return f"{self.source.description}#{geo.tile_key(location)}"
        return str(location)

    def fingerprint(self) -> dict:
        """Kind, place, count and a hash of every item's id and location."""
        lines = [
            f"{t.source_id}\t{self._location_text(loc)}"
            for t, loc in zip(self.tiles, self.locations, strict=True)
        ]
        return {
            "kind": self.kind,
            "input": self.where,
            "count": len(self),
            "sha256": _sha256_lines(lines),
        }

    def read(self, start: int, stop: int) -> ChunkData:
        """Read items `start..stop-1`: files in parallel, tiles through the source."""
        locations = self.locations[start:stop]
        files = [loc if isinstance(loc, str) else None for loc in locations]
        encoded, errors = read_locations(files, self._pool)
        via = [i for i, loc in enumerate(locations) if isinstance(loc, mercantile.Tile)]
        if via and self.source is not None:
            data, source_errors = self.source.read([locations[i] for i in via])
            for k, i in enumerate(via):
                encoded[i] = data[k]
                if k in source_errors:
                    errors[i] = source_errors[k]
        for i in range(start, stop):
            if i in self.bad_rows:
                errors[i - start] = self.bad_rows[i]
        return ChunkData(self.tiles[start:stop], encoded, errors)

    def close(self) -> None:
        """Stop the reading threads and close the source."""
        self._pool.shutdown()
        if self.source is not None:
            self.source.close()


class AreaTiles:
    """The tiles of an area (a bbox or a polygon AOI) at one zoom, read from a tile source."""

    def __init__(self, area: Area, source: TileSource):
        self.area, self.source = area, source
        self.kind = area.kind

    def __len__(self) -> int:
        return len(self.area)

    def fingerprint(self) -> dict:
        """The area, the source and the count."""
        return {
            "kind": self.kind,
            **self.area.fingerprint(),
            "tiles": self.source.description,
            "count": len(self),
        }

    def read(self, start: int, stop: int) -> ChunkData:
        """Read tiles `start..stop-1` from the source."""
        tiles = self.area.tiles(start, stop)
        encoded, errors = self.source.read(tiles)
        return ChunkData([PredictTile(geo.tile_key(t), t) for t in tiles], encoded, errors)

    def close(self) -> None:
        """Close the source."""
        self.source.close()


def folder_tiles(root: str, threads: int) -> FileTiles:
    """Every .jpg/.jpeg/.png under a local folder or gs:// prefix, sorted by path."""
    store = storage.open_store(root)
    names = [
        n
        for n in store.list()
        if PurePosixPath(n).suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in PurePosixPath(n).parts)
    ]
    if not names:
        raise InputError(f"--input={root}: no .jpg/.jpeg/.png tiles in this folder")
    tiles = [PredictTile(n, geo.parse_tile_path(n)) for n in names]
    without = sum(t.tile is None for t in tiles)
    if without:
        log.warning(
            "%d of %d files have no tile address in their name (z/x/y, x-y-z or z_x_y): they "
            "are scored but have no polygon",
            without,
            len(tiles),
        )
    locations: list[str | mercantile.Tile | None] = [store.url(n) for n in names]
    return FileTiles("folder", root, tiles, locations, threads=threads)


def _csv_row(
    row: dict[str, str], where: str, base: str, zoom: int, source: TileSource | None
) -> tuple[PredictTile, str | mercantile.Tile | None]:
    path = row.get("path", "")
    if {"z", "x", "y"} <= row.keys() and any(row[k] for k in "zxy"):
        tile = geo.make_tile(*(int(row[k]) for k in "zxy"))
        if tile is None:
            raise ValueError(f"z,x,y = {row['z']},{row['x']},{row['y']} is not a tile address")
    elif {"lon", "lat"} <= row.keys() and not path:
        if not zoom:
            raise InputError(f"{where}: a CSV of lon,lat needs --zoom")
        tile = mercantile.tile(float(row["lon"]), float(row["lat"]), zoom)
    else:
        tile = geo.parse_tile_path(path) if path else None
    if path:
        absolute = storage.is_gcs(path) or PurePosixPath(path).is_absolute()
        return PredictTile(path, tile), path if absolute else f"{base}/{path}"
    if tile is None:
        raise ValueError("no path, z,x,y or lon,lat")
    if source is None:
        raise InputError(f"{where}: rows without a path need --tiles to say where tiles live")
    return PredictTile(geo.tile_key(tile), tile), tile


def csv_tiles(path: str, zoom: int, source: TileSource | None, threads: int) -> FileTiles:
    """Tiles listed in a CSV: `path` and/or `z,x,y`, or `lon,lat` with `--zoom`."""
    if storage.is_gcs(path):
        folder, _, name = path.rpartition("/")
        text = storage.open_store(folder).read_bytes(name).decode("utf-8-sig")
        base = folder
    else:
        if not Path(path).is_file():
            raise InputError(f"--input={path}: no such CSV file")
        text = Path(path).read_text(encoding="utf-8-sig")
        base = str(Path(path).parent.absolute())
    reader = csv.DictReader(text.splitlines())
    columns = {c.strip().lower() for c in reader.fieldnames or []}
    if not ({"path"} <= columns or {"z", "x", "y"} <= columns or {"lon", "lat"} <= columns):
        raise InputError(
            f"{path}: needs a header with 'path', or 'z,x,y', or 'lon,lat'; found {sorted(columns)}"
        )
    tiles, locations, bad, seen = [], [], {}, set()
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        where = f"{path}:{line}"
        try:
            tile, location = _csv_row(row, where, base, zoom, source)
        except ValueError as err:
            bad[len(tiles)] = ("bad_row", f"{where}: {err}")
            tile, location = PredictTile(f"{where}", None), None
        if tile.source_id in seen:
            log.warning("%s: %s listed again; scored once", where, tile.source_id)
            continue
        seen.add(tile.source_id)
        tiles.append(tile)
        locations.append(location)
    if not tiles:
        raise InputError(f"{path}: no rows")
    return FileTiles("csv", path, tiles, locations, bad_rows=bad, source=source, threads=threads)


class RecordsTiles:
    """The records of a folder's splits, in manifest order (the labels are ignored)."""

    kind = "records"

    def __init__(self, root: str, split: str = ""):
        self.records = load_records(root)
        manifest = self.records.manifest
        self.split = split or "+".join(manifest.splits)
        self.shards = manifest.shards_of(self.split)
        self.paths = self.records.shard_paths(self.split)
        self.compression = manifest.compression
        self.store = storage.open_store(root)

    def __len__(self) -> int:
        return sum(s.records for s in self.shards)

    def fingerprint(self) -> dict:
        """Folder, split, count and the hash of the manifest file."""
        return {
            "kind": self.kind,
            "input": self.records.root,
            "split": self.split,
            "count": len(self),
            "manifest_sha256": self.records.manifest_sha256,
        }

    def read(self, start: int, stop: int) -> ChunkData:
        """Records `start..stop-1`; records a damaged shard cannot deliver become errors."""
        tiles, encoded, errors = [], [], {}
        offset = 0
        for shard, path in zip(self.shards, self.paths, strict=True):
            n = shard.records
            lo, hi = max(start, offset), min(stop, offset + n)
            offset += n
            if lo >= hi:
                continue
            got = 0
            try:
                with self.store.open(shard.name) as f:
                    for ex in iter_shard(f, self.compression, lo - (offset - n), hi - lo):
                        tiles.append(PredictTile(ex.source_id, ex.tile))
                        encoded.append(ex.encoded)
                        got += 1
            except RecordsError as err:
                log.warning("%s: damaged after %d records: %s", path, got, err)
            for k in range(lo + got, hi):
                errors[len(tiles)] = (
                    "unreadable_record",
                    f"{path}: record {k - (offset - n)} is damaged",
                )
                tiles.append(PredictTile(f"{shard.name}#{k - (offset - n)}", None))
                encoded.append(None)
        return ChunkData(tiles, encoded, errors)

    def close(self) -> None:
        """Nothing to release (each read opens and closes its shards)."""


def open_input(
    input_path: str,
    *,
    bbox: tuple[float, ...] | None = None,
    aoi: str = "",
    zoom: int = 0,
    source: SourceConfig | None = None,
    split: str = "",
    threads: int = 16,
) -> TileInput:
    """The input a predict run names: an area and a tile source, records, a CSV or a folder.

    Close it when done.
    """
    source = source or SourceConfig()
    if bbox or aoi:
        if sum(map(bool, (input_path, bbox, aoi))) > 1:
            raise InputError("give one of --input, --bbox or --aoi")
        if not zoom:
            raise InputError(f"--{'bbox' if bbox else 'aoi'} needs --zoom (e.g. --zoom=18)")
        area = BboxArea(bbox, zoom) if bbox else load_aoi(aoi, zoom)
        return AreaTiles(area, open_source(source))
    if not input_path:
        raise InputError(
            "--input (records folder, tile folder or CSV), --bbox or --aoi is required"
        )
    if input_path.lower().endswith(".csv"):
        return csv_tiles(input_path, zoom, open_source(source) if source.tiles else None, threads)
    if storage.open_store(input_path).exists(MANIFEST_NAME):
        return RecordsTiles(input_path, split)
    if not storage.is_gcs(input_path) and not Path(input_path).is_dir():
        raise InputError(f"--input={input_path}: no such folder or CSV file")
    return folder_tiles(input_path, threads)
