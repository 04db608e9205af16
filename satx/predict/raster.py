"""A score raster of a prediction run: one pixel per tile, EPSG:3857, Cloud-Optimized GeoTIFF.

Each chunk writes the scores of every tile it scored (whatever `--min_score` keeps as rows) as
`parts/00000012.raster.npz`: columns, rows and a byte each. When every chunk is done they are
laid into an uncompressed memory-mapped grid on disk (never the whole country in RAM), copied
to a tiled GeoTIFF window by window, and rio-cogeo turns that into `predictions.tif`, a COG
with internal overviews.

Pixels are uint8: 0 = not scored (outside the input, missing imagery, an error), and a score
s is stored as 1 + round(254 s). The band's scale (1/254) and offset (-1/254) make GIS tools
show the score itself. Colombia at zoom 18 is about 12,400 x 12,400 pixels.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable
from typing import Any

import numpy as np

from satx import geo
from satx.errors import InputError
from satx.io import storage
from satx.tiles.refs import TileRef

RASTER_NAME = "predictions.tif"
NODATA = 0
HALF_WORLD_M = geo.WORLD_M / 2  # EPSG:3857's origin lies at the centre of its square
BLOCK = 512
WRITE_ROWS = 1024  # rows copied from the grid to the GeoTIFF at a time
GDAL_CACHE_MB = 128


def _rasterio() -> Any:
    try:
        import rasterio
        import rio_cogeo  # noqa: F401
    except ImportError as err:
        raise InputError(
            "--formats=raster needs rasterio and rio-cogeo: pip install 'satx[geo]'"
        ) from err
    return rasterio


def encode(score: np.ndarray) -> np.ndarray:
    """Scores in [0, 1] as raster bytes 1..255 (0 is kept for tiles not scored)."""
    return (1 + np.rint(np.clip(np.asarray(score, np.float64), 0, 1) * 254)).astype(np.uint8)


def decode(value: np.ndarray) -> np.ndarray:
    """Raster bytes back to scores (NaN where not scored)."""
    v = np.asarray(value, np.float64)
    return np.where(v == NODATA, np.nan, (v - 1) / 254)


def chunk_bytes(tiles: list[TileRef], scores: np.ndarray, scored: np.ndarray) -> bytes:
    """One chunk's scored, addressed tiles as columns, rows and raster bytes (npz)."""
    keep = [i for i in np.flatnonzero(scored) if tiles[i].tile is not None]
    z = {tiles[i].tile.z for i in keep}
    if len(z) > 1:
        raise InputError(f"--formats=raster: tiles at zooms {sorted(z)}; a raster has one zoom")
    out = io.BytesIO()
    np.savez(
        out,
        z=np.array(z.pop() if z else -1),
        x=np.array([tiles[i].tile.x for i in keep], np.int64),
        y=np.array([tiles[i].tile.y for i in keep], np.int64),
        v=encode(np.asarray(scores)[keep]),
    )
    return out.getvalue()


def _parts(store: Any, names: Iterable[str]) -> Iterable[dict[str, np.ndarray]]:
    for name in names:
        with np.load(io.BytesIO(store.read_bytes(name))) as data:
            yield {k: data[k] for k in ("z", "x", "y", "v")}


def write_raster(store: Any, names: list[str]) -> str | None:
    """Assemble the chunks' raster parts into `predictions.tif` (a COG); None: nothing scored."""
    rasterio = _rasterio()
    zooms, lo, hi = set(), np.array([np.inf, np.inf]), np.array([-np.inf, -np.inf])
    for part in _parts(store, names):  # the extent, one small file at a time
        if part["x"].size:
            zooms.add(int(part["z"]))
            lo = np.minimum(lo, [part["x"].min(), part["y"].min()])
            hi = np.maximum(hi, [part["x"].max(), part["y"].max()])
    if not zooms:
        return None
    if len(zooms) > 1:
        raise InputError(f"--formats=raster: tiles at zooms {sorted(zooms)}; a raster has one zoom")
    z, (x0, y0) = zooms.pop(), lo.astype(np.int64)
    width, height = (hi - lo + 1).astype(np.int64)
    # the grid (Colombia: 154 MB) and the plain GeoTIFF sit beside a local output, on its disk
    local = isinstance(store, storage.LocalStore)
    with (
        tempfile.TemporaryDirectory(
            prefix="satx-raster-", dir=store.root if local else None
        ) as work,
        storage.staged_file(store, RASTER_NAME) as cog,
    ):
        grid = np.lib.format.open_memmap(
            os.path.join(work, "grid.npy"), mode="w+", dtype=np.uint8, shape=(height, width)
        )
        for part in _parts(store, names):
            grid[part["y"] - y0, part["x"] - x0] = part["v"]
        grid.flush()
        plain = os.path.join(work, "plain.tif")
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):  # GDAL's default: 5 % of the RAM
            _write_tiled(rasterio, grid, plain, z, int(x0), int(y0))
            del grid
            _to_cog(plain, cog)
    return store.url(RASTER_NAME)


def _write_tiled(rasterio: Any, grid: np.ndarray, path: str, z: int, x0: int, y0: int) -> None:
    """The grid as a tiled GeoTIFF in EPSG:3857, copied a band of rows at a time."""
    from affine import Affine
    from rasterio.windows import Window

    size = 2 * HALF_WORLD_M / (1 << z)
    height, width = grid.shape
    profile = {
        "driver": "GTiff",
        "dtype": "uint8",
        "count": 1,
        "width": width,
        "height": height,
        "crs": "EPSG:3857",
        "transform": Affine.translation(-HALF_WORLD_M + x0 * size, HALF_WORLD_M - y0 * size)
        @ Affine.scale(size, -size),
        "nodata": NODATA,
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
    }
    with rasterio.open(path, "w", **profile) as dst:
        for top in range(0, height, WRITE_ROWS):
            rows = min(WRITE_ROWS, height - top)
            dst.write(np.asarray(grid[top : top + rows]), 1, window=Window(0, top, width, rows))
        dst.scales, dst.offsets = (1 / 254,), (-1 / 254,)
        dst.update_tags(1, score="score = (value - 1) / 254; 0 = not scored")


def _to_cog(src: str, dst: str) -> None:
    from rio_cogeo.cogeo import cog_translate
    from rio_cogeo.profiles import cog_profiles

    profile = {**cog_profiles.get("deflate"), "blockxsize": BLOCK, "blockysize": BLOCK}
    cog_translate(
        src,
        dst,
        profile,
        nodata=NODATA,
        overview_resampling="nearest",
        in_memory=False,
        quiet=True,
        use_cog_driver=False,
    )
