"""absl flags shared by several CLIs, defined once (absl refuses a flag defined twice)."""

from absl import flags

SEED = flags.DEFINE_integer("seed", 42, "Random seed; same inputs and seed give the same output.")
OVERWRITE = flags.DEFINE_boolean(
    "overwrite", False, "Replace a complete (or foreign partial) output instead of refusing."
)
WORKERS = flags.DEFINE_integer("workers", 0, "Worker processes; 0 means one per CPU core.")
IMAGE_SIZE = flags.DEFINE_integer(
    "image_size",
    None,
    "Tile side in pixels (make_records: stored size, default 256; "
    "train: model input, default the backbone's).",
)
