"""Command-line entry points. Flags live here, at the edge; library code takes config objects."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from absl import flags

EXIT_USER_ERROR = 2


def _show_in_help(main: Callable, shared: tuple[flags.FlagHolder, ...]) -> None:
    # absl's --help lists the key flags of the module named by sys.argv[0]; our flags live in
    # satx.cli.* behind thin tools/ wrappers and console scripts, so register them there.
    own = flags.FLAGS.get_flags_for_module(main.__module__)
    for flag in [*own, *(flags.FLAGS[h.name] for h in shared)]:
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)


def run(main: Callable[[list[str]], int | None], *shared: flags.FlagHolder) -> None:
    """Run an absl `main`, turning `SatxError` into one clear line and exit code 2.

    Args:
        main: the absl main function of a CLI module.
        *shared: flags from `satx.flags` this CLI uses (shown in its --help).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from absl import app
    from absl import logging as absl_logging

    _show_in_help(main, shared)

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
