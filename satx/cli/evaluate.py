"""`python -m satx.evaluate --model=EXPORT --records=DIR --split=test --output=DIR`."""

from __future__ import annotations

import sys

from absl import flags

from satx.cli import run

_MODEL = flags.DEFINE_string("model", None, "Export folder (or one version of it) or .keras.")
_RECORDS = flags.DEFINE_string("records", None, "Records folder holding the split.")
_SPLIT = flags.DEFINE_string("split", "test", "Split to evaluate (a+b for a union).")
_OUTPUT = flags.DEFINE_string("output", None, "Folder for report.json and report.md.")
_THRESHOLD = flags.DEFINE_string(
    "threshold", "0.5", "Binary: a number, youden, topleft, precision@P or recall@R."
)
_SCORES_OUT = flags.DEFINE_string("scores_out", None, "CSV with one row per tile.")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Tiles per model call.")


def main(argv: list[str]) -> int:
    """Evaluate and print the headline numbers."""
    from satx.evaluate import evaluate

    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    if not (_MODEL.value and _RECORDS.value and _OUTPUT.value):
        print("error: --model, --records and --output are required", file=sys.stderr)
        return 2
    report = evaluate(
        _MODEL.value,
        _RECORDS.value,
        _OUTPUT.value,
        split=_SPLIT.value,
        threshold=_THRESHOLD.value,
        scores_out=_SCORES_OUT.value,
        batch_size=_BATCH.value,
    )
    print(
        f"{report['count']} tiles: accuracy {report['accuracy']:.4f}, ROC AUC "
        f"{report['roc_auc']}, PR AUC {report['pr_auc']}, threshold {report['threshold']}"
    )
    print(f"report: {_OUTPUT.value}/report.json and report.md")
    return 0


def entry() -> None:
    """Console-script entry point."""
    run(main)


if __name__ == "__main__":
    entry()
