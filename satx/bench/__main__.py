"""`python -m satx.bench input|records|train|predict|all [--data=DIR] [--json_out=FILE]`."""

from __future__ import annotations

import sys

from satx.cli import flags as shared
from satx.cli import load_tensorflow, run, takes_arguments
from satx.cli.flags import config_from_flags, define
from satx.config import BenchConfig

define("string", "data", "Tile folder to measure on; default: generated tiles.", BenchConfig)
define("integer", "num_tiles", "Generated tiles (predict: at most --predict_tiles).", BenchConfig)
_BACKBONE = define(
    "list", "backbone", "Backbones to measure; default every listed one.", BenchConfig, "backbones"
)
_BATCH = define("integer", "batch_size", "train: batch size.", BenchConfig)
_STEPS = define("integer", "steps", "train: timed steps per measurement, at least.", BenchConfig)
define(
    "float", "train_seconds", "train: each timed measurement lasts at least this long.", BenchConfig
)
define(
    "float",
    "input_seconds",
    "input: each timed measurement runs whole passes for at least this long.",
    BenchConfig,
)
define("integer", "predict_batch_size", "predict: batch size.", BenchConfig)
define("integer", "predict_tiles", "predict: tiles scored per backbone.", BenchConfig)
define("float", "fetch_latency_ms", "fetch: latency the tile server adds per request.", BenchConfig)
_FETCH_THREADS = define(
    "list", "fetch_thread_counts", "fetch: concurrent requests to measure with.", BenchConfig
)
define(
    "integer",
    "repeats",
    "Alternating measurements behind each headline ratio (medians reported).",
    BenchConfig,
)
_JSON = define("string", "json_out", "Write the results as JSON here.", default=None)
_RECORDS = define("string", "records", "tune_memory: records folder.", default=None)
_TRIALS = define("integer", "trials", "tune_memory: trials in the search.", default=20)
_RECIPE = define("string", "recipe", "quality: a recipe file (configs/*.json).", default=None)
_WORKDIR = define(
    "string", "workdir", "quality: keep records, runs and reports here.", default=None
)

USAGE = (
    "usage: python -m satx.bench input|records|train|predict|fetch|all|tune_memory|quality "
    "[--flags]"
)


def _tune_memory() -> dict:
    from satx.bench.train import bench_tune_memory
    from satx.errors import InputError

    if not _RECORDS.value:
        raise InputError("tune_memory needs --records=DIR")
    rows = {}
    for name in _BACKBONE.value or ["mobilenetv2"]:
        r = bench_tune_memory(
            _RECORDS.value,
            name,
            shared.IMAGE_SIZE.value or 64,
            _BATCH.value,
            _STEPS.value,
            _TRIALS.value,
        )
        print(
            f"{r['backbone']} {r['image_size']}px: {r['trials']} trials in {r['seconds']} s; "
            f"RSS MB after each trial: {r['rss_mb_per_trial']}; "
            f"{r['growth_mb_per_trial_after_settling']} MB/trial after settling"
        )
        rows[name] = r
    return {"tune_memory": rows}


def _quality() -> dict:
    import tempfile

    from satx.bench.quality import bench_quality, format_quality
    from satx.errors import InputError

    data = config_from_flags(BenchConfig, {"backbones": "backbone"}).data
    if not data or not _RECIPE.value:
        raise InputError("quality needs --data=DIR (class folders) and --recipe=FILE")
    workdir = _WORKDIR.value or tempfile.mkdtemp(prefix="satx-quality-")
    result = bench_quality(data, _RECIPE.value, workdir)
    print(format_quality(result))
    print(f"records, runs and reports: {workdir}")
    return {"quality": result}


@takes_arguments
def main(argv: list[str]) -> int:
    """Run the benchmark mode(s), print the tables, write the JSON."""
    load_tensorflow()
    from satx.bench.run import MODES, format_report, run_bench

    if len(argv) != 2 or argv[1] not in (*MODES, "all", "tune_memory", "quality"):
        print(USAGE, file=sys.stderr)
        return 2
    if argv[1] == "tune_memory":
        result = _tune_memory()
    elif argv[1] == "quality":
        result = _quality()
    else:
        settings = config_from_flags(
            BenchConfig,
            {"backbones": "backbone"},
            fetch_thread_counts=tuple(int(v) for v in _FETCH_THREADS.value),
        )
        modes = MODES if argv[1] == "all" else (argv[1],)
        result = run_bench(modes, settings)
        print(format_report(result))
    if _JSON.value:
        from satx.io.run_record import write_json

        write_json(_JSON.value, result)
        print(f"wrote {_JSON.value}")
    return 0


def entry() -> None:
    """Console-script entry point."""
    run(main, shared.IMAGE_SIZE, shared.ENGINE_FLAGS[0])


if __name__ == "__main__":
    entry()
