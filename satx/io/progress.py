"""Progress lines for long jobs: count, rate, ETA while running, and a summary at the end."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


def format_duration(seconds: float) -> str:
    """`1:02:03` style duration; `?` when unknown."""
    if seconds != seconds or seconds == float("inf"):  # NaN or inf
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Throttled progress reporting for a job of known size.

    Call `update(done)` as often as you like with the absolute count; a line is logged at most
    every `every_s` seconds, and `finish()` logs the summary.
    """

    def __init__(self, job: str, total: int, unit: str = "tiles", every_s: float = 2.0):
        self.job, self.total, self.unit, self.every_s = job, total, unit, every_s
        self.start = time.monotonic()
        self.done = 0
        self._last_report = 0.0

    @property
    def elapsed(self) -> float:
        """Seconds since the job started."""
        return time.monotonic() - self.start

    @property
    def rate(self) -> float:
        """Items per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def line(self) -> str:
        """One human-readable progress line."""
        pct = 100.0 * self.done / self.total if self.total else 100.0
        eta = (self.total - self.done) / self.rate if self.rate > 0 else float("nan")
        return (
            f"{self.job}: {self.done}/{self.total} {self.unit} ({pct:.1f}%), "
            f"{self.rate:.0f} {self.unit}/s, elapsed {format_duration(self.elapsed)}, "
            f"ETA {format_duration(eta)}"
        )

    def update(self, done: int) -> None:
        """Record the absolute count and log a line if enough time has passed."""
        self.done = done
        now = time.monotonic()
        if now - self._last_report >= self.every_s:
            self._last_report = now
            log.info(self.line())

    def finish(self) -> str:
        """Log and return the closing line."""
        line = (
            f"{self.job}: done, {self.done} {self.unit} in {format_duration(self.elapsed)} "
            f"({self.rate:.0f} {self.unit}/s)"
        )
        log.info(line)
        return line
