"""Windows and points: `python -m satx.bench context` (issue 39).

The bench's tiles are laid out as a square block of zoom-18 tiles in a folder; predict scores
the block's inner `--predict_tiles` (a ring of neighbours around them, so every window is
whole) three ways, in alternating runs (medians of `--repeats`):
- `tiles`: `--context=1`, the rate of single tiles;
- `windows`: `--context=2`: tiles/s, and the windows scored a second (4 per tile in a big
  area; a chunk also scores the windows over its edge, so more per tile in small chunks);
- `cam`: `--context=1 --localize=cam --threshold=0`, every tile a hit: the cost of a point
  per hit, which a run pays only for its hits.

Rates are steady (chunks after the first). The model is the first backbone, untrained, at its
own input size (or `--image_size` with `--data`), as in the fetch bench.
"""

from __future__ import annotations

import logging
import math
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import mercantile

from satx.bench.fetch import ORIGIN
from satx.bench.predict import export_untrained
from satx.bench.table import Column, table
from satx.config import BenchConfig, SourceConfig
from satx.models import backbones

log = logging.getLogger(__name__)

RUNS: dict[str, dict[str, Any]] = {
    "tiles": {"context": 1},
    "windows": {"context": 2},
    "cam": {"context": 1, "localize": "cam", "threshold": 0.0},
}


def _block(files: list[Path], root: Path, side: int) -> tuple[float, ...]:
    """The files as a side x side block of zoom-18 tiles; returns the inner tiles' bbox."""
    for k in range(side * side):
        t = mercantile.Tile(ORIGIN.x + k % side, ORIGIN.y + k // side, ORIGIN.z)
        target = root / str(t.z) / str(t.x) / f"{t.y}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(files[k % len(files)].read_bytes())
    west, north = mercantile.ul(ORIGIN.x + 1, ORIGIN.y + 1, ORIGIN.z)
    east, south = mercantile.ul(ORIGIN.x + side - 1, ORIGIN.y + side - 1, ORIGIN.z)
    inset = 1e-7  # inside the edges: not the ring's tiles
    return west + inset, south + inset, east - inset, north - inset


def _run(export: str, bbox: tuple, folder: str, out: Path, s: BenchConfig, chunk: int, **kw):
    """Steady tiles/s of one predict run, and the windows its chunks scored."""
    from satx.config import PredictConfig
    from satx.predict.inputs import open_input
    from satx.predict.outputs import PredictionOutput
    from satx.predict.run import predict
    from satx.predict.windows import plan_windows

    run = PredictConfig.make(
        model=export,
        output=str(out),
        bbox=bbox,
        zoom=ORIGIN.z,
        source=SourceConfig(tiles=folder),
        batch_size=s.predict_batch_size,
        chunk_size=chunk,
        formats=("csv",),
        **kw,
    )
    summary = predict(run)
    stats = PredictionOutput(str(out), ("csv",), ()).chunk_stats(-(-summary.tiles // chunk))
    later = stats[1:] or stats
    rate = sum(c["tiles"] for c in later) / max(1e-9, sum(c["seconds"] for c in later))
    windows = reads = 0
    if kw.get("context", 1) > 1:
        area = open_input(run.inputs)
        try:
            for k in range(len(stats)):
                tiles = area.area.tiles(k * chunk, (k + 1) * chunk)  # type: ignore[attr-defined]
                plan = plan_windows(area.area, tiles, kw["context"])  # type: ignore[attr-defined]
                windows, reads = windows + len(plan.windows), reads + len(plan.cells)
        finally:
            area.close()
    return rate, summary.tiles, windows, reads


def bench_context(files: list[Path], s: BenchConfig, backbone: str, image_size: int) -> dict:
    """Predict's tiles/s with --context=1, --context=2 and --localize=cam (see the docstring)."""
    inner = max(2, math.isqrt(s.predict_tiles))
    chunk = max(s.predict_batch_size, inner * inner // 4)
    with tempfile.TemporaryDirectory(prefix="satx-bench-context-") as tmp:
        work = Path(tmp)
        bbox = _block(files, work / "xyz", inner + 2)
        folder = str(work / "xyz" / "{z}/{x}/{y}.jpg")
        export = export_untrained(backbone, image_size, work)
        rates: dict[str, list[float]] = {name: [] for name in RUNS}
        shape: dict[str, tuple[int, int, int]] = {}
        for repeat in range(s.repeats):
            for name, kw in RUNS.items():  # a new output each time: never a resumed run
                out = work / f"{name}-{repeat}"
                rate, tiles, windows, reads = _run(export, bbox, folder, out, s, chunk, **kw)
                shutil.rmtree(out)
                rates[name].append(rate)
                shape[name] = (tiles, windows, reads)
    median = {k: statistics.median(v) for k, v in rates.items()}
    tiles, windows, reads = shape["windows"]
    per_tile = windows / max(1, tiles)
    cam_seconds = 1 / median["cam"] - 1 / median["tiles"]  # a point, per hit
    rows = [
        {
            "run": name,
            "tiles_per_s": round(median[name], 1),
            "spread": [round(min(rates[name]), 1), round(max(rates[name]), 1)],
            "over_tiles": round(median[name] / median["tiles"], 3),
        }
        for name in RUNS
    ]
    result = {
        "backbone": backbone,
        "image_size": image_size or backbones.get_spec(backbone).image_size,
        "tiles": tiles,
        "chunk_size": chunk,
        "repeats": s.repeats,
        "rows": rows,
        "windows_per_tile": round(per_tile, 3),
        "reads_per_tile": round(reads / max(1, tiles), 3),
        "windows_per_s": round(median["windows"] * per_tile, 1),
        "cam_ms_per_hit": round(1000 * cam_seconds, 2),
        "cam_hits_per_s": round(1 / cam_seconds, 1) if cam_seconds > 0 else None,
    }
    log.info("context bench: %s", result)
    return result


def format_context(r: dict) -> str:
    """The context bench as plain text."""
    columns = [
        Column("run", "run", 8, left=True),
        Column("tiles/s", "tiles_per_s", 9, ",.1f"),
        Column("x tiles", "over_tiles", 8, ".2f"),
        Column("[min, max]", lambda row: f"  {row['spread']}", left=True),
    ]
    cam = r["cam_hits_per_s"]
    return "\n".join(
        [
            f"predict over an area ({r['backbone']}, {r['tiles']} tiles, chunks of "
            f"{r['chunk_size']}; medians of {r['repeats']}):",
            table(r["rows"], columns),
            f"--context=2: {r['windows_per_s']:,.1f} windows/s ({r['windows_per_tile']} windows "
            f"and {r['reads_per_tile']} tile reads per tile scored); --localize=cam: "
            f"{r['cam_ms_per_hit']} ms a hit"
            + (f" ({cam:,.1f} hits/s)" if cam else " (within the noise)"),
        ]
    )
