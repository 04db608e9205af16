"""Tile fetching over HTTP: `python -m satx.bench fetch [--fetch_latency_ms=50]`.

The bench's tiles are laid out `{z}/{x}/{y}.jpg` and served by the loopback tile server
(`satx.bench.tileserver`, a real HTTP server in its own process) with no added latency and with
`--fetch_latency_ms` per request. Reported, as medians of `--repeats` alternating runs:
- per `--fetch_thread_counts`, tiles/s fetched through satx's HTTP source at 0 ms and at the
  added latency, and their ratio (concurrency should hide the latency: goal >= 0.8). N threads
  can never exceed N / latency tiles/s, so the ratio needs enough threads;
- tiles/s read from the same files in the folder, for reference;
- `satx.predict` over those tiles from the folder and over HTTP with the added latency (steady
  tiles/s after the first chunk, one exported model): goal HTTP >= 0.9x the folder.
Both ends share the machine's cores, so the server's own work is part of every HTTP figure.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path

import mercantile

from satx.bench.predict import export_untrained
from satx.bench.table import Column, table
from satx.bench.tileserver import TileServerProcess
from satx.config import BenchConfig, SourceConfig

log = logging.getLogger(__name__)

ORIGIN = mercantile.Tile(x=77128, y=127700, z=18)  # Bogota; tiles fill a block east and south
BLOCK_WIDTH = 64


def _xyz_layout(files: list[Path], root: Path) -> list[mercantile.Tile]:
    """Write the files as `root/{z}/{x}/{y}.jpg` over a block of zoom-18 tiles."""
    tiles = []
    for i, path in enumerate(files):
        t = mercantile.Tile(ORIGIN.x + i % BLOCK_WIDTH, ORIGIN.y + i // BLOCK_WIDTH, ORIGIN.z)
        target = root / str(t.z) / str(t.x) / f"{t.y}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
        tiles.append(t)
    return tiles


def _read_rate(config: SourceConfig, tiles: list[mercantile.Tile]) -> float:
    """Tiles/s of one source reading every tile (all must arrive)."""
    from satx.tiles.sources import open_source

    source = open_source(config)
    try:
        start = time.perf_counter()
        data, errors = source.read(tiles)
        seconds = time.perf_counter() - start
    finally:
        source.close()
    if errors:
        raise RuntimeError(
            f"fetch bench: {len(errors)} tiles failed, e.g. {next(iter(errors.values()))}"
        )
    return len(data) / seconds


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def _predict_rate(
    export: str, listing: Path, source: SourceConfig, out: Path, s: BenchConfig
) -> float:
    from satx.config import PredictConfig
    from satx.predict.outputs import PredictionOutput
    from satx.predict.run import predict

    chunk = max(s.predict_batch_size, 64)
    run = PredictConfig.make(
        model=export,
        output=str(out),
        input=str(listing),
        source=source,
        batch_size=s.predict_batch_size,
        chunk_size=chunk,
        formats=("csv",),
        overwrite=True,
    )
    summary = predict(run)
    stats = PredictionOutput(run.outputs.output, run.outputs.formats, ()).chunk_stats(
        -(-summary.tiles // chunk)
    )
    later = stats[1:] or stats
    return sum(c["tiles"] for c in later) / max(1e-9, sum(c["seconds"] for c in later))


def bench_fetch(files: list[Path], s: BenchConfig, backbone: str, image_size: int) -> dict:
    """Fetch rates at 0 ms and `s.fetch_latency_ms` per thread count; predict over HTTP.

    Predict runs over HTTP with the latency and the most threads, against the folder.
    """
    latency = s.fetch_latency_ms / 1000
    most = max(s.fetch_thread_counts)
    with tempfile.TemporaryDirectory(prefix="satx-bench-fetch-") as tmp:
        work = Path(tmp)
        tiles = _xyz_layout(files, work / "xyz")
        folder = SourceConfig(tiles=str(work / "xyz"), fetch_threads=most)
        rates: dict[str, list[float]] = {"folder": []}
        with (
            TileServerProcess(work / "xyz") as fast,
            TileServerProcess(work / "xyz", latency) as slow,
        ):
            for _ in range(s.repeats):
                rates["folder"].append(_read_rate(folder, tiles))
                for n in s.fetch_thread_counts:
                    for name, server in (("0ms", fast), ("latency", slow)):
                        config = SourceConfig(tiles=server.template, fetch_threads=n)
                        rates.setdefault(f"{name}_{n}", []).append(_read_rate(config, tiles))
            listing = work / "tiles.csv"
            scored = tiles[: s.predict_tiles]
            listing.write_text("z,x,y\n" + "".join(f"{t.z},{t.x},{t.y}\n" for t in scored))
            export = export_untrained(backbone, image_size, work)
            http = SourceConfig(tiles=slow.template, fetch_threads=most)
            predicted: dict[str, list[float]] = {"folder": [], "http": []}
            for _ in range(s.repeats):
                predicted["folder"].append(_predict_rate(export, listing, folder, work / "p", s))
                predicted["http"].append(_predict_rate(export, listing, http, work / "p", s))
    med = {k: _median(v) for k, v in rates.items()}
    pred = {k: _median(v) for k, v in predicted.items()}
    by_threads = {
        str(n): {
            "http_0ms_tiles_per_s": med[f"0ms_{n}"],
            "http_latency_tiles_per_s": med[f"latency_{n}"],
            "latency_over_0ms": round(med[f"latency_{n}"] / med[f"0ms_{n}"], 3),
            "cap_threads_over_latency": round(n / latency, 1) if latency else None,
        }
        for n in s.fetch_thread_counts
    }
    result = {
        "tiles": len(tiles),
        "latency_ms": s.fetch_latency_ms,
        "repeats": s.repeats,
        "folder_read_tiles_per_s": med["folder"],
        "by_threads": by_threads,
        "spreads": {k: [round(min(v), 1), round(max(v), 1)] for k, v in rates.items()},
        "predict_backbone": backbone,
        "predict_image_size": image_size,
        "predict_tiles": len(scored),
        "predict_fetch_threads": most,
        "predict_folder_tiles_per_s": pred["folder"],
        "predict_http_tiles_per_s": pred["http"],
        "predict_http_over_folder": round(pred["http"] / pred["folder"], 3),
    }
    log.info("fetch bench: %s", result)
    return result


def format_fetch(r: dict) -> str:
    """The fetch bench as plain text."""
    columns = [
        Column("threads", "threads", 9),
        Column("0 ms/s", "http_0ms_tiles_per_s", 8, ",.0f"),
        Column(f"{r['latency_ms']:.0f} ms/s", "http_latency_tiles_per_s", 9, ",.0f"),
        Column("ratio", "latency_over_0ms", 6, ".2f"),
        Column("threads/latency", lambda row: row["cap_threads_over_latency"] or 0, 15, ",.0f"),
    ]
    rows = [{"threads": n, **row} for n, row in r["by_threads"].items()]
    return "\n".join(
        [
            f"HTTP tile fetching ({r['tiles']} tiles from a loopback server in its own process; "
            f"medians of {r['repeats']}); folder read {r['folder_read_tiles_per_s']:,.0f} tiles/s",
            table(rows, columns),
            f"  predict ({r['predict_backbone']}, {r['predict_tiles']} tiles, steady, "
            f"{r['predict_fetch_threads']} threads, {r['latency_ms']:.0f} ms): folder "
            f"{r['predict_folder_tiles_per_s']:,.1f} tiles/s, HTTP "
            f"{r['predict_http_tiles_per_s']:,.1f} tiles/s = {r['predict_http_over_folder']:.2f}x",
        ]
    )
