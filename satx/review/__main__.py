"""`python -m satx.review --predictions=PRED --db=review.sqlite`: the mappers' page.

Tiles come from the predictions' own input files (or the source they were read from); give
`--tiles=SOURCE` where those are not at hand (records, a URL with a secret, another machine).

`python -m satx.review --db=review.sqlite --export=labels.csv` (or `.geojson`) writes the
decisions as the next training set's labels.
"""

from __future__ import annotations

from satx.cli import entry_point
from satx.cli.flags import config_from_flags, define_flags
from satx.config import ReviewConfig

define_flags(ReviewConfig)


def main(argv: list[str]) -> int:
    """Serve the review page, or export its labels."""
    from satx.review.run import export, serve

    del argv
    config = config_from_flags(ReviewConfig)
    if config.export:
        done = export(config)
        labels = ", ".join(f"{n} {label}" for label, n in sorted(done["labels"].items()))
        print(f"{done['rows']} labels ({labels or 'none yet'}) -> {done['path']}")
        print(f"{done['unrecognized']} unrecognized -> {done['unrecognized_path']}")
        return 0
    serve(config)
    return 0


entry = entry_point(main)


if __name__ == "__main__":
    entry()
