"""Tile sources: one interface over every place imagery lives.

`open_source(SourceConfig)` gives a `TileSource` for
- a path or gs:// template (`DIR/{z}/{x}/{y}.jpg`): files, read in parallel;
- an HTTP(S) XYZ/TMS/WMS template (`satx.tiles.http`): pooled, retried, rate-capped;
- an MBTiles file (SQLite, TMS rows; `tiles` may be a view);
- a PMTiles archive, local or gs:// (range reads; directories cached);
- scenes: GeoTIFF/COG files, folders of them, STAC items (`satx.tiles.scenes`): tiles cut.
With `tile_cache`, any of them is wrapped in an on-disk cache.

`read(tiles)` returns the encoded bytes per tile (None where there are none) and, by position,
`(reason, detail)` for those: reason `missing` is no imagery (no file, HTTP 404/204, a tile the
archive lacks); anything else is an error. Nothing is ever replaced by a blank tile. Details
and descriptions never carry a secret (`satx.io.secrets`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mercantile

from satx.config import SourceConfig
from satx.errors import InputError
from satx.io import claim, secrets, storage
from satx.tiles.archives import MBTilesSource, PMTilesSource
from satx.tiles.base import MISSING, Errors, TileSource, read_locations
from satx.tiles.scene_list import is_scene_spec
from satx.tiles.template import TileTemplate

log = logging.getLogger(__name__)

__all__ = [
    "MISSING",
    "CachedSource",
    "FileTiles",
    "ListedFiles",
    "TileSource",
    "open_source",
    "read_locations",
]


class FileTiles:
    """Tiles as files named by a local or gs:// path template, read by a pool of threads."""

    kind = "files"

    def __init__(self, template: TileTemplate, threads: int, confined: bool = False):
        self.template = template
        self.description = template.template
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="satx-read")
        root = claim.template_root(template.template)
        # confined: a file (or a link in the folder) resolving outside the template's folder is
        # not a tile; the review server reads for browsers, so a link to /etc/passwd is no tile
        self._root = os.path.realpath(root) if confined and not storage.is_gcs(root) else None

    def location(self, tile: mercantile.Tile) -> str | None:
        """The tile's file (None: it has none)."""
        return self.template.location(tile)

    def read(self, tiles: Sequence[mercantile.Tile]) -> tuple[list[bytes | None], Errors]:
        """Read every tile's file; a missing file is `missing`, other failures `unreadable`."""
        locations = [self.location(t) for t in tiles]
        outside = {i for i, at in enumerate(locations) if at is not None and not self._inside(at)}
        found, errors = read_locations(
            [None if i in outside else where for i, where in enumerate(locations)], self._pool
        )
        for i in outside:
            errors[i] = ("unreadable", f"{locations[i]} resolves outside {self._root}")
        for i, where in enumerate(locations):
            if where is None:
                errors[i] = (MISSING, f"no file for {tiles[i].z}/{tiles[i].x}/{tiles[i].y}")
        return found, errors

    def _inside(self, location: str) -> bool:
        if self._root is None:
            return True
        real = os.path.realpath(location)
        return real == self._root or real.startswith(self._root.rstrip("/") + "/")

    def close(self) -> None:
        """Stop the threads."""
        self._pool.shutdown()


class ListedFiles(FileTiles):
    """Tiles as the files of a listing (a folder's `x-y-z.jpg`, a CSV's paths), by address.

    `confined_to`: a file resolving outside this folder is not a tile (as `FileTiles`).
    """

    def __init__(
        self,
        files: dict[mercantile.Tile, str],
        description: str,
        threads: int = 16,
        confined_to: str = "",
    ):
        self.files, self.description = files, description
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="satx-read")
        local = confined_to and not storage.is_gcs(confined_to)
        self._root = os.path.realpath(confined_to) if local else None

    def location(self, tile: mercantile.Tile) -> str | None:
        """The listed file of the tile (None: the listing has none)."""
        return self.files.get(tile)


class CachedSource:
    """Any source behind an on-disk cache.

    `DIR/{z}/{x}/{y}` holds a fetched tile's bytes, `DIR/{z}/{x}/{y}.none` marks a tile with no
    imagery. Writes are atomic; errors are not cached (a re-run tries them again).
    """

    def __init__(self, inner: TileSource, folder: str):
        self.inner, self.folder = inner, Path(folder).expanduser()
        self.kind, self.description = inner.kind, inner.description
        self.hits = 0

    def _path(self, t: mercantile.Tile) -> Path:
        return self.folder / str(t.z) / str(t.x) / str(t.y)

    def read(self, tiles: Sequence[mercantile.Tile]) -> tuple[list[bytes | None], Errors]:
        """Cached tiles from disk, the rest from the source (then cached)."""
        out: list[bytes | None] = [None] * len(tiles)
        errors: Errors = {}
        todo = []
        for i, t in enumerate(tiles):
            path = self._path(t)
            if path.is_file():
                out[i] = path.read_bytes()
            elif path.with_suffix(".none").is_file():
                errors[i] = (MISSING, f"no imagery for {t.z}/{t.x}/{t.y} (cached)")
            else:
                todo.append(i)
        self.hits += len(tiles) - len(todo)
        if todo:
            fetched, fetch_errors = self.inner.read([tiles[i] for i in todo])
            for k, i in enumerate(todo):
                if k in fetch_errors:
                    errors[i] = fetch_errors[k]
                    if fetch_errors[k][0] == MISSING:
                        storage.atomic_write_local(self._path(tiles[i]).with_suffix(".none"), b"")
                else:
                    out[i] = fetched[k]
                    storage.atomic_write_local(self._path(tiles[i]), fetched[k])
        return out, errors

    def close(self) -> None:
        """Close the source behind the cache."""
        self.inner.close()


def open_source(config: SourceConfig, confined: bool = False) -> TileSource:
    """The tile source `config.tiles` names (see the module docstring).

    `confined`: a local file template reads only files inside its own folder (links out of it
    are refused), for a server that hands tiles to browsers.
    """
    spec = config.tiles
    if not spec:
        raise InputError(
            "--tiles is required: a path or URL template, .mbtiles, .pmtiles or scenes (.tif)"
        )
    secrets.scrub_logs()
    secrets.register_url(spec)
    lowered = spec.lower().split("?")[0]
    source: TileSource
    if is_scene_spec(spec):
        from satx.tiles.scenes import SceneTiles

        source = SceneTiles(config)
        if config.tile_cache:  # GDAL keeps its own block cache; a tile's coverage is not cached
            log.warning("--tile_cache is not used for scenes: tiles are cut from them directly")
            return source
    elif lowered.startswith(("http://", "https://")):
        from satx.tiles.http import HttpTiles

        source = HttpTiles(config)
    elif lowered.endswith(".mbtiles"):
        source = MBTilesSource(spec)
    elif lowered.endswith(".pmtiles"):
        source = PMTilesSource(spec, config.fetch_threads)
    else:
        template = TileTemplate(spec, config.tile_subdomains)
        source = FileTiles(template, config.fetch_threads, confined)
    return CachedSource(source, config.tile_cache) if config.tile_cache else source
