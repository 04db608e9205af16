"""What predict's output formats cost: `python -m satx.bench outputs --hits=1000000`.

Rows of synthetic scored tiles (zoom 18, chunks of 4,096 as predict writes them) are formatted
and written by predict's own code in each format, timed per format and compared with CSV and
with predict's rate (the writers run on the same cores as scoring). The score raster is then
assembled at Colombia's size (12,400 x 12,400 pixels at zoom 18) from chunk parts holding
`--hits` tiles: its time, peak memory of that step, and file size.
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import mercantile
import numpy as np

from satx.bench.table import Column, table

CHUNK = 4096
SIDE = 12_400  # Colombia's extent at zoom 18, in tiles
CLASSES = ("not_school", "school")


def _chunks(rows: int, seed: int = 0):
    """(tiles, labels, scores, probs) per chunk of synthetic rows over Colombia's box."""
    from satx.predict.outputs import Labeller
    from satx.tiles.refs import TileRef

    rng = np.random.default_rng(seed)
    origin = mercantile.tile(-79.0, 12.5, 18)
    labeller = Labeller.make(list(CLASSES), "school", 0.5)
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        x = rng.integers(0, SIDE, n) + origin.x
        y = rng.integers(0, SIDE, n) + origin.y
        tiles = [
            TileRef(f"18/{a}/{b}", mercantile.Tile(int(a), int(b), 18))
            for a, b in zip(x, y, strict=True)
        ]
        score = rng.uniform(0, 1, n)
        probs = np.stack([1 - score, score], axis=1)
        labels, scores = labeller.label_score(probs)
        yield tiles, labels, scores, probs


def bench_formats(rows: int) -> dict[str, Any]:
    """Seconds to format and write `rows` rows per format (predict's writer, a local folder)."""
    from satx.predict.formats import NAMES, ChunkRows, chunk_parts
    from satx.predict.outputs import PredictionOutput

    chunks = list(_chunks(rows))
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="satx-bench-outputs-") as tmp:
        for fmt in ("csv", *(n for n in NAMES if n != "csv")):
            out = PredictionOutput(str(Path(tmp) / fmt), (fmt,), CLASSES)
            start = time.perf_counter()
            for k, (tiles, labels, scores, probs) in enumerate(chunks):
                texts = chunk_parts(ChunkRows(tiles, labels, scores, probs, CLASSES), (fmt,))
                out.write_chunk(k, texts, "", {"kept": len(tiles)})
            seconds[fmt] = round(time.perf_counter() - start, 4)
    return {
        "rows": rows,
        "seconds": seconds,
        "us_per_row": {f: round(1e6 * s / rows, 2) for f, s in seconds.items()},
        "over_csv": {f: round(s / seconds["csv"], 3) for f, s in seconds.items()},
    }


def bench_raster(tiles: int) -> dict[str, Any]:
    """Assemble a Colombia-sized score COG from chunk parts holding `tiles` scored tiles."""
    import io

    from satx.io import storage
    from satx.predict import raster

    rng = np.random.default_rng(1)
    origin = mercantile.tile(-79.0, 12.5, 18)
    with tempfile.TemporaryDirectory(prefix="satx-bench-raster-") as tmp:
        store = storage.open_store(tmp)
        names = []
        corners = np.array([[0, 0], [SIDE - 1, SIDE - 1]])  # the full extent, whatever is drawn
        for k, start in enumerate(range(0, tiles, 1 << 20)):
            n = min(1 << 20, tiles - start)
            cells = rng.integers(0, SIDE, size=(n, 2))
            if k == 0:
                cells[:2] = corners
            buf = io.BytesIO()
            np.savez(
                buf,
                z=np.array(18),
                x=cells[:, 0] + origin.x,
                y=cells[:, 1] + origin.y,
                v=raster.encode(rng.uniform(0, 1, n)),
            )
            names.append(f"parts/{k:08d}.raster.npz")
            store.write_bytes(names[-1], buf.getvalue())
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        url = raster.write_raster(store, names)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        size = Path(url).stat().st_size
    return {
        "pixels": f"{SIDE} x {SIDE}",
        "tiles_scored": tiles,
        "seconds": round(seconds, 3),
        "cog_mb": round(size / 2**20, 1),
        "cog_bytes": size,
        "peak_rss_growth_mb": round((peak - before) / 1024),
    }


def format_outputs(r: dict[str, Any]) -> str:
    """The outputs bench as plain text."""
    f, g = r["formats"], r["raster"]
    columns = [
        Column("format", "format", 8, left=True),
        Column("seconds", "seconds", 8, ".2f"),
        Column("us/row", "us_per_row", 7, ".2f"),
        Column("x CSV", "over_csv", 6, ".2f"),
    ]
    rows = [
        {
            "format": fmt,
            "seconds": s,
            "us_per_row": f["us_per_row"][fmt],
            "over_csv": f["over_csv"][fmt],
        }
        for fmt, s in f["seconds"].items()
    ]
    return "\n".join(
        [
            f"output formats ({f['rows']:,} rows, predict's writers, chunks of {CHUNK}):",
            table(rows, columns),
            f"score raster {g['pixels']} px from {g['tiles_scored']:,} scored tiles: "
            f"{g['seconds']} s, COG {g['cog_mb']} MB, peak memory grew "
            f"{g['peak_rss_growth_mb']} MB",
        ]
    )
