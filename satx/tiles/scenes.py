"""Scenes as a tile source: web-mercator tiles cut on the fly from GeoTIFF/COG files and STAC items.

`--tiles` names the scenes: one GeoTIFF/COG or GDAL VRT (a path, `gs://` or `https://`, read by
range requests), a folder (the scenes directly in it) or glob of them, or a STAC Item /
ItemCollection JSON (local or URL) whose `--stac_asset` (default `visual`) is the scene.
rio-tiler cuts each z/x/y tile, warped from the scene's CRS (any pyproj knows) to EPSG:3857.

- Bands: `--bands=3,2,1` (1-based), else the scene's red, green and blue by colour
  interpretation, else its first three (a single band is grey).
- Values: uint8 scenes as they are; others rescaled to 0-255 by `--rescale=MIN,MAX`, or by each
  band's 2nd-98th percentile over the scene's valid pixels, computed once per scene from an
  overview and recorded (`identity()`), so the records and a later predict can be compared.
- Nodata (the nodata value, an internal mask or an alpha band) and scene edges: a tile without
  one valid pixel is `missing` (no imagery: counted, never scored or labelled); a tile partly
  covered is kept with the uncovered pixels black, and `coverage` holds its valid share.
- Overlaps: the first scene in order wins where it has valid pixels, the next fill its gaps.
  The order is the listing's (paths sorted by name) or, for STAC, the newest `datetime` first.

A tile comes out as a lossless RGB PNG, so every stage reads it like any other tile.
"""

from __future__ import annotations

import glob
import io
import json
import logging
import math
import os
import threading
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mercantile
import numpy as np

from satx.config import SourceConfig
from satx.errors import InputError
from satx.io import secrets, storage
from satx.io.run_record import file_sha256
from satx.tiles.base import MISSING, Errors

log = logging.getLogger(__name__)

SCENE_SUFFIXES = (".tif", ".tiff", ".vrt")
TILE_SIZE = 256
PERCENTILES = (2.0, 98.0)
FOOTPRINT_PX = 2048  # a scene's mask is traced at most this many pixels a side


def is_scene_spec(spec: str) -> bool:
    """Does `--tiles` name scenes (rather than a tile template or an archive)?"""
    path = spec.lower().split("?")[0]
    if "{" in spec:
        return False
    if path.endswith((*SCENE_SUFFIXES, ".json")):
        return True
    if path.startswith(("http://", "https://", "gs://")):
        return False
    folder = Path(spec).expanduser()
    return any(c in spec for c in "*?[") or (folder.is_dir() and bool(_scene_files(folder)))


def _scene_files(folder: Path) -> list[str]:
    """The scenes directly inside a folder (a folder of z/x/y tiles has none)."""
    return sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in SCENE_SUFFIXES)


@dataclass(frozen=True)
class Scene:
    """One scene: where it is (as given, and as GDAL opens it) and its STAC datetime."""

    href: str
    datetime: str = ""

    @property
    def gdal_path(self) -> str:
        """The path GDAL opens: gs:// through /vsigs/, URLs through /vsicurl/ (range reads)."""
        if self.href.startswith("gs://"):
            return "/vsigs/" + self.href[len("gs://") :]
        if self.href.startswith(("http://", "https://")):
            return "/vsicurl/" + self.href
        return str(Path(self.href).expanduser())


def _read_text(where: str, timeout: float) -> str:
    if where.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(where, timeout=timeout) as answer:
                return answer.read().decode()
        except OSError as err:
            raise InputError(f"{secrets.redact_url(where)}: cannot read ({err})") from err
    folder, _, name = where.rpartition("/")
    try:
        return storage.open_store(folder or ".").read_bytes(name).decode()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{where}: cannot read ({err})") from err


def _stac_scenes(where: str, asset: str, timeout: float) -> list[Scene]:
    """The `asset` of a STAC Item or of each Item of an ItemCollection, newest first."""
    shown = secrets.redact_url(where)
    try:
        document = json.loads(_read_text(where, timeout))
    except ValueError as err:
        raise InputError(
            f"--tiles={shown}: not JSON ({err}); give a STAC Item or ItemCollection"
        ) from err
    kind = document.get("type") if isinstance(document, dict) else None
    items = [document] if kind == "Feature" else document.get("features") if kind else None
    if not isinstance(items, list) or not items:
        raise InputError(f"--tiles={shown}: not a STAC Item or ItemCollection (type {kind!r})")
    scenes = []
    for item in items:
        assets = item.get("assets") if isinstance(item, dict) else None
        name = item.get("id", "?") if isinstance(item, dict) else "?"
        if not isinstance(assets, dict) or not isinstance(assets.get(asset), dict):
            have = ", ".join(sorted(assets)) if isinstance(assets, dict) else "none"
            raise InputError(
                f"--tiles={shown}: STAC item {name} has no asset {asset!r} (it has: {have}); "
                "choose one with --stac_asset"
            )
        href = str(assets[asset].get("href", ""))
        if not href:
            raise InputError(f"--tiles={shown}: STAC item {name}'s asset {asset!r} has no href")
        properties = item.get("properties") or {}
        scenes.append(Scene(urllib.parse.urljoin(where, href), str(properties.get("datetime", ""))))
    return sorted(scenes, key=lambda s: s.datetime, reverse=True)  # stable: ties keep order


def list_scenes(spec: str, stac_asset: str = "visual", timeout: float = 15.0) -> list[Scene]:
    """The scenes `--tiles` names, in the order that decides overlaps."""
    path = spec.split("?")[0].lower()
    if path.endswith(".json"):
        return _stac_scenes(spec, stac_asset, timeout)
    if path.startswith(("http://", "https://", "gs://")):
        return [Scene(spec)]
    local = Path(spec).expanduser()
    if local.is_dir():
        found = _scene_files(local)
    elif any(c in spec for c in "*?["):
        found = sorted(p for p in glob.glob(str(local), recursive=True) if os.path.isfile(p))
    else:
        if not local.is_file():
            raise InputError(f"--tiles={spec}: no such scene file")
        found = [str(local)]
    if not found:
        raise InputError(f"--tiles={spec}: no GeoTIFF/COG or VRT scene there")
    return [Scene(p) for p in found]


def native_zoom(config: SourceConfig) -> int:
    """The zoom whose ground resolution is closest to the first scene's (nothing is hashed)."""
    import rasterio
    from rio_tiler.errors import RioTilerError
    from rio_tiler.io import Reader

    scene = list_scenes(config.tiles, config.stac_asset, config.fetch_timeout)[0]
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
        self.scenes = list_scenes(config.tiles, config.stac_asset, config.fetch_timeout)
        self._configure_gdal()
        self.settings = [self._settings(scene) for scene in self.scenes]  # refused here if bad
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(config.fetch_threads, thread_name_prefix="satx-scene")

    def _configure_gdal(self) -> None:
        """GDAL's settings for remote scenes, as environment defaults (a user's own win).

        No folder listing; this source's timeout and retries (GDAL's: 429 and 5xx); the GCS
        emulator when one is set. Set once for the process rather than a `rasterio.Env` around
        every read of every pool thread.
        """
        options = {
            "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
            "GDAL_HTTP_TIMEOUT": str(math.ceil(self.config.fetch_timeout)),
            "GDAL_HTTP_MAX_RETRY": str(self.config.fetch_retries),
            "GDAL_HTTP_RETRY_DELAY": "0.5",
        }
        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        if emulator:
            options.update(CPL_GS_ENDPOINT=emulator.rstrip("/") + "/", GS_NO_SIGN_REQUEST="YES")
        for key, value in options.items():
            os.environ.setdefault(key, value)

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
            **_identity(scene),
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

        Traced from each scene's mask (decimated to at most 2048 px a side, then grown by the
        decimation, so no covered tile is left out; a tile it takes in without a valid pixel is
        `missing` when read) and shrunk by a thousandth of a pixel, so a tile that only shares
        an edge with the imagery is not in it.
        """
        import rasterio
        import rasterio.features
        import shapely
        from rasterio.warp import transform_geom

        parts = []
        for scene in self.scenes:
            with rasterio.open(scene.gdal_path) as dataset:
                scale = max(1, math.ceil(max(dataset.width, dataset.height) / FOOTPRINT_PX))
                shape = (math.ceil(dataset.height / scale), math.ceil(dataset.width / scale))
                mask = dataset.dataset_mask(out_shape=shape)
                transform = dataset.transform @ dataset.transform.scale(
                    dataset.width / shape[1], dataset.height / shape[0]
                )
                pixel = abs(dataset.transform.a)
                traced = [
                    shapely.geometry.shape(g)
                    for g, _ in rasterio.features.shapes(mask, mask=mask > 0, transform=transform)
                ]
                if not traced:
                    continue
                grown = shapely.union_all(traced).buffer(
                    (scale - 1) * pixel - pixel / 1000, join_style="mitre"
                )
                parts.append(
                    shapely.geometry.shape(
                        transform_geom(dataset.crs, "EPSG:4326", shapely.geometry.mapping(grown))
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
        results = list(self._pool.map(self._tile, tiles))
        errors = {i: error for i, (_, _, error) in enumerate(results) if error is not None}
        return [data for data, _, _ in results], errors, [share for _, share, _ in results]

    def _tile(self, tile: mercantile.Tile) -> tuple[bytes | None, float, tuple[str, str] | None]:
        """The tile's PNG and its valid share, or None, 0 and why it has none."""
        from rio_tiler.errors import TileOutsideBounds

        rgb: np.ndarray | None = None
        filled: np.ndarray | None = None
        for k, settings in enumerate(self.settings):
            try:
                image = self._reader(k).tile(
                    tile.x, tile.y, tile.z, tilesize=TILE_SIZE, indexes=settings["bands"]
                )
            except TileOutsideBounds:
                continue
            except Exception as err:  # a GDAL read error is this tile's, not the run's
                detail = secrets.scrub(str(err))[:200]
                return None, 0.0, ("unreadable", f"{settings['scene']}: {detail}")
            valid = np.asarray(image.mask) > 0
            if rgb is None:
                rgb = np.zeros((TILE_SIZE, TILE_SIZE, 3), np.uint8)
                filled = np.zeros((TILE_SIZE, TILE_SIZE), bool)
            take = valid & ~filled
            rgb[take] = _to_rgb(np.asarray(image.data), settings["rescale"])[take]
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
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _identity(scene: Scene) -> dict[str, str]:
    """A local scene's sha256; a remote one's ETag (or size and date), as its server says."""
    if scene.href.startswith(("http://", "https://", "gs://")):
        return {"etag": _remote_etag(scene)}
    return {"sha256": file_sha256(scene.gdal_path)}


def _remote_etag(scene: Scene) -> str:
    if scene.href.startswith("gs://"):
        folder, _, name = scene.href.rpartition("/")
        return storage.GcsStore(folder).etag(name)
    request = urllib.request.Request(scene.href, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            headers = answer.headers
    except OSError as err:
        raise InputError(
            f"--tiles: {secrets.redact_url(scene.href)}: cannot reach ({err})"
        ) from err
    return headers.get("ETag") or f"{headers.get('Content-Length')}@{headers.get('Last-Modified')}"
