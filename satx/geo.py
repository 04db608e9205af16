"""Web-mercator tile geometry: pure functions over `mercantile.Tile`.

Tile names in paths follow three conventions; all are parsed here and nowhere else:
`{z}/{x}/{y}.ext` (XYZ folder tree), `{x}-{y}-{z}.ext` (label-maker), `{z}_{x}_{y}.ext`.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import NamedTuple

import mercantile

MAX_ZOOM = 30

_XYZ_DASH = re.compile(r"^(\d+)-(\d+)-(\d+)$")
_ZXY_UNDERSCORE = re.compile(r"^(\d+)_(\d+)_(\d+)$")
_INT = re.compile(r"^\d+$")


class Geolocation(NamedTuple):
    """Where a tile is: centre and bounds in degrees (EPSG:4326) and its quadkey."""

    quadkey: str
    lon: float
    lat: float
    bbox: tuple[float, float, float, float]  # west, south, east, north


def is_valid_address(z: int, x: int, y: int) -> bool:
    """Whether x and y lie inside the grid of zoom z."""
    if not 0 <= z <= MAX_ZOOM:
        return False
    side = 1 << z
    return 0 <= x < side and 0 <= y < side


def make_tile(z: int, x: int, y: int) -> mercantile.Tile | None:
    """Return the tile if (z, x, y) is a valid address, else None."""
    z, x, y = int(z), int(x), int(y)
    return mercantile.Tile(x=x, y=y, z=z) if is_valid_address(z, x, y) else None


def parse_tile_path(path: str) -> mercantile.Tile | None:
    """Parse a tile address from a file path, or return None when it names no valid tile.

    Args:
        path: a relative or absolute path with `/` separators (a `gs://` URL works too).

    Returns:
        The tile named by the file (`x-y-z`, `z_x_y`) or by its last two folders (`z/x/y`).
    """
    p = PurePosixPath(path)
    stem = p.stem
    if m := _XYZ_DASH.match(stem):
        x, y, z = (int(v) for v in m.groups())
        return make_tile(z, x, y)
    if m := _ZXY_UNDERSCORE.match(stem):
        z, x, y = (int(v) for v in m.groups())
        return make_tile(z, x, y)
    parts = p.parts
    if len(parts) >= 3 and _INT.match(stem) and _INT.match(parts[-2]) and _INT.match(parts[-3]):
        return make_tile(int(parts[-3]), int(parts[-2]), int(stem))
    return None


def geolocate(tile: mercantile.Tile) -> Geolocation:
    """Centre, bounds and quadkey of a tile."""
    b = mercantile.bounds(tile)
    return Geolocation(
        quadkey=mercantile.quadkey(tile),
        lon=(b.west + b.east) / 2.0,
        lat=(b.south + b.north) / 2.0,
        bbox=(b.west, b.south, b.east, b.north),
    )


def parent_at_zoom(tile: mercantile.Tile, zoom: int) -> mercantile.Tile:
    """The ancestor of `tile` at `zoom`, or the tile itself when it is already that coarse."""
    if tile.z <= zoom:
        return tile
    shift = tile.z - zoom
    return mercantile.Tile(x=tile.x >> shift, y=tile.y >> shift, z=zoom)


def tile_key(tile: mercantile.Tile) -> str:
    """A stable text key `z/x/y` for grouping and logs."""
    return f"{tile.z}/{tile.x}/{tile.y}"
