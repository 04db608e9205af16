"""`python -m tools.inspect_records PATH`: manifest summary, shard checks, example dump.

Exit code 0 when every shard matches the manifest, 1 when one does not, 2 for bad input.
"""

from __future__ import annotations

from absl import flags

from satx.cli import run

_EXAMPLES = flags.DEFINE_integer("examples", 3, "How many examples to print (0: none).")
_SPLIT = flags.DEFINE_string("split", None, "Split to take the examples from.")
_VERIFY = flags.DEFINE_boolean("verify", True, "Check every shard's sha256 and record count.")


def main(argv: list[str]) -> int:
    """Print the summary, verify shards, dump examples."""
    from satx import inspect
    from satx.records import describe_manifest

    if len(argv) != 2:
        print("usage: python -m tools.inspect_records RECORDS_FOLDER_OR_GS_PREFIX [--examples=N]")
        return 2
    root = argv[1]
    manifest = inspect.load_manifest(root)
    print(describe_manifest(manifest))
    bad = 0
    if _VERIFY.value:
        checks = inspect.verify(root)
        bad = sum(1 for c in checks if c.problem)
        for check in checks:
            if check.problem:
                print(f"BAD  {check.name}: {check.problem}")
        print(f"verified {len(checks)} shards: {len(checks) - bad} ok, {bad} bad")
    for example in inspect.first_examples(root, _EXAMPLES.value, _SPLIT.value):
        print("  " + inspect.describe_example(example))
    return 1 if bad else 0


def entry() -> None:
    """Console-script entry point."""
    run(main)


if __name__ == "__main__":
    entry()
