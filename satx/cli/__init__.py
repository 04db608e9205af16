"""Command-line entry points. Flags live here, at the edge; library code takes config objects."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

EXIT_USER_ERROR = 2


def run(main: Callable[[list[str]], int | None]) -> None:
    """Run an absl `main`, turning `SatxError` into one clear line and exit code 2."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from absl import app
    from absl import logging as absl_logging

    from satx.errors import SatxError

    def guarded(argv: list[str]) -> int | None:
        absl_logging.use_python_logging()
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
        logging.getLogger("absl").setLevel(logging.WARNING)
        try:
            return main(argv)
        except SatxError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USER_ERROR

    app.run(guarded)
