"""`python -m tools.make_records`: labelled tiles -> sharded TFRecords with geolocation.

Example (the README's sample data, ~1 minute on 2 cores):
    python -m tools.make_records --input=build/sample_tiles --output=build/sample_records
"""

from __future__ import annotations

import shlex
import sys

from absl import flags

from satx import flags as shared
from satx.cli import run

_INPUT = flags.DEFINE_string(
    "input", None, "Folder (ROOT/<class>/...), labels CSV, or gs:// prefix."
)
_OUTPUT = flags.DEFINE_string("output", None, "Output folder or gs://bucket/prefix.")
_SPLIT = flags.DEFINE_string(
    "split",
    "train:0.8,val:0.1,test:0.1",
    "Named split fractions (ignored when the input is split).",
)
_SPLIT_ZOOM = flags.DEFINE_integer(
    "split_zoom", 12, "Tiles sharing a parent tile at this zoom go to the same split."
)
_SHARD_SIZE_MB = flags.DEFINE_float("shard_size_mb", 100.0, "Target shard size in MB.")
_MIN_SHARDS = flags.DEFINE_integer("min_shards", 8, "At least this many shards per split.")
_ON_SIZE_MISMATCH = flags.DEFINE_enum(
    "on_size_mismatch", "reject", ["resize", "reject"], "What to do with tiles of another size."
)
_COMPRESSION = flags.DEFINE_enum("compression", "none", ["none", "gzip"], "Shard compression.")
_CLASSES = flags.DEFINE_list(
    "classes", [], "Class names in label-index order (default: sorted names found)."
)


def main(argv: list[str]) -> int:
    """Build the config from flags and run make_records."""
    from satx.config import RecordsConfig
    from satx.records import describe_manifest
    from satx.writer import make_records

    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    config = RecordsConfig(
        input=_INPUT.value or "",
        output=_OUTPUT.value or "",
        split=_SPLIT.value,
        split_zoom=_SPLIT_ZOOM.value,
        seed=shared.SEED.value,
        shard_size_mb=_SHARD_SIZE_MB.value,
        min_shards=_MIN_SHARDS.value,
        on_size_mismatch=_ON_SIZE_MISMATCH.value,
        image_size=shared.IMAGE_SIZE.value or 256,
        overwrite=shared.OVERWRITE.value,
        compression=_COMPRESSION.value,
        workers=shared.WORKERS.value,
        classes=tuple(_CLASSES.value),
    )
    manifest = make_records(
        config, command=shlex.join(["python", "-m", "tools.make_records", *sys.argv[1:]])
    )
    print(describe_manifest(manifest))
    print(f"wrote {config.output}/manifest.json")
    if manifest["quarantine"]["count"]:
        print(f"quarantine list: {config.output}/quarantine.jsonl")
    return 0


def entry() -> None:
    """Console-script entry point."""
    run(main, shared.SEED, shared.OVERWRITE, shared.WORKERS, shared.IMAGE_SIZE)


if __name__ == "__main__":
    entry()
