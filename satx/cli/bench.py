"""`python -m satx.bench input|records|train|predict|all [--data=DIR] [--json_out=FILE]`."""

from __future__ import annotations

import json
import sys

from absl import flags

from satx import flags as shared
from satx.cli import run

_DATA = flags.DEFINE_string("data", "", "Tile folder to measure on; default: generated tiles.")
_TILES = flags.DEFINE_integer("tiles", 4096, "Generated tiles (predict: at most --predict_tiles).")
_BACKBONE = flags.DEFINE_list("backbone", ["mobilenetv2", "xception"], "Backbones to measure.")
_BATCH = flags.DEFINE_integer("batch_size", 8, "train: batch size.")
_STEPS = flags.DEFINE_integer("steps", 5, "train: timed steps per measurement, at least.")
_TRAIN_SECONDS = flags.DEFINE_float(
    "train_seconds", 2.0, "train: each timed measurement lasts at least this long."
)
_PREDICT_BATCH = flags.DEFINE_integer("predict_batch_size", 32, "predict: batch size.")
_PREDICT_TILES = flags.DEFINE_integer("predict_tiles", 512, "predict: tiles scored per backbone.")
_REPEATS = flags.DEFINE_integer(
    "repeats", 3, "Alternating measurements behind each headline ratio (medians reported)."
)
_JSON = flags.DEFINE_string("json_out", None, "Write the results as JSON here.")
_RECORDS = flags.DEFINE_string("records", None, "tune_memory: records folder.")
_TRIALS = flags.DEFINE_integer("trials", 20, "tune_memory: trials in the search.")

USAGE = "usage: python -m satx.bench input|records|train|predict|all|tune_memory [--flags]"


def _tune_memory() -> dict:
    from satx.bench_train import bench_tune_memory

    if not _RECORDS.value:
        raise SystemExit("error: tune_memory needs --records=DIR")
    rows = {}
    for name in _BACKBONE.value:
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


def main(argv: list[str]) -> int:
    """Run the benchmark mode(s), print the tables, write the JSON."""
    from satx.bench import MODES, BenchSettings, format_report, run_bench

    if len(argv) != 2 or argv[1] not in (*MODES, "all", "tune_memory"):
        print(USAGE, file=sys.stderr)
        return 2
    if argv[1] == "tune_memory":
        result = _tune_memory()
    else:
        settings = BenchSettings(
            data=_DATA.value,
            image_size=shared.IMAGE_SIZE.value or 256,
            tiles=_TILES.value,
            backbones=tuple(_BACKBONE.value),
            batch_size=_BATCH.value,
            steps=_STEPS.value,
            train_seconds=_TRAIN_SECONDS.value,
            predict_batch_size=_PREDICT_BATCH.value,
            predict_tiles=_PREDICT_TILES.value,
            repeats=_REPEATS.value,
        )
        modes = MODES if argv[1] == "all" else (argv[1],)
        result = run_bench(modes, settings)
        print(format_report(result))
    if _JSON.value:
        with open(_JSON.value, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {_JSON.value}")
    return 0


def entry() -> None:
    """Console-script entry point."""
    run(main, shared.IMAGE_SIZE)


if __name__ == "__main__":
    entry()
