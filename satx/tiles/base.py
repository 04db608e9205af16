"""What every tile source shares: the interface, the outcome codes, and the one way to read bytes.

`read_refs` reads listed tiles: a ref with a location from its file (local or gs://), one
without from the tile source by its address. Every read gives the bytes, or None and a
`(reason, detail)`; reason `missing` means no imagery, anything else an error.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import mercantile

from satx.errors import StorageError
from satx.io import storage
from satx.io.progress import Progress
from satx.tiles.refs import TileRef

Errors = dict[int, tuple[str, str]]  # position -> (reason, detail)
MISSING = "missing"  # the reason for "no imagery here": counted and listed, never an error


class TileSource(Protocol):
    """Where tiles are read from."""

    kind: str  # "files", "http", "mbtiles" or "pmtiles"
    description: str  # what to print and record: the template or path, secrets redacted

    def read(self, tiles: Sequence[mercantile.Tile]) -> tuple[list[bytes | None], Errors]:
        """Each tile's bytes (None when absent) and the reasons for the absent ones."""

    def close(self) -> None:
        """Release threads, connections and files."""


@runtime_checkable
class SceneSource(TileSource, Protocol):
    """A source that cuts tiles from scenes, with what only scenes know (`satx.tiles.scenes`)."""

    @property
    def native_zoom(self) -> int:
        """The zoom whose ground resolution is closest to the scenes'."""

    def footprint(self) -> Any:
        """Where the scenes hold valid pixels (a shapely geometry in degrees)."""

    def identity(self) -> list[dict[str, Any]]:
        """What a run records of each scene (hash or ETag, bands, rescale)."""

    def read_covered(
        self, tiles: Sequence[mercantile.Tile]
    ) -> tuple[list[bytes | None], Errors, list[float]]:
        """`read`, and each tile's share of valid pixels (0 where it has none)."""


def read_in_batches(
    source: TileSource, tiles: Sequence[mercantile.Tile], step: int
) -> Iterator[tuple[bytes | None, tuple[str, str] | None]]:
    """Each tile read from `source`, `step` at a time with progress: its bytes, or why not.

    Yielded in order, a batch at a time (nothing is held past its batch); a source that
    caches keeps each finished batch, so a killed run loses at most one.
    """
    progress = Progress("fetch", len(tiles))
    for start in range(0, len(tiles), step):
        batch = tiles[start : start + step]
        data, errors = source.read(batch)
        for i in range(len(batch)):
            yield data[i], errors.get(i)
        progress.update(start + len(batch))
    progress.finish()


def read_location(location: str) -> bytes:
    """One local or gs:// file's bytes."""
    if storage.is_gcs(location):
        folder, _, name = location.rpartition("/")
        return storage.GcsStore(folder).read_bytes(name)
    return Path(location).read_bytes()


def read_locations(
    locations: Sequence[str | None], pool: ThreadPoolExecutor
) -> tuple[list[bytes | None], Errors]:
    """Read many local or gs:// files in parallel; None locations are skipped."""
    errors: Errors = {}

    def one(item: tuple[int, str | None]) -> bytes | None:
        i, location = item
        if location is None:
            return None
        try:
            return read_location(location)
        except (FileNotFoundError, IsADirectoryError):
            errors[i] = (MISSING, f"no file {location}")
        except (OSError, StorageError) as err:
            errors[i] = ("unreadable", f"{location}: {err}")
        return None

    return list(pool.map(one, enumerate(locations))), errors


def read_refs(
    refs: Sequence[TileRef], pool: ThreadPoolExecutor, source: TileSource | None = None
) -> tuple[list[bytes | None], Errors, list[float] | None]:
    """The bytes of listed tiles: files in `pool`, the rest from `source` by their address.

    Refs with neither a location nor a tile are left None without a reason (the caller's
    listing already refused them). The third value is each tile's valid share when `source`
    cuts scenes (NaN for a tile read from its file), else None.
    """
    encoded, errors = read_locations([r.location for r in refs], pool)
    via = [i for i, r in enumerate(refs) if r.location is None and r.tile is not None]
    covered = isinstance(source, SceneSource)
    coverage = [math.nan] * len(refs) if covered else None
    if via:
        if source is None:
            raise ValueError("tiles without a file need a tile source")
        wanted = [refs[i].tile for i in via]
        if isinstance(source, SceneSource):
            data, source_errors, shares = source.read_covered(wanted)  # type: ignore[arg-type]
        else:
            (data, source_errors), shares = source.read(wanted), None  # type: ignore[arg-type]
        for k, i in enumerate(via):
            encoded[i] = data[k]
            if k in source_errors:
                errors[i] = source_errors[k]
            if coverage is not None and shares is not None:
                coverage[i] = shares[k]
    return encoded, errors, coverage
