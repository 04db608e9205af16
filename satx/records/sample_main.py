"""`python -m tools.make_sample_tiles --output=DIR`: the built-in synthetic sample tiles."""

from __future__ import annotations

from pathlib import Path

from satx.cli import entry_point
from satx.cli.flags import define

_OUTPUT = define(
    "string", "output", "Folder to write OUTPUT/<class>/*.jpg.", default="build/sample_tiles"
)
_COUNT = define("integer", "count", "How many tiles.", default=240)
_SCHOOL_FRACTION = define("float", "school_fraction", "Fraction of `school` tiles.", default=0.3)
_SIZE = define("integer", "size", "Tile side in pixels.", default=256)
_SEED = define("integer", "seed", "Random seed; the same seed draws the same tiles.", default=42)
_KNOWN_OUT = define(
    "string",
    "known_out",
    "Also write every other sample school as a GeoJSON point here (known schools for satx.sites).",
    default="",
)


def main(argv: list[str]) -> int:
    """Write the sample tiles."""
    from satx.errors import InputError
    from satx.records.sample import write_sample_tiles

    del argv
    if Path(_OUTPUT.value).exists() and not Path(_OUTPUT.value).is_dir():
        raise InputError(f"--output={_OUTPUT.value}: a file; name a folder for the sample tiles")
    paths = write_sample_tiles(
        _OUTPUT.value, _COUNT.value, _SCHOOL_FRACTION.value, _SEED.value, _SIZE.value
    )
    print(f"wrote {len(paths)} sample tiles to {_OUTPUT.value}")
    if _KNOWN_OUT.value:
        from satx.records.sample import write_known_schools

        n = write_known_schools(_KNOWN_OUT.value, _COUNT.value, _SCHOOL_FRACTION.value, _SEED.value)
        print(f"wrote {n} known schools to {_KNOWN_OUT.value}")
    return 0


entry = entry_point(main)


if __name__ == "__main__":
    entry()
