"""Building footprints -> the tile set of a settlement mask: `python -m satx.bench mask`.

`--hits` synthetic footprints (8-30 m rectangles, like Microsoft's and Google's building
polygons) clustered in towns over Colombia's box are written as GeoParquet in row groups (the
format those datasets ship in), then `satx.tiles.mask.mask_keys` turns them into zoom-18 tile
keys in a child process: the time, the child's peak memory, and the tiles kept.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import shapely

WEST, SOUTH, EAST, NORTH = -79.0, -4.2, -66.9, 12.5  # Colombia's box
TOWNS = 2_000
GROUP = 1_000_000  # footprints a row group


def write_footprints(path: Path, count: int, seed: int = 0) -> None:
    """`count` footprints around random towns (a few km across) as GeoParquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    towns = np.stack([rng.uniform(WEST, EAST, TOWNS), rng.uniform(SOUTH, NORTH, TOWNS)], axis=1)
    size = rng.pareto(1.2, TOWNS) + 1  # a few big cities, many villages
    meta = {
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Polygon"]}},
    }
    schema = pa.schema([("geometry", pa.binary())], metadata={"geo": json.dumps(meta)})
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for start in range(0, count, GROUP):
            n = min(GROUP, count - start)
            town = rng.choice(TOWNS, size=n, p=size / size.sum())
            spread = 0.005 * np.sqrt(size[town])  # degrees: bigger towns spread further
            lon = towns[town, 0] + rng.normal(0, 1, n) * spread
            lat = towns[town, 1] + rng.normal(0, 1, n) * spread
            w = rng.uniform(8, 30, n) / (111_320 * np.cos(np.radians(lat)))
            h = rng.uniform(8, 30, n) / 110_574
            wkb = shapely.to_wkb(shapely.box(lon, lat, lon + w, lat + h))
            writer.write_table(pa.table({"geometry": pa.array(wkb.tolist(), pa.binary())}, schema))


def bench_mask(footprints: int, zoom: int = 18, buffer_m: float = 150.0) -> dict[str, Any]:
    """Time and peak memory of building the mask's tiles from `footprints` footprints."""
    with tempfile.TemporaryDirectory(prefix="satx-bench-mask-") as tmp:
        path = Path(tmp) / "footprints.parquet"
        start = time.perf_counter()
        write_footprints(path, footprints)
        made = time.perf_counter() - start
        code = (
            "import sys; from satx.tiles.mask import mask_keys; "
            f"print(mask_keys(sys.argv[1], {zoom}, {buffer_m}).size)"
        )
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True
        )
        seconds = time.perf_counter() - start
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        size_mb = path.stat().st_size / 2**20
    tiles = int(done.stdout.split()[-1])
    return {
        "footprints": footprints,
        "file_mb": round(size_mb, 1),
        "zoom": zoom,
        "buffer_m": buffer_m,
        "tiles": tiles,
        "seconds": round(seconds, 1),
        "footprints_per_s": round(footprints / seconds),
        "peak_rss_mb": round(peak_kb / 1024),
        "setup_seconds": round(made, 1),
    }


def format_mask(r: dict[str, Any]) -> str:
    """The mask bench as plain text."""
    return (
        f"mask: {r['footprints']:,} footprints ({r['file_mb']} MB GeoParquet) -> {r['tiles']:,} "
        f"zoom-{r['zoom']} tiles within {r['buffer_m']:g} m\n"
        f"  {r['seconds']} s = {r['footprints_per_s']:,} footprints/s, peak memory "
        f"{r['peak_rss_mb']:,} MB (goal: 10 M footprints in under 2 minutes and 4 GB)"
    )
