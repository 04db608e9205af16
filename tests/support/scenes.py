"""Scenes made from the real zoom-17 tiles of ../shared/data/xyz-tiles (a 3x3 block, one hole).

The block is mosaicked, georeferenced in EPSG:3857 from the tiles' own bounds, and written with
rasterio: as it is (a COG), reprojected to UTM zone 29N, and as a 16-bit 4-band file with a
nodata border. Tiles cut back from these are compared with the original JPEGs, decoded.
"""

from __future__ import annotations

from pathlib import Path

import mercantile
import numpy as np

from tests.support.helpers import shared_data

Z = 17
XS, YS = range(62092, 62095), range(50162, 50165)
BLOCK = [mercantile.Tile(x, y, Z) for y in YS for x in XS]
HOLE = mercantile.Tile(62092, 50162, Z)  # the README: this id has no image file
UTM = "EPSG:32629"  # Portugal, where the README places the tiles


def original(tile: mercantile.Tile) -> np.ndarray:
    """The real tile, decoded (HxWx3 uint8)."""
    from PIL import Image

    path = shared_data("xyz-tiles") / f"{tile.x}-{tile.y}-{tile.z}.jpg"
    return np.asarray(Image.open(path).convert("RGB"))


def mosaic() -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """The block as bands-first RGB, its validity mask (0 in the hole) and its 3857 bounds."""
    rgb = np.zeros((3, 768, 768), np.uint8)
    mask = np.zeros((768, 768), np.uint8)
    for t in BLOCK:
        if t == HOLE:
            continue
        i, j = t.x - XS[0], t.y - YS[0]
        rgb[:, j * 256 : (j + 1) * 256, i * 256 : (i + 1) * 256] = original(t).transpose(2, 0, 1)
        mask[j * 256 : (j + 1) * 256, i * 256 : (i + 1) * 256] = 255
    first, last = mercantile.xy_bounds(BLOCK[0]), mercantile.xy_bounds(BLOCK[-1])
    return rgb, mask, (first.left, last.bottom, last.right, first.top)


def write_scene(
    path: Path,
    data: np.ndarray,
    bounds: tuple[float, float, float, float],
    crs: str | None = "EPSG:3857",
    mask: np.ndarray | None = None,
    nodata: float | None = None,
    driver: str = "COG",
) -> Path:
    """A GeoTIFF (COG by default) of bands-first `data` over `bounds` in `crs`."""
    import rasterio
    from rasterio.transform import from_bounds

    count, height, width = data.shape
    profile = dict(
        driver=driver,
        width=width,
        height=height,
        count=count,
        dtype=str(data.dtype),
        transform=from_bounds(*bounds, width, height),
        compress="deflate",
    )
    if crs:
        profile["crs"] = crs
    if nodata is not None:
        profile["nodata"] = nodata
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if mask is not None:
            dst.write_mask(mask)
    return path


def mercator_scene(path: Path) -> Path:
    """The block as an RGB COG in EPSG:3857 (the hole masked)."""
    rgb, mask, bounds = mosaic()
    return write_scene(path, rgb, bounds, mask=mask)


def utm_scene(path: Path) -> Path:
    """The block reprojected to UTM 29N at about its ground resolution (bilinear; 0 = nodata)."""
    import rasterio
    from rasterio.transform import from_bounds
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    rgb, mask, bounds = mosaic()
    source = from_bounds(*bounds, 768, 768)
    transform, width, height = calculate_default_transform("EPSG:3857", UTM, 768, 768, *bounds)
    out = np.zeros((3, height, width), np.uint8)
    valid = np.zeros((height, width), np.uint8)
    for band in range(3):
        reproject(
            rgb[band],
            out[band],
            src_transform=source,
            src_crs="EPSG:3857",
            dst_transform=transform,
            dst_crs=UTM,
            resampling=Resampling.bilinear,
        )
    reproject(
        mask,
        valid,
        src_transform=source,
        src_crs="EPSG:3857",
        dst_transform=transform,
        dst_crs=UTM,
        resampling=Resampling.nearest,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(
        driver="COG",
        width=width,
        height=height,
        count=3,
        dtype="uint8",
        crs=UTM,
        transform=transform,
        compress="deflate",
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(out)
        dst.write_mask(valid)
    return path


def sixteen_bit_scene(path: Path, border: int = 64) -> Path:
    """The block as 16-bit B,G,R,NIR (values x 4), nodata 0 in the hole and a `border`-pixel
    frame; `--bands=3,2,1 --rescale=0,1020` gives the original pixels back."""
    rgb, mask, bounds = mosaic()
    data = np.zeros((4, 768, 768), np.uint16)
    data[:3] = rgb[::-1].astype(np.uint16) * 4
    data[3] = 1000
    data[:3] = np.maximum(data[:3], 4)  # a valid pixel is never nodata (0)
    data[:, mask == 0] = 0
    data[:, :border] = data[:, -border:] = 0
    data[:, :, :border] = data[:, :, -border:] = 0
    return write_scene(path, data, bounds, nodata=0)
