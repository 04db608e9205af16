"""Grouping a country run's hits into sites: `python -m satx.bench sites --hits=1000000`.

Synthetic hits laid out like a country run at zoom 18 (over a Colombia-sized box of 12,400
tiles a side): campuses of 1-6 tiles around random centres, a few towns of hundreds of hits,
and isolated noise hits; scores in [0.5, 1] (4 decimals). They are written as a predictions
folder by predict's own output code (CSV, with every tile a row), with known schools on some
of the hit tiles. `satx.sites` then runs as its CLI in a child process: the rate is hits per
second of the whole command, the memory its peak resident set (the child's maximum RSS).
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

import mercantile
import numpy as np

from satx import geo

ZOOM = 18
SPAN = 12_400  # tiles a side: Colombia's extent at zoom 18
ORIGIN = mercantile.tile(-79.0, 12.5, ZOOM)
CHUNK = 65_536


def synthetic_hits(hits: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, score) of `hits` distinct tiles: ~60 % campuses, ~10 % towns, the rest noise.

    A campus is 1-6 distinct tiles of a 3x3 block around a random centre; a town hundreds of
    tiles scattered around its centre; noise single tiles anywhere. Tiles that two of them
    share count once; noise fills up to `hits`.
    """
    rng = np.random.default_rng(seed)
    campuses = max(1, int(hits * 0.6 / 3.5))
    offsets = np.array([(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)])
    pick = rng.permuted(np.tile(np.arange(9), (campuses, 1)), axis=1)  # distinct offsets
    keep = np.arange(9)[None, :] < rng.integers(1, 7, size=campuses)[:, None]
    centres = rng.integers(1, SPAN - 1, size=(campuses, 2))
    parts = [(centres[:, None, :] + offsets[pick])[keep]]
    towns = max(1, hits // 20_000)
    for centre in rng.integers(0, SPAN, size=(towns, 2)):
        spread = rng.normal(0, 12, size=(int(hits * 0.1 / towns), 2)).round().astype(np.int64)
        parts.append(centre + spread)
    parts.append(rng.integers(0, SPAN, size=(hits, 2)))  # noise: as much as may be needed
    cells = np.clip(np.concatenate(parts), 0, SPAN - 1)
    _, first = np.unique(cells, axis=0, return_index=True)
    cells = cells[np.sort(first)][:hits]  # campuses and towns first, noise fills up
    cells = cells[rng.permutation(len(cells))]
    score = rng.uniform(0.5, 1.0, len(cells)).round(4)
    return cells[:, 0] + ORIGIN.x, cells[:, 1] + ORIGIN.y, score


def write_predictions(folder: Path, x: np.ndarray, y: np.ndarray, score: np.ndarray) -> None:
    """A finished predictions folder (CSV) holding these tiles, in chunks as predict writes."""
    from satx.io import storage
    from satx.io.run_record import json_bytes
    from satx.predict.outputs import Labeller, PredictionOutput, format_rows
    from satx.predict.result import RUN_NAME, PredictRun
    from satx.tiles.refs import TileRef

    classes = ("not_school", "school")
    out = PredictionOutput(str(folder), ("csv",), classes)
    out.start({"bench": "sites", "tiles": int(x.size)}, overwrite=True)
    labeller = Labeller.make(list(classes), "school", 0.5)
    chunks = range(0, x.size, CHUNK)
    for k, start in enumerate(chunks):
        s = slice(start, start + CHUNK)
        tiles = [
            TileRef(f"{ZOOM}/{a}/{b}", mercantile.Tile(int(a), int(b), ZOOM))
            for a, b in zip(x[s], y[s], strict=True)
        ]
        probs = np.stack([1 - score[s], score[s]], axis=1)
        labels, scores = labeller.label_score(probs)
        out.write_chunk(k, format_rows(tiles, labels, scores, probs, classes, ("csv",)), "", {})
    run = PredictRun(
        tiles=int(x.size),
        scored=int(x.size),
        kept=int(x.size),
        files=out.merge(len(chunks), int(x.size)),
        class_names=classes,
        positive_class="school",
        threshold=0.5,
    )
    storage.open_store(str(folder)).write_bytes(RUN_NAME, json_bytes(run))


def write_known(path: Path, x: np.ndarray, y: np.ndarray, count: int, seed: int = 1) -> None:
    """`count` known schools: at random hit tiles, a little off their centres."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(x.size, size=min(count, x.size), replace=False)
    lon, lat = geo.grid_to_lonlat(ZOOM, x[pick] + rng.uniform(0, 1, pick.size), y[pick] + 0.5)
    rows = "".join(f"k{i},{a:.7f},{b:.7f}\n" for i, (a, b) in enumerate(zip(lon, lat, strict=True)))
    path.write_text("id,lon,lat\n" + rows)


def bench_sites(hits: int, known: int = 10_000, polygons: bool = True) -> dict[str, Any]:
    """Time and peak memory of `python -m satx.sites` over `hits` synthetic hits."""
    with tempfile.TemporaryDirectory(prefix="satx-bench-sites-") as tmp:
        work = Path(tmp)
        x, y, score = synthetic_hits(hits)
        start = time.perf_counter()
        write_predictions(work / "pred", x, y, score)
        write_known(work / "known.csv", x, y, known)
        made = time.perf_counter() - start
        args = [
            sys.executable,
            "-m",
            "satx.sites",
            f"--predictions={work / 'pred'}",
            f"--output={work / 'sites'}",
            f"--known={work / 'known.csv'}",
            f"--polygons={str(polygons).lower()}",
        ]
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        seconds = time.perf_counter() - start
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        report = json.loads((work / "sites" / "sites_report.json").read_text())
    return {
        "hits": int(x.size),
        "known": known,
        "sites": report["sites"],
        "biggest_site": report["biggest_site"],
        "recovered_share": report["known"]["recovered_share"],
        "curve_thresholds": len(report["curve"]),
        "seconds": round(seconds, 2),
        "hits_per_s": round(x.size / seconds),
        "stage_seconds": report["stage_seconds"],
        "peak_rss_mb": round(peak_kb / 1024),
        "polygons": polygons,
        "setup_seconds": round(made, 1),
    }


def format_sites(r: dict[str, Any]) -> str:
    """One sites run as plain text."""
    stages = ", ".join(f"{k} {v} s" for k, v in r["stage_seconds"].items())
    return (
        f"sites: {r['hits']:,} hits -> {r['sites']:,} sites (largest {r['biggest_site']:,} "
        f"tiles; {r['known']:,} known schools, {100 * r['recovered_share']:.1f} % recovered; "
        f"{r['curve_thresholds']} curve thresholds)\n"
        f"  satx.sites command: {r['seconds']} s = {r['hits_per_s']:,} hits/s, peak memory "
        f"{r['peak_rss_mb']:,} MB (goal: 1 M hits in under 60 s and 2 GB)\n"
        f"  stages: {stages}"
    )
