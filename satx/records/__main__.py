"""`python -m tools.make_records` (or `python -m satx.records`): labelled tiles -> TFRecords.

Example (the README's sample data, a few seconds on 2 cores):
    python -m tools.make_records --input=build/sample_tiles --output=build/sample_records

From labelled places and a tile service:
    python -m tools.make_records --input=schools.geojson --label_property=label --zoom=18 \
        --tiles='https://tiles.example.com/{z}/{x}/{y}.jpg?access_token=${TOKEN}' --output=...
"""

from __future__ import annotations

import shlex
import sys

from satx.cli import flags as shared
from satx.cli import run
from satx.cli.flags import config_from_flags, define, source_config_from_flags
from satx.config import COMPRESSIONS, POLYGON_MODES, SIZE_MISMATCH_MODES, RecordsConfig

define(
    "string",
    "input",
    "Folder (ROOT/<class>/...), labels CSV (path,label), gs:// prefix, or labelled places: "
    "GeoJSON, or a CSV of lon,lat,label or z,x,y,label (with --zoom and --tiles).",
    RecordsConfig,
)
define(
    "string", "label_property", "GeoJSON: the feature property holding the label.", RecordsConfig
)
define(
    "enum",
    "polygon_mode",
    "GeoJSON polygons: every tile they overlap (cover), or their centroid's tile.",
    RecordsConfig,
    enum_values=list(POLYGON_MODES),
)
define("string", "output", "Output folder or gs://bucket/prefix.", RecordsConfig)
define("string", "split", "Named split fractions (ignored when the input is split).", RecordsConfig)
define(
    "integer",
    "split_zoom",
    "Tiles sharing a parent tile at this zoom go to the same split.",
    RecordsConfig,
)
define("float", "shard_size_mb", "Target shard size in MB.", RecordsConfig)
define("integer", "min_shards", "At least this many shards per split.", RecordsConfig)
define(
    "enum",
    "on_size_mismatch",
    "What to do with tiles of another size.",
    RecordsConfig,
    enum_values=list(SIZE_MISMATCH_MODES),
)
define("enum", "compression", "Shard compression.", RecordsConfig, enum_values=list(COMPRESSIONS))
define(
    "list",
    "classes",
    "Class names in label-index order (default: sorted names found).",
    RecordsConfig,
)


def main(argv: list[str]) -> int:
    """Build the config from flags and run make_records."""
    del argv
    config = config_from_flags(RecordsConfig, source=source_config_from_flags())
    command = shlex.join(["python", "-m", "tools.make_records", *sys.argv[1:]])
    if config.engine == "beam":
        from satx.records.beam import make_records_beam

        manifest = make_records_beam(config, command=command)
    else:
        from satx.records.make import make_records

        manifest = make_records(config, command=command)
    print(manifest.describe())
    print(f"wrote {config.output}/manifest.json")
    if manifest.quarantine.count:
        print(f"quarantine list: {config.output}/{manifest.quarantine.file}")
    return 0


def entry() -> None:
    """Console-script entry point."""
    run(
        main,
        shared.SEED,
        shared.OVERWRITE,
        shared.WORKERS,
        shared.IMAGE_SIZE,
        shared.ZOOM,
        *shared.SOURCE_FLAGS,
        *shared.ENGINE_FLAGS,
    )


if __name__ == "__main__":
    entry()
