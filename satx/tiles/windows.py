"""Context windows ("supertiles"): C x C tiles of one zoom read as one image (issue 39).

A window is named by its top-left tile and its side in tiles, `Window(z, x, y, size)`; its
image is the mosaic of its tiles, row by row, `size * 256` px a side. Columns wrap at the
antimeridian (a window may hold tiles of both sides); rows never pass the poles.

- `window_of_point`: the window whose centre is nearest a point (a school's location): the
  point lies within half a tile of its centre, so a campus cut by a tile edge is seen whole
  (a tie, a point at a tile's centre, goes to the window to the east and south).
- `window_of_tile`: the window holding a tile at its centre (for even sizes, the tile just
  up and left of the centre: the top-left tile of a 2 x 2 window).
- `covering`: the windows of stride one tile that hold a tile (size^2 of them, fewer at the
  poles): what overlapping windows over an area give each tile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mercantile


def shape_name(size: int) -> str:
    """How logs, manifests and ids write a window's shape: `2x2`."""
    return f"{size}x{size}"


@dataclass(frozen=True, order=True)
class Window:
    """`size` x `size` tiles of zoom `z` whose top-left tile is (x, y)."""

    z: int
    x: int
    y: int
    size: int = 2

    @classmethod
    def of(cls, tile: mercantile.Tile, size: int) -> Window:
        """The window whose top-left tile is `tile`."""
        return cls(tile.z, tile.x, tile.y, size)

    @property
    def name(self) -> str:
        """How outputs know it: its top-left tile and its side (`18/77153/127657+2x2`)."""
        return f"{self.z}/{self.x}/{self.y}+{shape_name(self.size)}"

    @property
    def tiles(self) -> list[mercantile.Tile]:
        """Its tiles, row by row (columns wrapped at the antimeridian)."""
        n = 1 << self.z
        return [
            mercantile.Tile((self.x + dx) % n, self.y + dy, self.z)
            for dy in range(self.size)
            for dx in range(self.size)
        ]

    @property
    def top_left(self) -> mercantile.Tile:
        """The tile that names it."""
        return mercantile.Tile(self.x, self.y, self.z)

    def bounds(self) -> tuple[float, float, float, float]:
        """West, south, east, north in degrees (east > 180 when it crosses the antimeridian)."""
        west, north = mercantile.ul(self.x, self.y, self.z)
        east, south = mercantile.ul(self.x + self.size, self.y + self.size, self.z)
        return west, south, east, north

    def centre(self) -> tuple[float, float]:
        """Longitude and latitude of its centre (the middle of its bounds in web mercator)."""
        x, y = self.x + self.size / 2, self.y + self.size / 2
        n = 1 << self.z
        lon = x / n * 360.0 - 180.0
        lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))
        return (lon + 180.0) % 360.0 - 180.0, lat


def _fractional(lon: float, lat: float, z: int) -> tuple[float, float]:
    """The point in tile units of zoom z (x from the antimeridian, y from the north)."""
    n = 1 << z
    lat = max(-85.0511287798, min(85.0511287798, lat))
    x = (lon + 180.0) / 360.0 * n
    y = (1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2
    return x, y * n


def _window(z: int, x: int, y: int, size: int) -> Window:
    n = 1 << z
    return Window(z, x % n, max(0, min(y, n - size)), size)


def window_of_point(lon: float, lat: float, z: int, size: int = 2) -> Window:
    """The window whose centre is nearest the point (see the module docstring)."""
    fx, fy = _fractional(lon, lat, z)
    # half up: a point equally near two windows (a tile's centre) takes the later one, always
    return _window(z, math.floor(fx - size / 2 + 0.5), math.floor(fy - size / 2 + 0.5), size)


def window_of_tile(tile: mercantile.Tile, size: int = 2) -> Window:
    """The window holding `tile` at its centre (see the module docstring)."""
    offset = (size - 1) // 2
    return _window(tile.z, tile.x - offset, tile.y - offset, size)


def covering(tile: mercantile.Tile, size: int = 2) -> list[Window]:
    """Every window of stride one tile that holds `tile`, ordered by its top-left tile."""
    n = 1 << tile.z
    tops = range(max(0, tile.y - size + 1), min(tile.y, n - size) + 1)
    return sorted(Window(tile.z, (tile.x - dx) % n, y, size) for y in tops for dx in range(size))
