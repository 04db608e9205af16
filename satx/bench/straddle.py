"""Windows against single tiles where objects straddle tile edges: `python -m satx.bench straddle`.

    python -m satx.bench straddle --data=../shared/data/eurosat --recipe=configs/straddle.json

A map built from real imagery: a block of zoom-18 tiles, each a EuroSAT image of a vegetation
class (the background), and on it objects cut from `Industrial` images, each pasted centred on a
tile corner, so the four tiles around it hold a quarter each. The labelled places are the
corners (the point a little off the corner, so a single tile is one of the four), split into
train/val/test once (80/10/10 of each label), the same for both runs:
- `plain`: a corner holds an object (positive) or nothing (negative);
- `decoy`: a negative corner holds a quarter-size patch of the same texture, inside the tile
  its point falls in: a single tile then sees the same corner patch either way, and only the
  whole object tells the classes apart.

For each task, `make_records --context=1` (the point's tile) and `--context=2` (the 2x2 window
centred on the corner) are trained with the same recipe (windows at twice the side, so both
keep the imagery's detail) and evaluated on their test splits: ROC AUC and accuracy.

What it can show: that windows carry the context a tile cut by an edge lacks, end to end
through satx (geolocated places, the window mosaic, training, evaluation), and by how much on
this construction. What it cannot: how often real schools straddle tile edges, or the gain on
real school imagery; the objects are pasted (sharp borders), the decoy task is built so that
single tiles cannot win, and EuroSAT's 10 m pixels are not zoom-18 imagery.
"""

from __future__ import annotations

import csv
import logging
import random
import time
from pathlib import Path
from typing import Any

import mercantile
import numpy as np
from PIL import Image

from satx import geo
from satx.bench.fetch import ORIGIN
from satx.config import EvaluateConfig, RecordsConfig, SourceConfig
from satx.errors import InputError
from satx.tiles.formats import EXTENSIONS
from satx.train.recipe import recipe_config

log = logging.getLogger(__name__)

OBJECT_CLASS = "Industrial"
BACKGROUND_CLASSES = ("AnnualCrop", "Forest", "HerbaceousVegetation", "Pasture", "PermanentCrop")
TASKS = ("plain", "decoy")


def _images(data: Path, names: tuple[str, ...] | list[str]) -> list[Path]:
    found = [p for name in names for p in sorted((data / name).glob("*")) if p.suffix in EXTENSIONS]
    if not found:
        raise InputError(f"--data={data}: no images in {', '.join(names)}")
    return found


def _rgb(path: Path, side: int) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize((side, side)))


def build_map(data: Path, root: Path, corners: int, side: int, seed: int) -> Path:
    """Both tasks' tiles and labels under `root` (`<task>/tiles/`, `<task>/places.csv`)."""
    rng = random.Random(seed)
    present = [p.name for p in data.iterdir() if p.is_dir()]
    backgrounds = _images(data, [c for c in BACKGROUND_CLASSES if c in present] or present)
    objects = _images(data, (OBJECT_CLASS,))
    k = max(2, int(np.ceil(np.sqrt(corners))))
    grid = 2 * k + 1  # corners every second tile: objects never touch
    size = side * 3 // 8  # an object: 3/8 of a tile a side, a quarter in each tile around it
    quarter = size // 2
    ground = [[rng.choice(backgrounds) for _ in range(grid)] for _ in range(grid)]
    splits = _splits(k * k, rng)
    places = []
    for n in range(k * k):
        i, j = divmod(n, k)
        cx, cy = 2 * j + 1, 2 * i + 1  # the corner is the top-left of tile (cx, cy)
        label = "object" if n % 2 == 0 else "none"
        dx, dy = rng.choice((-1, 0)), rng.choice((-1, 0))  # which tile the point falls in
        places.append((cx, cy, dx, dy, label, splits[n], rng.choice(objects)))
    for task in TASKS:
        canvas = np.zeros((grid * side, grid * side, 3), np.uint8)
        for y in range(grid):
            for x in range(grid):
                canvas[y * side : (y + 1) * side, x * side : (x + 1) * side] = _rgb(
                    ground[y][x], side
                )
        rows = []
        for cx, cy, dx, dy, label, split, source in places:
            px, py = cx * side, cy * side  # the corner in canvas pixels
            patch = _rgb(source, side)[:size, :size]
            if label == "object":
                canvas[py - quarter : py + quarter, px - quarter : px + quarter] = patch
            elif task == "decoy":  # a quarter-size patch in the point's own tile, at the corner
                top, left = py + dy * quarter, px + dx * quarter
                canvas[top : top + quarter, left : left + quarter] = patch[:quarter, :quarter]
            tile = mercantile.Tile(ORIGIN.x + cx, ORIGIN.y + cy, ORIGIN.z)
            # a point inside the tile (cx + dx, cy + dy), a fifth of a tile off the corner
            x = tile.x + (0.2 if dx == 0 else -0.2)
            y = tile.y + (0.2 if dy == 0 else -0.2)
            lon, lat = geo.grid_to_lonlat(ORIGIN.z, x, y)
            rows.append((round(float(lon), 9), round(float(lat), 9), label, split))
        folder = root / task / "tiles"
        for y in range(grid):
            for x in range(grid):
                target = folder / str(ORIGIN.z) / str(ORIGIN.x + x) / f"{ORIGIN.y + y}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                tile = canvas[y * side : (y + 1) * side, x * side : (x + 1) * side]
                Image.fromarray(tile).save(target)
        with open(root / task / "places.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["lon", "lat", "label", "split"])
            writer.writerows(rows)
    return root


def _splits(count: int, rng: random.Random) -> list[str]:
    """80/10/10 by exact counts within each label (places alternate labels), drawn seeded."""
    split = ["train"] * count
    for parity in (0, 1):
        mine = list(range(parity, count, 2))
        rng.shuffle(mine)
        held = max(1, round(0.1 * len(mine)))
        for n in mine[:held]:
            split[n] = "test"
        for n in mine[held : 2 * held]:
            split[n] = "val"
    return split


def _one(task_dir: Path, context: int, side: int, recipe: str, seed: int) -> dict[str, Any]:
    from satx.evaluate.report import evaluate
    from satx.records.make import make_records
    from satx.train.fit import train

    work = task_dir / f"context{context}"
    started = time.monotonic()
    make_records(
        RecordsConfig(
            input=str(task_dir / "places.csv"),
            output=str(work / "records"),
            source=SourceConfig(tiles=str(task_dir / "tiles" / "{z}/{x}/{y}.png")),
            zoom=ORIGIN.z,
            image_size=side,
            context=context,
            seed=seed,
        )
    )
    summary = train(
        recipe_config(
            recipe,
            records=str(work / "records"),
            workdir=str(work / "train"),
            image_size=side * context,
            seed=seed,
        )
    )
    report = evaluate(
        EvaluateConfig(
            model=summary.export or "",
            records=str(work / "records"),
            output=str(work / "eval"),
            threshold="youden",
        )
    )
    return {
        "context": context,
        "test_places": report.count,
        "roc_auc": report.roc_auc,
        "accuracy": round(report.accuracy, 4),
        "seconds": round(time.monotonic() - started, 1),
    }


def bench_straddle(data: str, recipe: str, workdir: str, corners: int = 1024, seed: int = 42):
    """Both tasks, single tiles against 2x2 windows (see the module docstring)."""
    source = Path(data)
    if not (source / OBJECT_CLASS).is_dir():
        raise InputError(f"--data={data}: expected EuroSAT's class folders, with {OBJECT_CLASS}/")
    side = _side(source)
    root = build_map(source, Path(workdir), corners, side, seed)
    rows = [
        {"task": task, **_one(root / task, context, side, recipe, seed)}
        for task in TASKS
        for context in (1, 2)
    ]
    result = {"data": data, "recipe": recipe, "tile_px": side, "corners": corners, "rows": rows}
    log.info("straddle bench: %s", result)
    return result


def _side(data: Path) -> int:
    first = _images(data, (OBJECT_CLASS,))[0]
    with Image.open(first) as image:
        return image.size[0]


def format_straddle(r: dict[str, Any]) -> str:
    """The straddle bench as plain text."""
    from satx.bench.table import Column, table

    columns = [
        Column("task", "task", 6, left=True),
        Column("context", "context", 7),
        Column("test", "test_places", 5),
        Column("ROC AUC", lambda r: "-" if r["roc_auc"] is None else f"{r['roc_auc']:.4f}", 8),
        Column("accuracy", "accuracy", 9, ".4f"),
        Column("seconds", "seconds", 8, ".0f"),
    ]
    return "\n".join(
        [
            f"objects across tile edges ({r['corners']} places on {r['tile_px']} px tiles of "
            f"{r['data']}; {r['recipe']}):",
            table(r["rows"], columns),
        ]
    )
