"""What `satx.predict` runs over: an ordered, indexable list of tiles and a way to read them.

Four kinds of input, one interface (`len`, `fingerprint`, `read(start, stop)`):
- a records folder (every split, or `--split`): tiles with their stored geolocation;
- a folder of tiles, local or gs:// (`satx.tiles.folders`); files without a tile address in
  their name are scored but have no place on the map;
- a CSV listing tiles by `path`, `z,x,y` or `lon,lat` (`satx.tiles.tables`; rows without a
  path read from the `--tiles` source);
- an area and zoom with a `--tiles` source: a bounding box or a polygon AOI (with scenes, by
  default the scenes' footprint at their own zoom)
  (`satx.tiles.areas`, `satx.tiles.aoi`), counted exactly and handed out lazily, so a country
  (tens of millions of tiles) is never a list in memory; with `--mask`, only the area's tiles
  near built-up features (`satx.tiles.mask`), as an array of their addresses.

Reading returns encoded bytes, or a reason per tile that cannot be read (missing file, no
imagery at the service, bad CSV row); nothing is ever replaced by a blank tile.
"""

from __future__ import annotations

import hashlib
import io
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from satx import geo
from satx.config import PredictInputs
from satx.errors import InputError, RecordsError
from satx.io import storage
from satx.predict.result import MASK_DIR
from satx.predict.windows import COLUMNS as WINDOW_COLUMNS
from satx.predict.windows import WindowSet, plan_windows, read_cells
from satx.records.manifest import MANIFEST_NAME, load_records
from satx.records.schema import iter_shard
from satx.tiles.aoi import PolygonArea, load_aoi
from satx.tiles.areas import Area, BboxArea
from satx.tiles.base import Errors, SceneSource, read_refs
from satx.tiles.formats import too_large
from satx.tiles.kinds import input_rows
from satx.tiles.mask import MaskedArea, mask_identity, mask_keys
from satx.tiles.refs import Rejection, TileRef
from satx.tiles.scene_list import is_scene_spec
from satx.tiles.sources import TileSource, open_source

log = logging.getLogger(__name__)


@dataclass
class ChunkData:
    """A contiguous run of input items: their bytes, or why they could not be read."""

    tiles: list[TileRef]
    encoded: list[bytes | None]
    errors: Errors = field(default_factory=dict)  # position -> (reason, detail)
    coverage: list[float] | None = None  # scenes: each tile's valid share (NaN: a file's)
    windows: WindowSet | None = None  # --context: the windows over these tiles, and their cells
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # columns scoring adds (peaks)


def readable(chunk: ChunkData) -> list[int]:
    """Positions of a chunk's tiles that were read (not yet known to decode).

    A tile whose header claims more pixels than any tile has becomes a `too_large` error here,
    before anything decodes it.
    """
    for i, data in enumerate(chunk.encoded):
        if data is not None and i not in chunk.errors and (why := too_large(data)) is not None:
            chunk.errors[i] = ("too_large", why)
    return [i for i, b in enumerate(chunk.encoded) if b is not None and i not in chunk.errors]


class TileInput(Protocol):
    """An ordered list of tiles to score."""

    kind: str
    columns: tuple[str, ...]  # what its chunks add to the rows: ("coverage",) for scenes

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


class ListedTiles:
    """The tiles of a listing (a folder, a CSV), read from their files or the tile source.

    A refused row keeps its place (its id is where it was listed) and is read as its reason.
    """

    def __init__(
        self,
        kind: str,
        where: str,
        rows: list[TileRef | Rejection],
        source: TileSource | None = None,
        threads: int = 16,
    ):
        self.kind, self.where, self.source = kind, where, source
        self.columns = _columns(source)
        self.refs = [r if isinstance(r, TileRef) else TileRef(r.source_id, None) for r in rows]
        self.bad = {i: (r.reason, r.detail) for i, r in enumerate(rows) if isinstance(r, Rejection)}
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads))

    def __len__(self) -> int:
        return len(self.refs)

    def _location_text(self, ref: TileRef) -> str:
        if ref.location is None and ref.tile is not None:
            assert self.source is not None
            return f"{self.source.description}#{geo.tile_key(ref.tile)}"
        return str(ref.location)

    def fingerprint(self) -> dict:
        """Kind, place, count and a hash of every item's id and location."""
        lines = [f"{r.source_id}\t{self._location_text(r)}" for r in self.refs]
        return {
            "kind": self.kind,
            "input": self.where,
            "count": len(self),
            "sha256": _sha256_lines(lines),
        }

    def read(self, start: int, stop: int) -> ChunkData:
        """Read items `start..stop-1`: files in parallel, tiles through the source."""
        refs = self.refs[start:stop]
        encoded, errors, coverage = read_refs(refs, self._pool, self.source)
        for i in range(start, min(stop, len(self.refs))):
            if i in self.bad:
                errors[i - start] = self.bad[i]
        return ChunkData(refs, encoded, errors, coverage)

    def close(self) -> None:
        """Stop the reading threads and close the source."""
        self._pool.shutdown()
        if self.source is not None:
            self.source.close()


class AreaTiles:
    """The tiles of an area (a bbox or a polygon AOI) at one zoom, read from a tile source.

    With `context` > 1, a chunk also holds the windows over its tiles (`predict.windows`).
    """

    def __init__(self, area: Area, source: TileSource, context: int = 1):
        self.area, self.source, self.context = area, source, context
        self.kind, self.columns = area.kind, _columns(source)
        if context > 1:
            self.columns += WINDOW_COLUMNS

    def __len__(self) -> int:
        return len(self.area)

    def fingerprint(self) -> dict:
        """The area, the source and the count."""
        source = self.source
        return {
            "kind": self.kind,
            **self.area.fingerprint(),
            "tiles": source.description,
            # scenes: each one's hash, bands and rescale
            **({"scenes": source.identity()} if isinstance(source, SceneSource) else {}),
            "count": len(self),
            **({"context": self.context} if self.context > 1 else {}),
        }

    def read(self, start: int, stop: int) -> ChunkData:
        """Read tiles `start..stop-1` from the source."""
        tiles = self.area.tiles(start, stop)
        refs = [TileRef(geo.tile_key(t), t) for t in tiles]
        if self.context > 1:  # the windows' tiles, each read once; the chunk's are among them
            ws = plan_windows(self.area, tiles, self.context)
            coverage = read_cells(ws, self.source)
            errors = {j: ws.errors[c] for j, c in enumerate(ws.at.tolist()) if c in ws.errors}
            shares = None if coverage is None else [coverage[c] for c in ws.at.tolist()]
            encoded = [ws.encoded[c] for c in ws.at.tolist()]
            return ChunkData(refs, encoded, errors, shares, ws)
        if isinstance(self.source, SceneSource):
            return ChunkData(refs, *self.source.read_covered(tiles))
        return ChunkData(refs, *self.source.read(tiles))

    def close(self) -> None:
        """Close the source."""
        self.source.close()


def _columns(source: TileSource | None) -> tuple[str, ...]:
    """The columns a source adds to the rows: a scene's tiles carry their coverage."""
    return ("coverage",) if isinstance(source, SceneSource) else ()


def _listed_tiles(path: str, zoom: int, source: TileSource | None, threads: int) -> ListedTiles:
    """The rows of a tile listing (`satx.tiles.kinds`: a folder, a CSV), each tile once."""
    kind, found = input_rows(path, zoom)
    rows, seen = [], set()
    for row in found:
        if isinstance(row, TileRef):  # a refused row is known by its line: never a repeat
            if row.source_id in seen:
                log.warning("%s: %s listed again; scored once", row.origin, row.source_id)
                continue
            seen.add(row.source_id)
        rows.append(row)
    refs = [r for r in rows if isinstance(r, TileRef)]
    if source is None and any(r.location is None for r in refs):
        raise InputError(f"{path}: rows without a path need --tiles to say where tiles live")
    without = sum(r.tile is None for r in refs)
    if without:
        log.warning(
            "%d of %d files have no tile address in their name (z/x/y, x-y-z or z_x_y): they "
            "are scored but have no polygon",
            without,
            len(refs),
        )
    return ListedTiles(kind.name, path, rows, source=source, threads=threads)


class RecordsTiles:
    """The records of a folder's splits, in manifest order (the labels are ignored)."""

    kind = "records"
    columns = ()

    def __init__(self, root: str, split: str = ""):
        self.records = load_records(root)
        manifest = self.records.manifest
        self.split = split or "+".join(manifest.splits)
        self.shards = manifest.shards_of(self.split)
        self.paths = self.records.shard_paths(self.split)
        self.compression = manifest.compression
        self.store = storage.open_store(root)
        if manifest.context > 1:
            log.warning(
                "%s holds %s: each row is placed at its window's top-left tile",
                root,
                manifest.window_name,
            )

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
                        tiles.append(TileRef(ex.source_id, ex.tile))
                        encoded.append(ex.encoded)
                        got += 1
            except RecordsError as err:
                log.warning("%s: damaged after %d records: %s", path, got, err)
            for k in range(lo + got, hi):
                errors[len(tiles)] = (
                    "unreadable_record",
                    f"{path}: record {k - (offset - n)} is damaged",
                )
                tiles.append(TileRef(f"{shard.name}#{k - (offset - n)}", None))
                encoded.append(None)
        return ChunkData(tiles, encoded, errors)

    def close(self) -> None:
        """Nothing to release (each read opens and closes its shards)."""


def _masked(area: Area, config: PredictInputs, output: str, keep: bool) -> MaskedArea:
    """The area's tiles that the mask keeps.

    The mask's tiles are kept (`keep`) in the `output`'s `_mask/` (named by the mask's content
    and settings), so a resumed run and every Beam worker read them instead of building them
    again.
    """
    identity = mask_identity(config.mask, config.mask_buffer_m, config.mask_threshold)
    settings = f"{identity['mask_sha256'][:16]}-z{area.zoom}-{config.mask_buffer_m:g}m"
    name = f"{MASK_DIR}/{settings}-{config.mask_threshold:g}.npy"
    store = storage.open_store(output) if output else None
    if store is not None and store.exists(name):
        keys = np.load(io.BytesIO(store.read_bytes(name)))
    else:
        keys = mask_keys(config.mask, area.zoom, config.mask_buffer_m, config.mask_threshold)
        if store is not None and keep:
            buffer = io.BytesIO()
            np.save(buffer, keys)
            store.write_bytes(name, buffer.getvalue())
    masked = MaskedArea(area, keys, identity)
    log.info("the mask keeps %d of the area's %d tiles", len(masked), len(area))
    if not len(masked):
        log.warning(
            "--mask=%s: no feature within %g m of the area: nothing to score",
            config.mask,
            config.mask_buffer_m,
        )
    return masked


def _area(config: PredictInputs, source: TileSource) -> Area:
    """The area scored: `--bbox` or `--aoi`, else where the scenes have imagery.

    At `--zoom`; with scenes, by default at the zoom closest to the first scene's resolution.
    """
    zoom = config.zoom
    if not zoom and isinstance(source, SceneSource):
        zoom = source.native_zoom
        log.info("zoom %d: the ground resolution closest to the scene's (--zoom sets it)", zoom)
    if not zoom:
        raise InputError(f"--{'bbox' if config.bbox else 'aoi'} needs --zoom (e.g. --zoom=18)")
    if config.bbox:
        return BboxArea(config.bbox, zoom)
    if config.aoi:
        return load_aoi(config.aoi, zoom)
    if not isinstance(source, SceneSource):  # pragma: no cover - open_input asks for scenes
        raise InputError("--bbox, --aoi or scenes as --tiles is required")
    return PolygonArea(source.footprint(), zoom, name="scene footprint")


def open_input(config: PredictInputs, output: str = "", keep_mask: bool = True) -> TileInput:
    """The input a predict run names: an area and a tile source, records, a CSV or a folder.

    A `--mask`'s tiles are read from the `output` folder's `_mask/` when there, else built (and
    kept there with `keep_mask`). Close it when done.
    """
    input_path, bbox, aoi = config.input, config.bbox, config.aoi
    source, threads = config.source, config.read_threads
    scenes = not input_path and is_scene_spec(source.tiles)
    if bbox or aoi or scenes:
        if sum(map(bool, (input_path, bbox, aoi))) > 1:
            raise InputError("give one of --input, --bbox or --aoi")
        tiles = open_source(source)
        try:
            area = _area(config, tiles)
            if config.mask:
                area = _masked(area, config, output, keep_mask)
        except BaseException:
            tiles.close()
            raise
        return AreaTiles(area, tiles, config.context)
    if not input_path:
        raise InputError(
            "--input (records folder, tile folder or CSV), --bbox or --aoi is required"
        )
    if storage.open_store(input_path).exists(MANIFEST_NAME):  # TFRecords, not a tile listing
        return RecordsTiles(input_path, config.split)
    source_tiles = open_source(source) if source.tiles else None
    return _listed_tiles(input_path, config.zoom, source_tiles, threads)
