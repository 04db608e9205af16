"""Built-in sample data: synthetic 'satellite' tiles at real zoom-18 addresses in Colombia.

`school` tiles show a sports field (pitch or running track) with long school buildings around
it; `not_school` tiles show vegetation, roads and scattered houses. Houses, trees and roads
appear in both classes, so the task is easy but not trivial. Everything is drawn from a seed, so
the same call writes the same JPEGs, and the whole pipeline runs with no download.
"""

from __future__ import annotations

import io
from pathlib import Path

import mercantile
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from satx.io import claim
from satx.io.lock import output_lock
from satx.io.storage import atomic_write_local

CLASSES = ("not_school", "school")
# (name, lat, lon) of towns to scatter tiles around; several zoom-12 blocks each.
SITES = (
    ("Bogota", 4.711, -74.072),
    ("Medellin", 6.244, -75.581),
    ("Cali", 3.452, -76.532),
    ("Barranquilla", 10.964, -74.796),
    ("Cartagena", 10.391, -75.479),
    ("Bucaramanga", 7.119, -73.122),
    ("Pereira", 4.813, -75.694),
    ("Cucuta", 7.893, -72.507),
    ("Ibague", 4.438, -75.232),
    ("Santa Marta", 11.240, -74.199),
    ("Villavicencio", 4.142, -73.626),
    ("Pasto", 1.213, -77.281),
)
_GROUND = ((118, 128, 80), (140, 130, 95), (96, 120, 70), (150, 140, 110))
_TREES = ((34, 70, 30), (48, 88, 40), (60, 100, 45), (28, 58, 28))
_ROOFS = ((170, 80, 55), (150, 70, 50), (120, 110, 100), (185, 100, 70), (95, 85, 80))
_SCHOOL_ROOFS = ((205, 205, 200), (225, 225, 220), (150, 170, 190), (190, 190, 180))


def _ground(rng: np.random.Generator, side: int) -> Image.Image:
    base = np.array(_GROUND[rng.integers(len(_GROUND))], dtype=np.float32)
    coarse = rng.normal(0, 12, (8, 8, 3)).astype(np.float32)
    coarse_img = Image.fromarray(np.clip(coarse + 128, 0, 255).astype(np.uint8))
    smooth = np.asarray(coarse_img.resize((side, side), Image.Resampling.BILINEAR), np.float32)
    fine = rng.normal(0, 6, (side, side, 1)).astype(np.float32)
    return Image.fromarray(np.clip(base + smooth - 128 + fine, 0, 255).astype(np.uint8))


def _trees(draw: ImageDraw.ImageDraw, rng: np.random.Generator, side: int, n: int) -> None:
    for _ in range(n):
        x, y = rng.uniform(0, side, 2)
        r = rng.uniform(0.012, 0.035) * side
        draw.ellipse([x - r, y - r, x + r, y + r], fill=_TREES[rng.integers(len(_TREES))])


def _road(draw: ImageDraw.ImageDraw, rng: np.random.Generator, side: int) -> None:
    y0, y1 = rng.uniform(0.2, 0.8, 2) * side
    width = max(2, int(rng.uniform(0.025, 0.05) * side))
    draw.line([(0, y0), (side, y1)], fill=(105, 105, 100), width=width)


def _houses(draw: ImageDraw.ImageDraw, rng: np.random.Generator, side: int, n: int) -> None:
    for _ in range(n):
        x, y = rng.uniform(0.05, 0.95, 2) * side
        w, h = rng.uniform(0.03, 0.07, 2) * side
        draw.rectangle([x, y, x + w, y + h], fill=_ROOFS[rng.integers(len(_ROOFS))])


def _field(draw: ImageDraw.ImageDraw, rng: np.random.Generator, c: float, unit: float) -> None:
    w, h = unit * rng.uniform(0.32, 0.42), unit * rng.uniform(0.2, 0.26)
    box = [c - w / 2, c - h / 2, c + w / 2, c + h / 2]
    line = max(1, int(unit / 128))
    if rng.random() < 0.5:  # running track around a pitch
        pad = unit * 0.05
        draw.rounded_rectangle(
            [box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad],
            radius=h / 2 + pad,
            fill=(170, 75, 60),
        )
    pitch = (62, 140, 58) if rng.random() < 0.7 else (180, 150, 110)
    draw.rectangle(box, fill=pitch, outline=(240, 240, 240), width=line)
    draw.line([(c, box[1]), (c, box[3])], fill=(240, 240, 240), width=line)
    r = h * 0.2
    draw.ellipse([c - r, c - r, c + r, c + r], outline=(240, 240, 240), width=line)


def _school_buildings(draw: ImageDraw.ImageDraw, rng: np.random.Generator, c: float, unit: float):
    sides = rng.choice(4, size=int(rng.integers(2, 5)), replace=False)
    for side in sides:
        long_, short = unit * rng.uniform(0.35, 0.5), unit * rng.uniform(0.06, 0.09)
        off = unit * rng.uniform(0.22, 0.27)
        roof = _SCHOOL_ROOFS[rng.integers(len(_SCHOOL_ROOFS))]
        if side in (0, 1):  # above / below the field
            y = c - off - short if side == 0 else c + off
            draw.rectangle([c - long_ / 2, y, c + long_ / 2, y + short], fill=roof)
        else:  # left / right
            x = c - off - short if side == 2 else c + off
            draw.rectangle([x, c - long_ / 2, x + short, c + long_ / 2], fill=roof)


def draw_tile(label: str, rng: np.random.Generator, size: int = 256) -> Image.Image:
    """Draw one RGB tile of class `label` (`school` or `not_school`)."""
    side = int(size * 1.5)  # draw larger, rotate, crop: no empty corners
    image = _ground(rng, side)
    draw = ImageDraw.Draw(image)
    unit = float(size)
    _trees(draw, rng, side, int(rng.integers(5, 40)))
    if rng.random() < 0.7:
        _road(draw, rng, side)
    if label == "school":
        _houses(draw, rng, side, int(rng.integers(0, 6)))
        _field(draw, rng, side / 2, unit)
        _school_buildings(draw, rng, side / 2, unit)
    else:
        _houses(draw, rng, side, int(rng.integers(0, 14)))
        _trees(draw, rng, side, int(rng.integers(0, 30)))
    image = image.rotate(float(rng.uniform(0, 360)), resample=Image.Resampling.BILINEAR)
    lo = (side - size) // 2
    image = image.crop((lo, lo, lo + size, lo + size))
    return image.filter(ImageFilter.GaussianBlur(radius=size / 400))


def sample_addresses(
    count: int, school_fraction: float, seed: int, zoom: int = 18
) -> list[tuple[str, mercantile.Tile]]:
    """`count` distinct (label, tile) pairs scattered around the sites, deterministic from seed."""
    rng = np.random.default_rng(seed)
    n_school = int(round(count * school_fraction))
    labels = ["school"] * n_school + ["not_school"] * (count - n_school)
    rng.shuffle(labels)
    seen, out = set(), []
    for i, label in enumerate(labels):
        _, lat, lon = SITES[i % len(SITES)]
        while True:
            d_lon, d_lat = rng.uniform(-0.04, 0.04, 2)
            tile = mercantile.tile(lon + d_lon, lat + d_lat, zoom)
            if tile not in seen:
                seen.add(tile)
                out.append((label, tile))
                break
    return out


SAMPLE_LAYOUT = claim.Layout("make_sample_tiles", ("*/*-*-*.jpg",))


def write_sample_tiles(
    output: str | Path,
    count: int = 240,
    school_fraction: float = 0.3,
    seed: int = 0,
    size: int = 256,
    quality: int = 90,
) -> list[Path]:
    """Write `OUTPUT/<class>/{x}-{y}-{z}.jpg` tiles; return their paths.

    Raises:
        OutputExistsError / InputError: OUTPUT holds files satx did not write (`satx.io.claim`).
    """
    output = Path(output)
    rng = np.random.default_rng(seed + 1)
    paths = []
    with output_lock(str(output), "make_sample_tiles", SAMPLE_LAYOUT):
        for label, tile in sample_addresses(count, school_fraction, seed):
            path = output / label / f"{tile.x}-{tile.y}-{tile.z}.jpg"
            buffer = io.BytesIO()
            draw_tile(label, rng, size).save(buffer, format="JPEG", quality=quality)
            atomic_write_local(path, buffer.getvalue())
            paths.append(path)
    return paths


def write_known_schools(
    path: str | Path, count: int = 240, school_fraction: float = 0.3, seed: int = 0
) -> int:
    """Every other school of the sample as a GeoJSON point (a "known schools" file for sites).

    The points sit at the tiles' centres; the other half of the schools are "new" to find.
    Returns how many were written.
    """
    import json

    schools = [
        t for label, t in sample_addresses(count, school_fraction, seed) if label == "school"
    ]
    features = []
    for k, tile in enumerate(schools[::2]):
        b = mercantile.bounds(tile)
        point = [round((b.west + b.east) / 2, 7), round((b.south + b.north) / 2, 7)]
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": point},
                "properties": {"id": f"sample-school-{k}"},
            }
        )
    text = json.dumps({"type": "FeatureCollection", "features": features}) + "\n"
    atomic_write_local(Path(path), text.encode())
    return len(features)
