"""Areas to score tile by tile: a bounding box, or a polygon AOI (`satx.tiles.aoi`).

An area is an ordered, indexable set of tiles of one zoom: `len`, `tiles(start, stop)` and a
`fingerprint` that a resumed run must match. Neither ever lists all its tiles.
"""

from __future__ import annotations

from typing import Any, Protocol

import mercantile
import numpy as np

from satx import geo
from satx.errors import InputError


class Area(Protocol):
    """An ordered set of tiles of one zoom."""

    kind: str
    zoom: int

    def __len__(self) -> int:
        """How many tiles."""

    def tiles(self, start: int, stop: int) -> list[mercantile.Tile]:
        """Tiles `start..stop-1`."""

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether each tile (x, y) of its zoom is one of its tiles."""

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the area."""


class BboxArea:
    """Every tile of a W,S,E,N box at one zoom, in mercantile's order (`geo.bbox_blocks`)."""

    kind = "bbox"

    def __init__(self, bbox: tuple[float, ...], zoom: int):
        if len(bbox) != 4:
            raise InputError(f"--bbox={bbox}: expected four numbers W,S,E,N")
        try:
            self.blocks = geo.bbox_blocks(*bbox, zoom)
        except ValueError as err:
            raise InputError(f"--bbox={','.join(map(str, bbox))} --zoom={zoom}: {err}") from err
        self.bbox, self.zoom = tuple(bbox), zoom
        self._starts = []
        total = 0
        for block in self.blocks:
            self._starts.append(total)
            total += len(block)
        self._count = total

    def __len__(self) -> int:
        return self._count

    def tile(self, index: int) -> mercantile.Tile:
        """The `index`-th tile of the box."""
        for block, start in zip(reversed(self.blocks), reversed(self._starts), strict=True):
            if index >= start:
                return geo.block_tile(block, index - start)
        raise IndexError(index)

    def tiles(self, start: int, stop: int) -> list[mercantile.Tile]:
        """Tiles `start..stop-1`."""
        return [self.tile(i) for i in range(start, min(stop, self._count))]

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether each tile (x, y) of the box's zoom is in the box."""
        inside = np.zeros(np.shape(x), bool)
        for b in self.blocks:
            inside |= (x >= b.x0) & (x <= b.x1) & (y >= b.y0) & (y <= b.y1)
        return inside

    def fingerprint(self) -> dict[str, Any]:
        """Box and zoom."""
        return {"bbox": list(self.bbox), "zoom": self.zoom}
