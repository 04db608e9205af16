"""Tile archives: MBTiles (SQLite) and PMTiles (one file of range-addressed tiles)."""

from __future__ import annotations

import gzip
import sqlite3
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mercantile

from satx.errors import InputError, StorageError
from satx.io import storage
from satx.tiles.base import MISSING, Errors


class MBTilesSource:
    """An MBTiles file, read-only, one connection per thread.

    SQLite with `tiles(zoom_level, tile_column, tile_row, tile_data)`, a table or a view, rows
    in TMS order (row 0 is the south).
    """

    kind = "mbtiles"

    def __init__(self, path: str):
        if storage.is_gcs(path):
            raise InputError(f"--tiles={path}: MBTiles is SQLite and must be a local file")
        self.path = str(Path(path).expanduser().absolute())
        self.description = self.path
        if not Path(self.path).is_file():
            raise InputError(f"--tiles={path}: no such MBTiles file")
        self._local = threading.local()
        try:
            self._connection().execute(
                "SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles LIMIT 1"
            ).fetchall()
        except sqlite3.DatabaseError as err:
            raise InputError(
                f"--tiles={path}: not an MBTiles file (SQLite with a `tiles` table or view): {err}"
            ) from err

    def _connection(self) -> sqlite3.Connection:
        if getattr(self._local, "db", None) is None:
            uri = f"file:{urllib.parse.quote(self.path)}?mode=ro"
            self._local.db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        return self._local.db

    def read(self, tiles: Sequence[mercantile.Tile]) -> tuple[list[bytes | None], Errors]:
        """Look every tile up (TMS row = 2^z - 1 - y)."""
        db, out, errors = self._connection(), [], {}
        query = "SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?"
        for i, t in enumerate(tiles):
            row = db.execute(query, (t.z, t.x, 2**t.z - 1 - t.y)).fetchone()
            if row is None or not row[0]:
                errors[i] = (MISSING, f"{self.path} has no tile {t.z}/{t.x}/{t.y}")
                out.append(None)
            else:
                out.append(bytes(row[0]))
        return out, errors

    def close(self) -> None:
        """Close this thread's connection (others close with their threads)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


class PMTilesSource:
    """A PMTiles v3 archive, local or gs://, read with range requests.

    The `pmtiles` package decodes the header and directories; directories are parsed once and
    kept (LRU), so a tile costs one range read once its leaf is known.
    """

    kind = "pmtiles"
    _RASTER = {"PNG", "JPEG", "WEBP", "AVIF"}

    def __init__(self, location: str, threads: int):
        from pmtiles import tile as codec

        self._codec = codec
        folder, _, self._name = location.rstrip("/").rpartition("/")
        self._store = storage.open_store(folder or ".")
        self.description = location
        try:
            self.header = codec.deserialize_header(self._store.read_range(self._name, 0, 127))
        except FileNotFoundError as err:
            raise InputError(f"--tiles={location}: no such PMTiles archive") from err
        except Exception as err:  # the codec raises its own exceptions and struct errors
            raise InputError(f"--tiles={location}: not a PMTiles v3 archive ({err})") from err
        if self.header["tile_type"].name not in self._RASTER:
            raise InputError(
                f"--tiles={location}: holds {self.header['tile_type'].name} tiles; satx reads "
                "raster tiles (JPEG, PNG, WebP)"
            )
        self._dirs: OrderedDict[tuple[int, int], list] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="satx-pmtiles")

    def _directory(self, offset: int, length: int) -> list:
        key = (offset, length)
        with self._lock:
            if key in self._dirs:
                self._dirs.move_to_end(key)
                return self._dirs[key]
        entries = self._codec.deserialize_directory(self._store.read_range(self._name, *key))
        with self._lock:
            self._dirs[key] = entries
            while len(self._dirs) > 256:
                self._dirs.popitem(last=False)
        return entries

    def tile(self, t: mercantile.Tile) -> bytes | None:
        """One tile's bytes, or None when the archive has none."""
        h, tile_id = self.header, self._codec.zxy_to_tileid(t.z, t.x, t.y)
        offset, length = h["root_offset"], h["root_length"]
        for _ in range(4):  # the format's maximum directory depth
            entry = self._codec.find_tile(self._directory(offset, length), tile_id)
            if entry is None:
                return None
            if entry.run_length:
                data = self._store.read_range(
                    self._name, h["tile_data_offset"] + entry.offset, entry.length
                )
                if h["tile_compression"] == self._codec.Compression.GZIP:
                    data = gzip.decompress(data)
                return data
            offset, length = h["leaf_directory_offset"] + entry.offset, entry.length
        return None

    def read(self, tiles: Sequence[mercantile.Tile]) -> tuple[list[bytes | None], Errors]:
        """Read tiles in parallel (range requests are what cost on gs://)."""
        errors: Errors = {}

        def one(item: tuple[int, mercantile.Tile]) -> bytes | None:
            i, t = item
            try:
                data = self.tile(t)
            except (OSError, StorageError) as err:
                errors[i] = ("unreadable", f"{self.description} tile {t.z}/{t.x}/{t.y}: {err}")
                return None
            if data is None:
                errors[i] = (MISSING, f"{self.description} has no tile {t.z}/{t.x}/{t.y}")
            return data

        return list(self._pool.map(one, enumerate(tiles))), errors

    def close(self) -> None:
        """Stop the threads."""
        self._pool.shutdown()
