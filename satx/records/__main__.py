"""`python -m tools.make_records` (or `python -m satx.records`): labelled tiles -> TFRecords.

Example (the README's sample data, a few seconds on 2 cores):
    python -m tools.make_records --input=build/sample_tiles --output=build/sample_records

From labelled places and a tile service:
    python -m tools.make_records --input=schools.geojson --label_property=label --zoom=18 \
        --tiles='https://tiles.example.com/{z}/{x}/{y}.jpg?access_token=${TOKEN}' --output=...
"""

from __future__ import annotations

from satx.cli import command_line, entry_point
from satx.cli.flags import config_from_flags, define_flags
from satx.config import RecordsConfig

define_flags(RecordsConfig)


def main(argv: list[str]) -> int:
    """Build the config from flags and run make_records."""
    del argv
    config = config_from_flags(RecordsConfig)
    command = command_line("tools.make_records")
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


entry = entry_point(main)


if __name__ == "__main__":
    entry()
