"""Scenes as a tile source: web-mercator tiles cut on the fly from GeoTIFF/COG files and STAC items.

`--tiles` names the scenes: one GeoTIFF/COG or GDAL VRT (a path, `gs://` or `https://`, read by
range requests), a folder (the scenes directly in it) or glob of them, or a STAC Item /
ItemCollection JSON (local or URL) whose `--stac_asset` (default `visual`) is the scene
(`satx.tiles.scene_list`). rio-tiler cuts each z/x/y tile, warped from the scene's CRS (any
pyproj knows) to EPSG:3857.

- Bands: `--bands=3,2,1` (1-based), else the scene's red, green and blue by colour
  interpretation, else its first three (a single band is grey).
- Values: uint8 scenes as they are; others rescaled to 0-255 by `--rescale=MIN,MAX`, or by each
  band's 2nd-98th percentile over the scene's valid pixels, computed once per scene from an
  overview and recorded (`identity()`), so the records and a later predict can be compared.
- Nodata (the nodata value, an internal mask or an alpha band) and scene edges: a tile without
  one valid pixel is `missing` (no imagery: counted, never scored or labelled); a tile partly
  covered is kept with the uncovered pixels black, and `coverage` holds its valid share.
- Remote scenes: a read that fails (a dropped connection) is tried again `--fetch_retries`
  times, with GDAL's cached regions of the scene forgotten first.
- Overlaps: the first scene in order wins where it has valid pixels, the next fill its gaps.
  The order is the listing's (paths sorted by name) or, for STAC, the newest `datetime` first.

A tile comes out as a lossless RGB PNG (uncompressed: quick to make and to decode), so every
stage reads it like any other tile.
"""

from __future__ import annotations

import logging
import math
import struct
import threading
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import mercantile
import numpy as np

from satx.config import SourceConfig
from satx.errors import InputError
from satx.io import secrets
from satx.io.machine import cores_used
from satx.tiles.base import MISSING, Errors
from satx.tiles.formats import PNG_MAGIC
from satx.tiles.scene_list import Scene, forget_remote_regions, open_scenes

log = logging.getLogger(__name__)

TILE_SIZE = 256
PERCENTILES = (2.0, 98.0)
FOOTPRINT_PX = 2048  # a scene's mask is traced at most this many pixels a side
RUN = 16  # neighbouring tiles cut by one thread in a row


def native_zoom(config: SourceConfig) -> int:
    """The zoom whose ground resolution is closest to the first scene's (nothing is hashed)."""
    import rasterio
    from rio_tiler.errors import RioTilerError
    from rio_tiler.io import Reader

    _, scenes = open_scenes(config)
    scene = scenes[0]
    try:
        with Reader(scene.gdal_path) as reader:
            return int(reader.maxzoom)
    except (rasterio.errors.RasterioError, RioTilerError) as err:
        raise _unreadable(scene, err) from err


def _unreadable(scene: Scene, err: Exception) -> InputError:
    detail = secrets.scrub(str(err))[:200]
    return InputError(
        f"--tiles: {secrets.redact_url(scene.href)} is not a raster GDAL can read ({detail})"
    )


class SceneTiles:
    """Tiles cut from scenes (see the module docstring); thread-safe."""

    kind = "scene"

    def __init__(self, config: SourceConfig):
        self.config = config
        self.description = secrets.redact_url(config.tiles)
        self.remote, self.scenes = open_scenes(config)
        self.settings = [self._settings(scene) for scene in self.scenes]  # refused here if bad
        self._local = threading.local()
        # local scenes are cut by the cores: a thread more only decodes the same blocks again
        # in its own reader (measured: 290 tiles/s on 2 threads, 194 on 32)
        remote = any(scene.remote for scene in self.scenes)
        self.threads = config.fetch_threads if remote else min(config.fetch_threads, cores_used())
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="satx-scene")

    def _reader(self, k: int) -> Any:
        """Scene k's rio-tiler reader, one per thread (a GDAL dataset is not thread-safe)."""
        from rio_tiler.io import Reader

        readers = self._local.__dict__.setdefault("readers", {})
        if k not in readers:
            readers[k] = Reader(self.scenes[k].gdal_path)
        return readers[k]

    def _settings(self, scene: Scene) -> dict[str, Any]:
        """Open one scene: its bands and its rescale (checked and computed here, once)."""
        import rasterio
        from rasterio.enums import ColorInterp
        from rio_tiler.errors import RioTilerError
        from rio_tiler.io import Reader

        shown = secrets.redact_url(scene.href)
        try:
            with Reader(scene.gdal_path) as reader:
                dataset = reader.dataset
                if dataset.crs is None:
                    raise InputError(
                        f"--tiles: {shown} has no CRS, so it cannot be placed on the map; "
                        "georeference it (e.g. gdal_translate -a_srs) first"
                    )
                count, dtype = dataset.count, dataset.dtypes[0]
                bands = self.config.bands or _default_bands(
                    list(dataset.colorinterp), count, ColorInterp
                )
                bad = [b for b in bands if not 1 <= b <= count]
                if bad:
                    raise InputError(
                        f"--bands={','.join(map(str, self.config.bands))}: {shown} has {count} "
                        f"band(s) (1-{count})"
                    )
                rescale = self._rescale(reader, bands, dtype)
                native = reader.maxzoom
        except (rasterio.errors.RasterioError, RioTilerError) as err:
            raise _unreadable(scene, err) from err
        return {
            "scene": shown,
            "bands": list(bands),
            "dtype": dtype,
            "rescale": rescale,
            "native_zoom": native,
            **self.remote.identity(scene),
        }

    def _rescale(self, reader: Any, bands: tuple[int, ...], dtype: str) -> list[list[float]]:
        if self.config.rescale:
            low, high = self.config.rescale
            return [[low, high] for _ in bands]
        if dtype == "uint8":
            return []
        preview = reader.preview(indexes=bands, max_size=1024)
        valid = preview.mask > 0
        if not valid.any():
            return [[0.0, 255.0] for _ in bands]
        return [
            [float(v) for v in np.percentile(np.asarray(band)[valid], PERCENTILES)]
            for band in preview.data
        ]

    @property
    def native_zoom(self) -> int:
        """The zoom whose ground resolution is closest to the first scene's."""
        return int(self.settings[0]["native_zoom"])

    def footprint(self) -> Any:
        """Where the scenes have valid pixels: one shapely geometry in degrees.

        Traced from each scene's mask, read at most 2048 px a side by averaging (a traced pixel
        is valid when any pixel under it is, so no covered tile is left out; a tile taken in
        without a valid pixel is `missing` when read), and shrunk by a thousandth of a pixel,
        so a tile that only shares an edge with the imagery is not in it.
        """
        import rasterio
        import rasterio.features
        import shapely
        from rasterio.enums import Resampling
        from rasterio.warp import transform_geom

        parts = []
        for scene in self.scenes:
            with rasterio.open(scene.gdal_path) as dataset:
                scale = max(1, math.ceil(max(dataset.width, dataset.height) / FOOTPRINT_PX))
                shape = (math.ceil(dataset.height / scale), math.ceil(dataset.width / scale))
                mask = dataset.dataset_mask(out_shape=shape, resampling=Resampling.average)
                valid = (mask > 0).astype(np.uint8)
                transform = dataset.transform @ dataset.transform.scale(
                    dataset.width / shape[1], dataset.height / shape[0]
                )
                pixel = abs(dataset.transform.a)
                traced = [
                    shapely.geometry.shape(g)
                    for g, _ in rasterio.features.shapes(valid, mask=valid > 0, transform=transform)
                ]
                if not traced:
                    continue
                inside = shapely.union_all(traced).buffer(-pixel / 1000, join_style="mitre")
                parts.append(
                    shapely.geometry.shape(
                        transform_geom(dataset.crs, "EPSG:4326", shapely.geometry.mapping(inside))
                    )
                )
        if not parts:
            raise InputError(f"--tiles={self.description}: the scenes hold no valid pixel")
        return shapely.union_all(parts)

    def identity(self) -> list[dict[str, Any]]:
        """What a run records of its scenes: each one's hash (or ETag), bands and rescale."""
        return self.settings

    def read(self, tiles: Sequence[mercantile.Tile]) -> tuple[list[bytes | None], Errors]:
        """Each tile cut from the scenes as PNG bytes; `missing` where no scene has a pixel."""
        data, errors, _ = self.read_covered(tiles)
        return data, errors

    def read_covered(
        self, tiles: Sequence[mercantile.Tile]
    ) -> tuple[list[bytes | None], Errors, list[float]]:
        """`read`, and each tile's share of valid pixels (0 where it has none)."""
        # runs of neighbouring tiles (areas come in quadkey order) go to one thread each: its
        # reader decodes a block once for the run (measured 1.3-1.5x over tile by tile)
        size = max(1, min(RUN, math.ceil(len(tiles) / self.threads)))
        runs = [tiles[i : i + size] for i in range(0, len(tiles), size)]
        results = [r for run in self._pool.map(self._run, runs) for r in run]
        errors = {i: error for i, (_, _, error) in enumerate(results) if error is not None}
        return [data for data, _, _ in results], errors, [share for _, share, _ in results]

    def _run(
        self, tiles: Sequence[mercantile.Tile]
    ) -> list[tuple[bytes | None, float, tuple[str, str] | None]]:
        return [self._tile(tile) for tile in tiles]

    def _tile(self, tile: mercantile.Tile) -> tuple[bytes | None, float, tuple[str, str] | None]:
        """The tile's PNG and its valid share, or None, 0 and why it has none."""
        from rio_tiler.errors import TileOutsideBounds

        rgb: np.ndarray | None = None
        filled: np.ndarray | None = None
        for k, settings in enumerate(self.settings):
            try:
                image = self._cut(k, tile)
            except TileOutsideBounds:
                continue
            except Exception as err:  # a GDAL read error is this tile's, not the run's
                detail = secrets.scrub(str(err))[:200]
                return None, 0.0, ("unreadable", f"{settings['scene']}: {detail}")
            valid = np.asarray(image.mask) > 0
            pixels = _to_rgb(np.asarray(image.data), settings["rescale"])
            if rgb is None and valid.all():  # most tiles: inside the first scene
                return _png(pixels), 1.0, None
            if rgb is None:
                rgb = np.zeros((TILE_SIZE, TILE_SIZE, 3), np.uint8)
                filled = np.zeros((TILE_SIZE, TILE_SIZE), bool)
            take = valid & ~filled
            np.copyto(rgb, pixels, where=take[..., None])
            filled |= take
            if filled.all():
                break
        share = float(filled.mean()) if filled is not None else 0.0
        if rgb is None or not share:
            return (
                None,
                0.0,
                (MISSING, f"no valid pixel of the scenes in {tile.z}/{tile.x}/{tile.y}"),
            )
        return _png(rgb), share, None

    def _cut(self, k: int, tile: mercantile.Tile) -> Any:
        """Scene k's part of a tile; a remote scene's failed read is tried again.

        GDAL keeps a response cut mid-body in its region cache and fails that block for the
        rest of the process, so before each retry the scene's cached regions are forgotten.
        """
        from rio_tiler.errors import TileOutsideBounds

        scene = self.scenes[k]
        for attempt in range(self.config.fetch_retries + 1):
            try:
                return self._reader(k).tile(
                    tile.x, tile.y, tile.z, tilesize=TILE_SIZE, indexes=self.settings[k]["bands"]
                )
            except TileOutsideBounds:
                raise
            except Exception:
                if not scene.remote or attempt == self.config.fetch_retries:
                    raise
                forget_remote_regions(scene.gdal_path)
                time.sleep(min(4.0, 0.25 * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Stop the threads (their readers close with them)."""
        self._pool.shutdown()


def _default_bands(interp: list[Any], count: int, color_interp: Any) -> tuple[int, ...]:
    wanted = [color_interp.red, color_interp.green, color_interp.blue]
    if all(c in interp for c in wanted):
        return tuple(interp.index(c) + 1 for c in wanted)
    return (1, 2, 3) if count >= 3 else (1, 1, 1)


def _to_rgb(data: np.ndarray, rescale: list[list[float]]) -> np.ndarray:
    """Bands-first data -> HxWx3 uint8 (rescaled linearly when the scene needs it)."""
    if rescale:
        out = np.empty(data.shape, np.float32)
        for b, (low, high) in enumerate(rescale):
            out[b] = (data[b].astype(np.float32) - low) * (255.0 / max(high - low, 1e-12))
        data = np.clip(np.rint(out), 0, 255)
    return np.ascontiguousarray(data.astype(np.uint8).transpose(1, 2, 0))


def _png(rgb: np.ndarray) -> bytes:
    """HxWx3 uint8 -> a PNG of stored (uncompressed) deflate blocks, rows unfiltered.

    0.3 ms a 256 px tile, against 7-10 ms for Pillow's fastest compression (measured on the
    real xyz tiles; `docs/benchmarks.md`): cutting stays off predict's critical path, for
    1.4x the bytes (197 KB a tile, where compressed gave 140 KB).
    """
    height, width, _ = rgb.shape
    rows = np.zeros((height, width * 3 + 1), np.uint8)  # a leading 0 per row: filter None
    rows[:, 1:] = rgb.reshape(height, -1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"".join(
        [
            PNG_MAGIC,
            chunk(b"IHDR", header),
            chunk(b"IDAT", zlib.compress(rows.tobytes(), 0)),
            chunk(b"IEND", b""),
        ]
    )
