"""Fixed-width text tables for the bench's reports: columns declared once, rows as dicts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Column:
    """A column: its title, the row's key (or a function of the row), its width and format."""

    title: str
    key: str | Callable[[dict[str, Any]], Any]
    width: int = 0  # 0: as wide as the title
    spec: str = ""  # a format spec for the value, e.g. ".1f"
    left: bool = False  # left-aligned (names), else right-aligned (numbers)

    def pad(self, text: str) -> str:
        """`text` padded to the column's width."""
        width = self.width or len(self.title)
        return f"{text:<{width}}" if self.left else f"{text:>{width}}"

    def cell(self, row: dict[str, Any]) -> str:
        """The row's value, formatted and padded."""
        value = self.key(row) if callable(self.key) else row[self.key]
        return self.pad(format(value, self.spec))


def table(rows: Sequence[dict[str, Any]], columns: Sequence[Column], sep: str = " ") -> str:
    """The header line, then a line per row (the last column's cells are not padded)."""

    def line(cells: list[str]) -> str:
        return sep.join(cells).rstrip()

    head = line([c.pad(c.title) for c in columns])
    return "\n".join([head, *(line([c.cell(r) for c in columns]) for r in rows)])
