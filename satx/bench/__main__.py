"""`python -m satx.bench MODE [--flags]`: one benchmark mode (see USAGE).

input, records, train, predict, fetch, context and all share one set of tiles; tune_memory, quality,
sites, outputs and mask each run on inputs of their own.
"""

from __future__ import annotations

import sys

from satx.cli import entry_point, load_tensorflow, takes_arguments
from satx.cli.flags import config_from_flags, define_flags
from satx.config import BenchConfig

define_flags(BenchConfig)

USAGE = (
    "usage: python -m satx.bench "
    "input|records|train|predict|fetch|context|all|tune_memory|quality|straddle|sites|outputs|"
    "mask "
    "[--flags]"
)


@takes_arguments
def main(argv: list[str]) -> int:
    """Run the benchmark mode(s), print the tables, write the JSON."""
    load_tensorflow()
    from satx.bench.run import OWN_MODES, SHARED_MODES, run_mode

    if len(argv) != 2 or argv[1] not in (*SHARED_MODES, "all", *OWN_MODES):
        print(USAGE, file=sys.stderr)
        return 2
    config = config_from_flags(BenchConfig)
    result, text = run_mode(argv[1], config)
    print(text)
    if config.json_out:
        from satx.io.run_record import write_json

        write_json(config.json_out, result)
        print(f"wrote {config.json_out}")
    return 0


entry = entry_point(main)


if __name__ == "__main__":
    entry()
