"""`python -m satx.review --predictions=PRED --tiles=SOURCE --db=review.sqlite`: the mappers' page.

`python -m satx.review --db=review.sqlite --export=labels.csv` (or `.geojson`) writes the
decisions as the next training set's labels.
"""

from __future__ import annotations

from satx.cli import flags as shared
from satx.cli import run
from satx.cli.flags import config_from_flags, define, source_config_from_flags
from satx.config import REVIEW_ORDERS, ReviewConfig

define(
    "string",
    "predictions",
    "A finished satx.predict output folder (or gs:// prefix).",
    ReviewConfig,
)
define("string", "db", "The review's SQLite file (created; reopened to continue).", ReviewConfig)
define("string", "host", "Address to listen on; off loopback a token is required.", ReviewConfig)
define("integer", "port", "Port to listen on (0: any free port, printed).", ReviewConfig)
define(
    "string",
    "token",
    "Required on every request (Authorization: Bearer, or the cookie /?token= sets); "
    "generated and printed when --host is not loopback and none is given.",
    ReviewConfig,
)
define(
    "enum",
    "order",
    "score: highest first (validate hits); uncertain: nearest the threshold first (active "
    "learning); random: an unbiased precision estimate.",
    ReviewConfig,
    enum_values=list(REVIEW_ORDERS),
)
define("float", "min_score", "Tiles scoring below this are not in the queue.", ReviewConfig)
define(
    "float",
    "threshold",
    "Score at which a tile counts as a hit (default: the predictions' threshold).",
    ReviewConfig,
)
define(
    "string",
    "positive_class",
    "The class mappers confirm (default: the predictions').",
    ReviewConfig,
)
define(
    "string",
    "negative_class",
    "Label of rejected tiles (default: the other class, or not_<positive>).",
    ReviewConfig,
)
define("string", "reviewer", "Your name on each decision (default: the OS user).", ReviewConfig)
define(
    "float", "lease_seconds", "How long a tile handed out stays with its reviewer.", ReviewConfig
)
define("string", "export", "Write the decisions to this .csv or .geojson and stop.", ReviewConfig)


def main(argv: list[str]) -> int:
    """Serve the review page, or export its labels."""
    from satx.review.run import export, serve

    del argv
    config = config_from_flags(ReviewConfig, source=source_config_from_flags())
    if config.export:
        done = export(config)
        labels = ", ".join(f"{n} {label}" for label, n in sorted(done["labels"].items()))
        print(f"{done['rows']} labels ({labels or 'none yet'}) -> {done['path']}")
        return 0
    serve(config)
    return 0


def entry() -> None:
    """Console-script entry point."""
    run(main, shared.SEED, *shared.SOURCE_FLAGS)


if __name__ == "__main__":
    entry()
