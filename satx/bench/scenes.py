"""Tiles cut from a scene: `python -m satx.bench fetch --tiles=SCENE` (or `--tiles=mosaic`).

The scene's tiles at its own zoom (its footprint's first `--num_tiles`) are read four ways:
- `folder`: the same tiles cut once and written as `{z}/{x}/{y}.png`, read from the folder
  (the reference: what the scene costs over tiles someone already made);
- `local`: cut from the scene file on the fly;
- `http`: cut from the scene served by a loopback file server in its own process, by range
  requests (a local single-file scene only);
- and `satx.predict` over the first `--predict_tiles` of them, listed by address, from each
  source (steady tiles/s after the first chunk).
Medians of `--repeats` alternating runs, with ratios to the folder. `--tiles=mosaic` first
writes the bench's tiles as one EPSG:3857 COG at zoom 18 (JPEG, 512 px blocks, overviews), a
scene with the tiles' own content. Reading and cutting share the machine's cores with the
server and the model, as they do in a real run.
"""

from __future__ import annotations

import logging
import math
import statistics
import tempfile
import time
from pathlib import Path

import mercantile
import numpy as np

from satx.bench.fetch import ORIGIN, _predict_rate, _read_rate
from satx.bench.fileserver import FileServerProcess
from satx.bench.predict import export_untrained
from satx.bench.table import Column, table
from satx.config import BenchConfig, SourceConfig
from satx.errors import InputError

log = logging.getLogger(__name__)

MOSAIC_TILES = 1024  # the mosaic's most tiles (32 x 32: 8192 px a side, 200 MB in memory)


def write_mosaic(files: list[Path], path: Path) -> Path:
    """The files (resized to 256 px) as a square block of zoom-18 tiles in one COG."""
    import rasterio
    from PIL import Image
    from rasterio.transform import from_bounds

    side = max(1, math.isqrt(min(len(files), MOSAIC_TILES)))
    pixels = np.zeros((3, side * 256, side * 256), np.uint8)
    for k in range(side * side):
        with Image.open(files[k]) as image:
            tile = np.asarray(image.convert("RGB").resize((256, 256)))
        top, left = (256 * v for v in divmod(k, side))
        pixels[:, top : top + 256, left : left + 256] = tile.transpose(2, 0, 1)
    first = mercantile.xy_bounds(ORIGIN)
    last = mercantile.xy_bounds(mercantile.Tile(ORIGIN.x + side - 1, ORIGIN.y + side - 1, 18))
    profile = {
        "driver": "COG",
        "width": side * 256,
        "height": side * 256,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:3857",
        "transform": from_bounds(
            first.left, last.bottom, last.right, first.top, side * 256, side * 256
        ),
        "compress": "JPEG",
        "quality": 90,
        "blocksize": 512,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as out:
        out.write(pixels)
    return path


def _scene_tiles(scene: SourceConfig, limit: int) -> list[mercantile.Tile]:
    """The scene's footprint tiles at its own zoom, the first `limit` of them."""
    from satx.tiles.aoi import PolygonArea
    from satx.tiles.scenes import SceneTiles

    source = SceneTiles(scene)
    try:
        area = PolygonArea(source.footprint(), source.native_zoom, name="scene footprint")
    finally:
        source.close()
    return area.tiles(0, min(limit, len(area)))


def _cut_to_folder(scene: SourceConfig, tiles: list[mercantile.Tile], root: Path) -> None:
    from satx.tiles.sources import open_source

    source = open_source(scene)
    try:
        data, errors = source.read(tiles)
    finally:
        source.close()
    if errors:
        raise InputError(f"fetch bench: {len(errors)} of the scene's tiles have no imagery")
    for t, png in zip(tiles, data, strict=True):
        target = root / str(t.z) / str(t.x) / f"{t.y}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(png)  # type: ignore[arg-type]


def bench_scene_fetch(files: list[Path], s: BenchConfig, backbone: str, image_size: int) -> dict:
    """Tiles/s cut from the scene (local, over HTTP) against a folder of the same tiles."""
    with tempfile.TemporaryDirectory(prefix="satx-bench-scene-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        given = s.scene if s.scene != "mosaic" else str(write_mosaic(files, work / "www" / "m.tif"))
        mosaic_seconds = round(time.perf_counter() - started, 1) if s.scene == "mosaic" else None
        threads = SourceConfig().fetch_threads
        local = SourceConfig(tiles=given, fetch_threads=threads)
        tiles = _scene_tiles(local, s.num_tiles)
        _cut_to_folder(local, tiles, work / "cut")
        folder = str(work / "cut" / "{z}/{x}/{y}.png")
        sources = {"folder": SourceConfig(tiles=folder, fetch_threads=threads), "local": local}
        served = Path(given)
        with FileServerProcess(served.parent if served.is_file() else work) as server:
            if served.is_file():
                sources["http"] = SourceConfig(tiles=server.url(served.name), fetch_threads=threads)
            rates: dict[str, list[float]] = {name: [] for name in sources}
            for _ in range(s.repeats):
                for name, source in sources.items():
                    rates[name].append(_read_rate(source, tiles))
            listing = work / "tiles.csv"
            scored = tiles[: s.predict_tiles]
            listing.write_text("z,x,y\n" + "".join(f"{t.z},{t.x},{t.y}\n" for t in scored))
            export = export_untrained(backbone, image_size, work)
            predicted: dict[str, list[float]] = {name: [] for name in sources}
            for _ in range(s.repeats):
                for name, source in sources.items():
                    predicted[name].append(_predict_rate(export, listing, source, work / "p", s))
    cut = {k: round(statistics.median(v), 1) for k, v in rates.items()}
    pred = {k: round(statistics.median(v), 1) for k, v in predicted.items()}
    result = {
        "scene": "mosaic" if s.scene == "mosaic" else s.scene,
        "mosaic_seconds": mosaic_seconds,
        "zoom": tiles[0].z if tiles else None,
        "tiles": len(tiles),
        "threads": threads,  # asked; a local scene is cut on at most one thread a core
        "repeats": s.repeats,
        "rows": [
            {
                "source": name,
                "tiles_per_s": cut[name],
                "over_folder": round(cut[name] / cut["folder"], 3),
                "spread": [round(min(rates[name]), 1), round(max(rates[name]), 1)],
                "predict_tiles_per_s": pred[name],
                "predict_over_folder": round(pred[name] / pred["folder"], 3),
            }
            for name in sources
        ],
        "predict_backbone": backbone,
        "predict_image_size": image_size,
        "predict_tiles": len(scored),
    }
    log.info("scene fetch bench: %s", result)
    return result


def format_scene_fetch(r: dict) -> str:
    """The scene bench as plain text."""
    columns = [
        Column("source", "source", 8, left=True),
        Column("tiles/s", "tiles_per_s", 9, ",.0f"),
        Column("x folder", "over_folder", 9, ".2f"),
        Column("predict/s", "predict_tiles_per_s", 10, ",.1f"),
        Column("x folder", "predict_over_folder", 9, ".2f"),
    ]
    return "\n".join(
        [
            f"tiles cut from {r['scene']} ({r['tiles']} tiles at zoom {r['zoom']}, "
            f"{r['threads']} threads; medians of {r['repeats']}); predict: "
            f"{r['predict_backbone']}, {r['predict_tiles']} tiles",
            table(r["rows"], columns),
        ]
    )
