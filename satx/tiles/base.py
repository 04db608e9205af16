"""What every tile source shares: the interface, the outcome codes, and file reads."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import mercantile

from satx.errors import StorageError
from satx.io import storage

Errors = dict[int, tuple[str, str]]  # position -> (reason, detail)
MISSING = "missing"  # the reason for "no imagery here": counted and listed, never an error
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8")


def looks_like_image(data: bytes) -> bool:
    """JPEG, PNG, GIF or WebP by their first bytes (an HTML error page is not)."""
    return data.startswith(_IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


class TileSource(Protocol):
    """Where tiles are read from."""

    kind: str  # "files", "http", "mbtiles" or "pmtiles"
    description: str  # what to print and record: the template or path, secrets redacted

    def read(self, tiles: Sequence[mercantile.Tile]) -> tuple[list[bytes | None], Errors]:
        """Each tile's bytes (None when absent) and the reasons for the absent ones."""

    def close(self) -> None:
        """Release threads, connections and files."""


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
