"""`python -m satx.predict --model=EXPORT --input=...|--bbox=W,S,E,N --zoom=18 --output=OUT`."""

from __future__ import annotations

import shlex
import sys

from satx.cli import flags as shared
from satx.cli import load_tensorflow, run
from satx.cli.flags import config_from_flags, define, source_config_from_flags
from satx.config import PRECISIONS, PredictConfig

define("string", "model", "Export folder (or one version of it) or .keras.", PredictConfig)
define(
    "string",
    "input",
    "Records folder, folder of tiles named z/x/y (or x-y-z, z_x_y), or a CSV list.",
    PredictConfig,
)
define("string", "output", "Output folder or gs:// prefix.", PredictConfig)
_BBOX = define("list", "bbox", "W,S,E,N in degrees: score every tile of this box.", PredictConfig)
define(
    "string",
    "aoi",
    "GeoJSON of (Multi)Polygons (WGS84): score every tile of --zoom that overlaps them.",
    PredictConfig,
)
define(
    "boolean",
    "dry_run",
    "Print the exact tile count, the input and the projected time; fetch nothing.",
    PredictConfig,
)
define("string", "split", "Records input: split(s) a+b; default every split.", PredictConfig)
define("list", "formats", "Any of geojson, csv, jsonl.", PredictConfig)
define("float", "min_score", "Keep only tiles scoring at least this.", PredictConfig)
define(
    "boolean",
    "list_missing",
    "List missing tiles in errors.csv (--nolist_missing: only count them).",
    PredictConfig,
)
define("float", "threshold", "Binary: score at which the label flips.", PredictConfig)
define(
    "string",
    "threshold_from",
    "Binary: use the threshold an evaluate report.json chose (e.g. precision@0.9 on val).",
    PredictConfig,
)
define(
    "string",
    "positive_class",
    "Class whose probability is the score (binary: the second class).",
    PredictConfig,
)
define("list", "class_names", "Class names of a bare .keras model.", PredictConfig)
define("integer", "batch_size", "Tiles per model call (over all devices).", PredictConfig)
define("integer", "chunk_size", "Tiles per resumable output chunk.", PredictConfig)
define("integer", "read_threads", "Threads reading tile files.", PredictConfig)
define(
    "enum",
    "strategy",
    "Distribution strategy.",
    PredictConfig,
    enum_values=["auto", "mirrored", "onedevice"],
)
define("integer", "cpu_devices", "Split the CPU into N logical devices.", PredictConfig)
define(
    "enum",
    "mixed_precision",
    "Policy (.keras models).",
    PredictConfig,
    enum_values=list(PRECISIONS),
)
define(
    "integer",
    "project_tiles",
    "Print the time a run of this many tiles would take.",
    PredictConfig,
)


def _config() -> PredictConfig:
    from satx.errors import InputError

    try:
        bbox = tuple(float(v) for v in _BBOX.value)
    except ValueError as err:
        raise InputError(f"--bbox={','.join(_BBOX.value)}: expected four numbers W,S,E,N") from err
    return config_from_flags(PredictConfig, bbox=bbox, source=source_config_from_flags())


def main(argv: list[str]) -> int:
    """Predict, then print where the results are and the throughput."""
    load_tensorflow()
    from satx.io import secrets
    from satx.predict.run import dry_run, predict

    del argv
    config = _config()
    if config.dry_run:
        d = dry_run(config)
        where = config.aoi or (f"bbox {list(config.bbox)}" if config.bbox else config.input)
        zoom = f" at zoom {config.zoom}" if config.zoom else ""
        print(f"{d['tiles']:,} tiles{zoom}: {where}")
        if config.source.tiles:
            shown = d["input"].get("tiles") or secrets.redact_url(config.source.tiles)
            print(f"tile source: {shown}")
        print(
            f"model {d['model']}: {d['model_tiles_per_s']} tiles/s here on {d['devices']} "
            f"device(s), model alone -> {d['projected_human']} for these tiles, before reading "
            "and decoding (satx.bench predict measures those)"
        )
        return 0
    command = shlex.join(["python", "-m", "satx.predict", *sys.argv[1:]])
    if config.engine == "beam":
        from satx.predict.beam import predict_beam

        s = predict_beam(config, command=command)
    else:
        s = predict(config, command=command)
    run_ = s["this_run"]
    print(
        f"{s['tiles']} tiles: {s['scored']} scored, {s['errors']} errors ({s['missing']} "
        f"missing), {s['kept']} written (score >= {config.min_score})"
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
    run(main, shared.OVERWRITE, shared.ZOOM, shared.TTA, *shared.SOURCE_FLAGS, *shared.ENGINE_FLAGS)


if __name__ == "__main__":
    entry()
