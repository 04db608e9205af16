"""`python -m tools.make_sample_tiles --output=DIR`: the built-in synthetic sample tiles."""

from __future__ import annotations

from absl import flags

from satx import flags as shared
from satx.cli import run

_OUTPUT = flags.DEFINE_string(
    "output", "build/sample_tiles", "Folder to write OUTPUT/<class>/*.jpg."
)
_COUNT = flags.DEFINE_integer("count", 240, "How many tiles.")
_SCHOOL_FRACTION = flags.DEFINE_float("school_fraction", 0.3, "Fraction of `school` tiles.")
_SIZE = flags.DEFINE_integer("size", 256, "Tile side in pixels.")


def main(argv: list[str]) -> int:
    """Write the sample tiles."""
    from satx.sample import write_sample_tiles

    del argv
    paths = write_sample_tiles(
        _OUTPUT.value, _COUNT.value, _SCHOOL_FRACTION.value, shared.SEED.value, _SIZE.value
    )
    print(f"wrote {len(paths)} sample tiles to {_OUTPUT.value}")
    return 0


def entry() -> None:
    """Console-script entry point."""
    run(main, shared.SEED)


if __name__ == "__main__":
    entry()
