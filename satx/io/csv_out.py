"""CSV that a spreadsheet opens as data: no cell starts a formula, no value splits a row.

Two things turn a CSV cell into an attack (OWASP, "CSV injection"):

- a text cell starting with `= + - @`, a tab or a carriage return is a formula to Excel and
  LibreOffice; such a cell gets a leading `'` (numbers, `-74.1` included, are left alone);
- Python's writer quotes only the characters of its line terminator, so with a newline a
  value holding a carriage return was written bare: `ok<CR>=cmd|' /C calc'!A0` split the row
  and put `=cmd...` unprefixed in column A. Such a row is quoted as if the terminator were
  CR LF.

Every CSV satx writes for people (predictions, errors, evaluation scores, the leaderboard,
review labels) goes through `writer`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() == text


def neutral(value: Any) -> Any:
    """A cell value that no spreadsheet runs: a formula-like text gets a leading `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _number(value):
        return "'" + value
    return value


class SafeWriter:
    """`csv.writer` with LF lines, neutral cells, and carriage returns always quoted."""

    def __init__(self, out: TextIO):
        self.out = out
        self._plain = csv.writer(out, lineterminator="\n")

    def writerow(self, row: Iterable[Any]) -> None:
        """Write one row (cells neutralised)."""
        cells = [neutral(v) for v in row]
        if any(isinstance(v, str) and "\r" in v for v in cells):
            text = io.StringIO()
            csv.writer(text, lineterminator="\r\n").writerow(cells)  # quotes \r and \n
            self.out.write(text.getvalue()[:-2] + "\n")
        else:
            self._plain.writerow(cells)

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write every row."""
        for row in rows:
            self.writerow(row)


def writer(out: TextIO) -> SafeWriter:
    """A `SafeWriter` on `out`."""
    return SafeWriter(out)
