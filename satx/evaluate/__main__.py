"""`python -m satx.evaluate --model=EXPORT --records=DIR --split=test --output=DIR`."""

from __future__ import annotations

from satx.cli import flags as shared
from satx.cli import load_tensorflow, run
from satx.cli.flags import config_from_flags, define
from satx.config import EvaluateConfig

define("string", "model", "Export folder (or one version of it) or .keras.", EvaluateConfig)
define("string", "records", "Records folder holding the split.", EvaluateConfig)
define("string", "split", "Split to evaluate (a+b for a union).", EvaluateConfig)
define("string", "output", "Folder for report.json and report.md.", EvaluateConfig)
define(
    "string",
    "threshold",
    "Binary: a number, youden, topleft, precision@P, recall@R or budget@N (at most N hits per "
    "million tiles); modes are chosen on --threshold_split and applied to --split.",
    EvaluateConfig,
)
define(
    "string",
    "threshold_split",
    "Split a threshold mode is chosen on (when the records have it).",
    EvaluateConfig,
)
define("string", "scores_out", "CSV with one row per tile.", EvaluateConfig)
define("integer", "batch_size", "Tiles per model call (over all devices).", EvaluateConfig)


def main(argv: list[str]) -> int:
    """Evaluate and print the headline numbers."""
    load_tensorflow()
    from satx.evaluate.report import evaluate

    del argv
    config = config_from_flags(EvaluateConfig)
    report = evaluate(config)
    print(
        f"{report['count']} tiles: accuracy {report['accuracy']:.4f}, ROC AUC "
        f"{report['roc_auc']}, PR AUC {report['pr_auc']}, threshold {report['threshold']}"
    )
    print(f"report: {config.output}/report.json and report.md")
    return 0


def entry() -> None:
    """Console-script entry point."""
    run(main, shared.TTA)


if __name__ == "__main__":
    entry()
