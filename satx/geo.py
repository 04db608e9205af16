"""Web-mercator tile geometry: pure functions over `mercantile.Tile`.

Tile names in paths follow three conventions; all are parsed here and nowhere else:
`{z}/{x}/{y}.ext` (XYZ folder tree), `{x}-{y}-{z}.ext` (label-maker), `{z}_{x}_{y}.ext`.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

import mercantile
import numpy as np

MAX_ZOOM = 30
MAX_LAT = 85.0511287798066  # the web-mercator square's north and south edges
WORLD_M = 40_075_016.685578488  # the web-mercator square's side in metres (EPSG:3857)

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
    # String operations rather than PurePosixPath (the same stem and parts): a listing parses
    # every file name, and a path object per name cost as much as listing the file.
    parts = [part for part in path.split("/") if part not in ("", ".")]
    name = parts[-1] if parts else ""
    base, _, extension = name.rpartition(".")
    stem = base if base and extension else name
    if m := _XYZ_DASH.match(stem):
        x, y, z = (int(v) for v in m.groups())
        return make_tile(z, x, y)
    if m := _ZXY_UNDERSCORE.match(stem):
        z, x, y = (int(v) for v in m.groups())
        return make_tile(z, x, y)
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


def bbox_polygon(bbox: tuple[float, float, float, float]) -> dict:
    """A GeoJSON Polygon geometry for a (west, south, east, north) box, counter-clockwise."""
    w, s, e, n = (float(v) for v in bbox)
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def parent_at_zoom(tile: mercantile.Tile, zoom: int) -> mercantile.Tile:
    """The ancestor of `tile` at `zoom`, or the tile itself when it is already that coarse."""
    if tile.z <= zoom:
        return tile
    shift = tile.z - zoom
    return mercantile.Tile(x=tile.x >> shift, y=tile.y >> shift, z=zoom)


def tile_key(tile: mercantile.Tile) -> str:
    """A stable text key `z/x/y` for grouping and logs."""
    return f"{tile.z}/{tile.x}/{tile.y}"


class TileBlock(NamedTuple):
    """A rectangle of tiles at one zoom: columns x0..x1 and rows y0..y1, inclusive."""

    z: int
    x0: int
    x1: int
    y0: int
    y1: int

    def __len__(self) -> int:
        return (self.x1 - self.x0 + 1) * (self.y1 - self.y0 + 1)


def bbox_blocks(west: float, south: float, east: float, north: float, zoom: int) -> list[TileBlock]:
    """The tiles `mercantile.tiles(west, south, east, north, zoom)` yields, as rectangles.

    Same clamping, antimeridian split (`west > east`) and edge epsilon as mercantile, so a
    block's tiles in column-major order (x outer, y inner) are exactly mercantile's sequence,
    but a country-sized box is a few integers instead of tens of millions of tuples.
    """
    if not 0 <= zoom <= MAX_ZOOM:
        raise ValueError(f"zoom {zoom} outside 0..{MAX_ZOOM}")
    lons, lats = (west, east), (south, north)
    if not all(math.isfinite(v) and -180 <= v <= 180 for v in lons) or not all(
        math.isfinite(v) and -90 <= v <= 90 for v in lats
    ):
        raise ValueError("W and E are longitudes in -180..180, S and N latitudes in -90..90")
    if not (south <= north):
        raise ValueError(f"bbox south {south} is north of north {north}; expected W,S,E,N")
    boxes = (
        [(-180.0, south, east, north), (west, south, 180.0, north)]
        if west > east
        else [(west, south, east, north)]
    )
    blocks = []
    for w, s, e, n in boxes:
        w, s = max(-180.0, w), max(-85.051129, s)
        e, n = min(180.0, e), min(85.051129, n)
        ul = mercantile.tile(w, n, zoom)
        lr = mercantile.tile(e - mercantile.LL_EPSILON, s + mercantile.LL_EPSILON, zoom)
        if lr.x >= ul.x and lr.y >= ul.y:
            blocks.append(TileBlock(zoom, ul.x, lr.x, ul.y, lr.y))
    return blocks


def block_tile(block: TileBlock, index: int) -> mercantile.Tile:
    """The `index`-th tile of a block in mercantile's order (x outer, y inner)."""
    rows = block.y1 - block.y0 + 1
    return mercantile.Tile(block.x0 + index // rows, block.y0 + index % rows, block.z)


def grid_to_lonlat(z: int, fx: np.ndarray, fy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Degrees of points given in tile units of zoom `z` (tile (x, y)'s centre is x+.5, y+.5).

    The inverse of the web-mercator tiling, vectorised: mercantile's `ul` for fractional tiles.
    """
    side = float(1 << z)
    fx, fy = np.asarray(fx, np.float64), np.asarray(fy, np.float64)
    lon = fx / side * 360.0 - 180.0
    lat = np.degrees(np.arctan(np.sinh(np.pi * (1.0 - 2.0 * fy / side))))
    return lon, lat


def lonlat_to_grid(z: int, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tile units of zoom `z` of points in degrees (floor them for the tile)."""
    side = float(1 << z)
    lon = np.asarray(lon, np.float64)
    lat = np.clip(np.asarray(lat, np.float64), -MAX_LAT, MAX_LAT)
    fx = (lon + 180.0) / 360.0 * side
    s = np.sin(np.radians(lat))
    fy = (0.5 - np.log((1.0 + s) / (1.0 - s)) / (4.0 * np.pi)) * side
    return fx, fy


def quadkeys(z: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The quadkeys of tiles (x, y) at zoom `z`, vectorised (mercantile.quadkey for arrays)."""
    x, y = np.asarray(x, np.int64), np.asarray(y, np.int64)
    if z == 0:
        return np.full(x.shape, "", dtype="U1")
    shifts = np.arange(z - 1, -1, -1, dtype=np.int64)
    digits = ((x[:, None] >> shifts) & 1) + 2 * ((y[:, None] >> shifts) & 1)
    text = np.ascontiguousarray(digits.astype(np.uint8) + ord("0"))
    return text.view(f"S{z}").ravel().astype(f"U{z}")


def tile_keys(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Tiles of one zoom as sortable int64 keys `x << 32 | y` (searchsorted, np.unique)."""
    return (np.asarray(x, np.int64) << 32) | np.asarray(y, np.int64)


def key_xy(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) back from `tile_keys`."""
    keys = np.asarray(keys, np.int64)
    return keys >> 32, keys & 0xFFFFFFFF


def morton(depth: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each tile's position in quadkey order: the last `depth` quadkey digits as one integer."""
    x, y = np.asarray(x, np.int64), np.asarray(y, np.int64)
    code = np.zeros(np.shape(x), np.int64)
    for bit in range(depth):  # quadkey digit = 2 * y bit + x bit
        code |= ((x >> bit) & 1) << (2 * bit) | ((y >> bit) & 1) << (2 * bit + 1)
    return code


def morton_xy(index: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (dx, dy) of the index-th tile, in quadkey order, of a subtree `depth` deep."""
    dx = np.zeros_like(index)
    dy = np.zeros_like(index)
    for bit in range(depth):
        dx |= ((index >> (2 * bit)) & 1) << bit
        dy |= ((index >> (2 * bit + 1)) & 1) << bit
    return dx, dy
