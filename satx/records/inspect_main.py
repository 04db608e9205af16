"""`python -m tools.inspect_records PATH`: manifest summary, shard checks, example dump.

Exit code 0 when every shard matches the manifest, 1 when one does not, 2 for bad input.
"""

from __future__ import annotations

import sys

from satx.cli import entry_point, takes_arguments
from satx.cli.flags import define

_EXAMPLES = define("integer", "examples", "How many examples to print (0: none).", default=3)
_SPLIT = define("string", "split", "Split to take the examples from.", default=None)
_VERIFY = define(
    "boolean", "verify", "Check every shard's sha256, records and checksums.", default=True
)


@takes_arguments
def main(argv: list[str]) -> int:
    """Print the summary, verify shards, dump examples."""
    from satx.records import verify
    from satx.records.manifest import load_manifest

    if len(argv) != 2:
        print(
            "usage: python -m tools.inspect_records RECORDS_FOLDER_OR_GS_PREFIX [--examples=N]",
            file=sys.stderr,
        )
        return 2
    root = argv[1]
    print(load_manifest(root).describe())
    bad = 0
    if _VERIFY.value:
        checks = verify.verify(root)
        bad = sum(1 for c in checks if c.problem)
        for check in checks:
            if check.problem:
                print(f"BAD  {check.name}: {check.problem}")
        print(f"verified {len(checks)} shards: {len(checks) - bad} ok, {bad} bad")
    for example in verify.first_examples(root, _EXAMPLES.value, _SPLIT.value):
        print("  " + verify.describe_example(example))
    return 1 if bad else 0


entry = entry_point(main)


if __name__ == "__main__":
    entry()
