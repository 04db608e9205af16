"""`python -m satx.export --model=EXPORT --to=onnx,openvino,litert [--int8 --calibration=RECORDS]`.

Writes the same model for each runtime into EXPORT/<version>/runtimes/ and prints how each
compares with TensorFlow (rate, max score difference, ROC AUC, decisions flipped).
"""

from __future__ import annotations

from satx.cli import command_line, entry_point, load_tensorflow
from satx.cli.flags import config_from_flags, define_flags
from satx.config import ExportConfig

define_flags(ExportConfig)


def main(argv: list[str]) -> int:
    """Convert, check, and print the table."""
    load_tensorflow()
    from satx.artifact.conversion import export_runtimes
    from satx.artifact.report import format_table

    del argv
    config = config_from_flags(ExportConfig)
    print(format_table(export_runtimes(config, command_line("satx.export"))))
    return 0


entry = entry_point(main)


if __name__ == "__main__":
    entry()
