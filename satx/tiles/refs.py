"""What a listing of tiles holds: tiles to read, what could not be used, and why.

Every input kind (a folder or gs:// tree, a CSV of paths / z,x,y / lon,lat, GeoJSON places, an
area) is read into `TileRef`s by one reader in `satx.tiles`; records, predict and review only
use them. A `Rejection` is anything that cannot become a tile (a bad row, a missing file, an
unknown label, a tile without imagery), with a reason code that lands in the quarantine list or
predict's errors.csv.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import mercantile

from satx.io.run_record import Record


@dataclass(frozen=True)
class TileRef:
    """One tile to read.

    Attributes:
        source_id: what the user knows it by: a path as listed, or `z/x/y`.
        tile: its web-mercator address, when known.
        location: a local path or gs:// URL holding its bytes; None: read `tile` from the tile
            source.
        label: its class name ("" when unlabelled).
        split: the input's own split for it, when it names one.
        origin: where it was listed, for messages (`labels.csv:12`, `schools.geojson: feature 3`).
    """

    source_id: str
    tile: mercantile.Tile | None
    location: str | None = None
    label: str = ""
    split: str | None = None
    origin: str = ""

    def to_row(self) -> list[Any]:
        """A JSON-ready row (`from_row` reads it back)."""
        address = (self.tile.z, self.tile.x, self.tile.y) if self.tile else (None, None, None)
        return [self.source_id, self.location, self.label, self.split, *address, self.origin]

    @classmethod
    def from_row(cls, row: list[Any]) -> TileRef:
        """Inverse of `to_row`."""
        source_id, location, label, split, z, x, y, origin = row
        tile = mercantile.Tile(x, y, z) if z is not None else None
        return cls(source_id, tile, location, label, split, origin)


@dataclass(frozen=True)
class Rejection(Record):
    """An input that cannot be used, and why (`reason` is a short code, `detail` a sentence)."""

    source_id: str
    label: str
    reason: str
    detail: str


@dataclass(frozen=True)
class Listing:
    """An input read: its tiles in a stable order, what was refused, what was passed over.

    Attributes:
        layout: folder, folder_presplit, csv or locations (labelled places).
        refs: the tiles.
        rejected: what could not be used (bad rows, missing labels, conflicts, ...).
        ignored: files that are not tiles (other extensions, outside class folders).
        tile_source: where places' tiles are fetched from (secrets redacted).
        per_label: labelled places: label -> {"geometries": n, "tiles": n}.
    """

    layout: str
    refs: tuple[TileRef, ...]
    rejected: tuple[Rejection, ...] = ()
    ignored: tuple[str, ...] = ()
    tile_source: str = ""
    per_label: dict[str, dict[str, int]] = field(default_factory=dict)
