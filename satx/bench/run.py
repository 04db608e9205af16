"""Run benchmark modes on one set of tiles: `run_bench(modes, config)`, and the report.

    python -m satx.bench all                       # generated 256x256 tiles, a few minutes
    python -m satx.bench fetch --fetch_latency_ms=50  # HTTP tile fetching, loopback server
    python -m satx.bench fetch --tiles=SCENE          # tiles cut from a COG (`mosaic`: made)
    python -m satx.bench context                      # --context=2 and --localize=cam's cost
    python -m satx.bench all --data=../shared/data/eurosat --image_size=64 --json_out=b.json

Every mode returns one JSON object (rates in tiles/s or images/s, ratios computed from those
rates). The tiles are generated (default) or a folder (`--data`); make_records turns them into
records once, and every mode measures the same tiles.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from satx.bench import input as bench_input
from satx.bench.context import bench_context, format_context
from satx.bench.engines import (
    bench_predict_engines,
    bench_records_engines,
    engine_runs,
    format_engines,
)
from satx.bench.fetch import bench_fetch, format_fetch
from satx.bench.predict import bench_predict, export_untrained, format_predict_table
from satx.bench.records import bench_records, records_ratio
from satx.bench.scenes import bench_scene_fetch, format_scene_fetch
from satx.bench.train import bench_train, format_table
from satx.config import BenchConfig
from satx.errors import InputError
from satx.io.run_record import versions
from satx.models import backbones

log = logging.getLogger(__name__)

MODES = ("input", "records", "train", "predict", "fetch")  # what `all` runs
SHARED_MODES = (*MODES, "context")  # on the same tiles; `context` only when asked
OWN_MODES = ("tune_memory", "quality", "straddle", "sites", "outputs", "mask")  # own inputs


def backbone_names(config: BenchConfig) -> tuple[str, ...]:
    """The backbones to measure: the config's, else every listed one of the registry."""
    names = config.backbones or tuple(backbones.list_backbones(listed_only=True))
    for name in names:
        backbones.get_spec(name)
    return names


def _model_size(backbone: str, image_size: int) -> int:
    return max(image_size, backbones.get_spec(backbone).min_image_size)


def _train_rows(records: str, s: BenchConfig) -> dict[str, dict]:
    return {
        name: bench_train(
            records,
            name,
            _model_size(name, s.image_size),
            s.batch_size,
            s.steps,
            repeats=s.repeats,
            min_seconds=s.train_seconds,
        )
        for name in backbone_names(s)
    }


def _predict_rows(folder: str, s: BenchConfig, work: Path) -> dict[str, dict]:
    listing = work / "predict_tiles.csv"
    files = bench_input.tile_files(folder)[: s.predict_tiles]
    listing.write_text("path\n" + "".join(f"{p.absolute()}\n" for p in files))
    return {
        name: bench_predict(
            name,
            str(listing),
            0 if not s.data else _model_size(name, s.image_size),
            batch_size=s.predict_batch_size,
        )
        for name in backbone_names(s)
    }


def _runtime_rows(folder: str, records: str, s: BenchConfig, work: Path) -> dict[str, Any]:
    from satx.bench.runtimes import bench_runtimes, bench_trained

    listing = work / "predict_tiles.csv"
    files = bench_input.tile_files(folder)[: s.predict_tiles]
    listing.write_text("path\n" + "".join(f"{p.absolute()}\n" for p in files))
    rows = {
        name: bench_runtimes(
            name,
            str(listing),
            records,
            0 if not s.data else _model_size(name, s.image_size),
            s,
            work,
        )
        for name in backbone_names(s)
    }
    return {"backbones": rows, "trained": bench_trained(s, work) if s.model else None}


def _engine_rows(
    out: dict, modes: tuple[str, ...], folder: str, s: BenchConfig, work: Path
) -> None:
    """Beam vs the local engine for the records and predict modes (first backbone)."""
    with engine_runs(s.dask_scheduler) as runs:
        if "records" in modes:
            out["records_engines"] = bench_records_engines(folder, s.image_size, s.repeats, runs)
        if "predict" in modes:
            name = backbone_names(s)[0]
            size = 0 if not s.data else _model_size(name, s.image_size)
            export = export_untrained(name, size, work / "engines")
            listing = work / "predict_tiles.csv"  # written by the predict mode
            out["predict_engines"] = {
                "backbone": name,
                **bench_predict_engines(
                    export,
                    str(listing),
                    s.predict_batch_size,
                    4 * s.predict_batch_size,
                    s.repeats,
                    runs,
                ),
            }


def run_bench(modes: tuple[str, ...], s: BenchConfig) -> dict[str, Any]:
    """Run the modes on one set of tiles; returns `{mode: results, "settings": ...}`."""
    unknown = set(modes) - set(SHARED_MODES)
    if unknown:
        raise InputError(
            f"unknown bench mode(s) {sorted(unknown)}; choose from {SHARED_MODES} or all"
        )
    out: dict[str, Any] = {
        "settings": {**s.to_dict(), "backbones": list(backbone_names(s))},
        "versions": versions(),
    }
    with tempfile.TemporaryDirectory(prefix="satx-bench-") as tmp:
        work = Path(tmp)
        folder = s.data
        if not folder:
            folder = str(work / "tiles")
            bench_input.generate_tiles(Path(folder), s.num_tiles, s.image_size)
        elif not Path(folder).is_dir():
            raise InputError(f"--data={folder}: no such folder")
        records = str(work / "records")
        runtimes = "predict" in modes and set(s.runtimes) != {"tf"}
        if {"input", "records", "train"} & set(modes) or runtimes:  # predict reads tile files
            made = bench_records(folder, records, s.image_size)
        if "input" in modes or "records" in modes:
            encoded = bench_input.encoded_tiles(folder)
        if "input" in modes:
            out["input"] = bench_input.bench_input(
                folder, records, s.image_size, encoded, s.repeats, s.input_seconds
            )
        if "records" in modes:
            limit = (
                out["input"]
                if "input" in modes
                else bench_input.decode_limit(
                    [
                        bench_input.single_thread_decode_rate(encoded, s.input_seconds)
                        for _ in range(s.repeats)
                    ]
                )
            )
            out["records"] = records_ratio(made, limit)
        if "train" in modes:
            out["train"] = _train_rows(records, s)
        if runtimes:
            out["runtimes"] = _runtime_rows(folder, records, s, work)
        elif "predict" in modes:
            out["predict"] = _predict_rows(folder, s, work)
        if s.engine == "beam":
            _engine_rows(out, modes, folder, s, work)
        if "fetch" in modes:
            name = backbone_names(s)[0]
            size = 0 if not s.data else _model_size(name, s.image_size)
            files = bench_input.tile_files(folder)
            if s.scene:
                out["scene_fetch"] = bench_scene_fetch(files, s, name, size)
            else:
                out["fetch"] = bench_fetch(files, s, name, size)
        if "context" in modes:
            name = backbone_names(s)[0]
            size = 0 if not s.data else _model_size(name, s.image_size)
            out["context"] = bench_context(bench_input.tile_files(folder), s, name, size)
    return out


def run_mode(mode: str, s: BenchConfig) -> tuple[dict[str, Any], str]:
    """One `python -m satx.bench MODE` run: its JSON result and the text to print."""
    if mode == "tune_memory":
        return _tune_memory(s)
    if mode == "quality":
        return _quality(s)
    if mode == "straddle":
        return _straddle(s)
    if mode == "mask":
        from satx.bench.mask import bench_mask, format_mask

        result = bench_mask(s.hits)
        return {"mask": result, "versions": versions()}, format_mask(result)
    if mode == "outputs":
        from satx.bench.outputs import bench_formats, bench_raster, format_outputs

        result = {"formats": bench_formats(s.hits), "raster": bench_raster(s.hits)}
        return {"outputs": result, "versions": versions()}, format_outputs(result)
    if mode == "sites":
        from satx.bench.sites import bench_sites, format_sites

        result = bench_sites(s.hits, s.known_schools)
        return {"sites": result, "versions": versions()}, format_sites(result)
    result = run_bench(MODES if mode == "all" else (mode,), s)
    return result, format_report(result)


def _tune_memory(s: BenchConfig) -> tuple[dict[str, Any], str]:
    from satx.bench.train import bench_tune_memory

    if not s.records:
        raise InputError("tune_memory needs --records=DIR")
    rows, lines = {}, []
    for name in s.backbones or ("mobilenetv2",):
        r = bench_tune_memory(s.records, name, s.image_size, s.batch_size, s.steps, s.trials)
        lines.append(
            f"{r['backbone']} {r['image_size']}px: {r['trials']} trials in {r['seconds']} s; "
            f"RSS MB after each trial: {r['rss_mb_per_trial']}; "
            f"{r['growth_mb_per_trial_after_settling']} MB/trial after settling"
        )
        rows[name] = r
    return {"tune_memory": rows}, "\n".join(lines)


def _straddle(s: BenchConfig) -> tuple[dict[str, Any], str]:
    from satx.bench.straddle import bench_straddle, format_straddle

    if not s.data or not s.recipe:
        raise InputError("straddle needs --data=DIR (EuroSAT's class folders) and --recipe=FILE")
    workdir = s.workdir or tempfile.mkdtemp(prefix="satx-straddle-")
    result = bench_straddle(s.data, s.recipe, workdir)
    text = f"{format_straddle(result)}\nmap, records, runs and reports: {workdir}"
    return {"straddle": result, "versions": versions()}, text


def _quality(s: BenchConfig) -> tuple[dict[str, Any], str]:
    from satx.bench.quality import bench_quality, format_quality

    if not s.data or not s.recipe:
        raise InputError("quality needs --data=DIR (class folders) and --recipe=FILE")
    workdir = s.workdir or tempfile.mkdtemp(prefix="satx-quality-")
    result = bench_quality(s.data, s.recipe, workdir, s.train_share)
    text = f"{format_quality(result)}\nrecords, runs and reports: {workdir}"
    return {"quality": result}, text


def format_report(result: dict[str, Any]) -> str:
    """Plain-text tables of every mode in a run_bench result."""
    parts = []
    if "input" in result:
        r = result["input"]
        parts.append(
            "input pipeline (tiles/s; decode limit = single-thread decode x cores; medians of "
            f"{r['repeats']} alternating runs, [min, max]):\n"
            f"  decode limit {r['decode_limit_tiles_per_s']:,.0f} "
            f"({r['decode_single_thread_tiles_per_s']:,.0f} "
            f"{r['decode_single_thread_spread']} x {r['cores']} cores)\n"
            f"  satx streaming {r['satx_tiles_per_s']:,.0f} {r['satx_spread']} "
            f"({r['satx_over_decode_limit']:.2f}x the limit, "
            f"{r['satx_over_keras_directory']:.1f}x Keras)\n"
            f"  satx warm cache {r['satx_warm_cache_tiles_per_s']:,.0f} "
            f"{r['satx_warm_cache_spread']} "
            f"({r['warm_cache_over_decode_limit']:.1f}x the limit, "
            f"{r['warm_cache_over_tf_gather']:.2f}x the copy ceiling)\n"
            f"  copy ceiling {r['copy_tf_gather_tiles_per_s']:,.0f} "
            f"{r['copy_tf_gather_spread']} (tf.gather into batches, "
            f"{r['tf_gather_over_decode_limit']:.1f}x the decode limit)\n"
            f"  memory bound: numpy gathers into batches past the CPU caches "
            f"{r['copy_numpy_gather_tiles_per_s']:,.0f} ({r['copy_numpy_gather_gb_per_s']} GB/s; "
            f"the warm cache runs at {r['warm_cache_over_numpy_gather']:.2f}x), plain memcpy "
            f"{r['copy_memcpy_tiles_per_s']:,.0f} ({r['copy_memcpy_gb_per_s']} GB/s)\n"
            f"  keras image_dataset_from_directory + augmentation "
            f"{r['keras_directory_tiles_per_s']:,.0f}"
        )
    if "records" in result:
        r = result["records"]
        parts.append(
            f"make_records: {r['tiles']} tiles in {r['seconds']} s = "
            f"{r['make_records_tiles_per_s']:,.0f} tiles/s "
            f"({r['make_records_over_decode_limit']:.2f}x the decode limit "
            f"{r['decode_limit_tiles_per_s']:,.0f}); re-encoded {r['changed']}; the whole "
            f"command {r['cli_seconds']} s = {r['make_records_cli_tiles_per_s']:,.0f} tiles/s\n"
            f"  plan {r['plan_seconds']} s (start-up, discovery, hashing), write "
            f"{r['write_seconds']} s = {r['make_records_write_tiles_per_s']:,.0f} tiles/s "
            f"({r['make_records_write_over_decode_limit']:.2f}x the limit)"
        )
    if "train" in result:
        parts.append("training (images/s):\n" + format_table(list(result["train"].values())))
    if "predict" in result:
        parts.append(
            "prediction (tiles/s):\n" + format_predict_table(list(result["predict"].values()))
        )
    if "runtimes" in result:
        from satx.bench.runtimes import format_runtimes

        parts.append("inference runtimes:\n" + format_runtimes(result["runtimes"]))
    if "fetch" in result:
        parts.append(format_fetch(result["fetch"]))
    if "scene_fetch" in result:
        parts.append(format_scene_fetch(result["scene_fetch"]))
    if "context" in result:
        parts.append(format_context(result["context"]))
    if "records_engines" in result:
        parts.append(format_engines("make_records: Beam vs local", result["records_engines"]))
    if "predict_engines" in result:
        r = result["predict_engines"]
        parts.append(format_engines(f"predict ({r['backbone']}): Beam vs local", r))
    return "\n\n".join(parts)
