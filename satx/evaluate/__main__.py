"""`python -m satx.evaluate --model=EXPORT --records=DIR --split=test --output=DIR`."""

from __future__ import annotations

from satx.cli import command_line, entry_point, load_tensorflow
from satx.cli.flags import config_from_flags, define_flags
from satx.config import EvaluateConfig

define_flags(EvaluateConfig)


def main(argv: list[str]) -> int:
    """Evaluate and print the headline numbers."""
    load_tensorflow()
    from satx.evaluate.report import evaluate

    del argv
    config = config_from_flags(EvaluateConfig)
    r = evaluate(config, command_line("satx.evaluate"))
    print(
        f"{r.count} tiles: accuracy {r.accuracy:.4f}, ROC AUC {r.roc_auc}, PR AUC {r.pr_auc}, "
        f"threshold {r.threshold} (runtime {r.runtime})"
    )
    print(f"report: {config.output}/report.json and report.md")
    return 0


entry = entry_point(main)


if __name__ == "__main__":
    entry()
