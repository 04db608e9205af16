"""`python -m satx.predict --model=EXPORT --input=...|--bbox=W,S,E,N --zoom=18 --output=OUT`."""

from __future__ import annotations

import shlex
import sys

from absl import flags

from satx import flags as shared
from satx.cli import run

_MODEL = flags.DEFINE_string("model", None, "Export folder (or one version of it) or .keras.")
_INPUT = flags.DEFINE_string(
    "input", "", "Records folder, folder of tiles named z/x/y (or x-y-z, z_x_y), or a CSV list."
)
_OUTPUT = flags.DEFINE_string("output", None, "Output folder or gs:// prefix.")
_BBOX = flags.DEFINE_list("bbox", [], "W,S,E,N in degrees: score every tile of this box.")
_ZOOM = flags.DEFINE_integer("zoom", 0, "Zoom of --bbox (and of lon,lat CSV rows).")
_TILES = flags.DEFINE_string(
    "tiles", "", "Tile source template, e.g. DIR/{z}/{x}/{y}.jpg or gs://b/t/{z}/{x}/{y}.png."
)
_SPLIT = flags.DEFINE_string("split", "", "Records input: split(s) a+b; default every split.")
_FORMATS = flags.DEFINE_list("formats", ["geojson", "csv"], "Any of geojson, csv, jsonl.")
_MIN_SCORE = flags.DEFINE_float("min_score", 0.0, "Keep only tiles scoring at least this.")
_LIST_MISSING = flags.DEFINE_boolean(
    "list_missing", True, "List missing tiles in errors.csv (--nolist_missing: only count them)."
)
_THRESHOLD = flags.DEFINE_float("threshold", 0.5, "Binary: score at which the label flips.")
_POSITIVE = flags.DEFINE_string(
    "positive_class", "", "Class whose probability is the score (binary: the second class)."
)
_CLASS_NAMES = flags.DEFINE_list("class_names", [], "Class names of a bare .keras model.")
_BATCH = flags.DEFINE_integer("batch_size", 128, "Tiles per model call (over all devices).")
_CHUNK = flags.DEFINE_integer("chunk_size", 4096, "Tiles per resumable output chunk.")
_THREADS = flags.DEFINE_integer("read_threads", 16, "Threads reading tile files.")
_STRATEGY = flags.DEFINE_enum(
    "strategy", "auto", ["auto", "mirrored", "onedevice"], "Distribution strategy."
)
_CPU_DEVICES = flags.DEFINE_integer("cpu_devices", 0, "Split the CPU into N logical devices.")
_PRECISION = flags.DEFINE_enum(
    "mixed_precision", "auto", ["auto", "float16", "bfloat16", "off"], "Policy (.keras models)."
)
_PROJECT = flags.DEFINE_integer(
    "project_tiles", 50_800_000, "Print the time a run of this many tiles would take."
)


def main(argv: list[str]) -> int:
    """Predict, then print where the results are and the throughput."""
    from satx.errors import InputError
    from satx.predict import PredictConfig, predict

    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    try:
        bbox = tuple(float(v) for v in _BBOX.value)
    except ValueError as err:
        raise InputError(f"--bbox={','.join(_BBOX.value)}: expected four numbers W,S,E,N") from err
    config = PredictConfig(
        model=_MODEL.value or "",
        output=_OUTPUT.value or "",
        input=_INPUT.value,
        bbox=bbox,
        zoom=_ZOOM.value,
        tiles=_TILES.value,
        split=_SPLIT.value,
        formats=tuple(_FORMATS.value),
        min_score=_MIN_SCORE.value,
        list_missing=_LIST_MISSING.value,
        threshold=_THRESHOLD.value,
        positive_class=_POSITIVE.value,
        class_names=tuple(_CLASS_NAMES.value),
        batch_size=_BATCH.value,
        chunk_size=_CHUNK.value,
        read_threads=_THREADS.value,
        strategy=_STRATEGY.value,
        cpu_devices=_CPU_DEVICES.value,
        mixed_precision=_PRECISION.value,
        project_tiles=_PROJECT.value,
        overwrite=shared.OVERWRITE.value,
    )
    command = shlex.join(["python", "-m", "satx.predict", *sys.argv[1:]])
    s = predict(config, command=command)
    run_ = s["this_run"]
    print(
        f"{s['tiles']} tiles: {s['scored']} scored, {s['errors']} errors ({s['missing']} "
        f"missing), {s['kept']} written "
        f"(score >= {config.min_score})"
    )
    print(f"this run: {run_['tiles']} tiles in {run_['seconds']} s = {run_['tiles_per_s']} tiles/s")
    p = s["projection"]
    if p["human"]:
        print(f"projected for {p['tiles']:,} tiles on {p['devices']} device(s): {p['human']}")
    for kind, url in s["files"].items():
        print(f"{kind}: {url}")
    return 0


def entry() -> None:
    """Console-script entry point."""
    run(main, shared.OVERWRITE)


if __name__ == "__main__":
    entry()
