"""What the review page shows besides the tile: progress, precision, and the overview map."""

from __future__ import annotations

import json
import math
from typing import Any

from satx.io.progress import format_duration
from satx.review.store import DECISIONS, ReviewStore

RATE_WINDOW_S = 15 * 60  # the rate is measured over the last 15 minutes of decisions
COLOURS = {
    "pending": "#9aa0a6",
    "positive": "#1e8e3e",
    "negative": "#d93025",
    "unrecognized": "#9334e6",
    "skip": "#f9ab00",
}


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95 % by default)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _decision_rate(times: list[float], now: float) -> float:
    """Decisions per hour over the recent ones (0 with fewer than two)."""
    if len(times) < 2:
        return 0.0
    span = max(now - times[0], 1.0)
    return 3600.0 * len(times) / span


def stats(store: ReviewStore, min_score: float, now: float) -> dict[str, Any]:
    """Reviewed and remaining, rate and ETA, and the precision of the reviewed hits."""
    counts = store.counts(min_score)
    reviewed = sum(counts[s] for s in DECISIONS)
    rate = _decision_rate(store.recent_decision_times(now - RATE_WINDOW_S), now)
    eta = counts["pending"] / rate * 3600.0 if rate > 0 else float("nan")
    confirmed, checked = counts["hit_positive"], counts["hit_positive"] + counts["hit_negative"]
    low, high = wilson_interval(confirmed, checked)
    return {
        "reviewed": reviewed,
        "remaining": counts["pending"],
        "positive": counts["positive"],
        "negative": counts["negative"],
        "unrecognized": counts["unrecognized"],
        "skip": counts["skip"],
        "rate_per_hour": round(rate, 1),
        "eta_s": None if math.isnan(eta) else round(eta),
        "eta": format_duration(eta),
        "precision": {
            "value": confirmed / checked if checked else None,
            "low": low,
            "high": high,
            "hits_checked": checked,
        },
    }


def overview_svg(store: ReviewStore, min_score: float, current: dict[str, Any] | None) -> str:
    """An inline SVG of where the queue's tiles are, one square per cell, coloured by state.

    A cell takes the colour of its most telling state: confirmed, else rejected, else
    unrecognized, else skipped, else pending (grey). The current tile is ringed. Drawn here, so
    the page needs no map library and no network.
    """
    grid = store.meta().get("overview_grid")
    shape = json.loads(grid) if grid is not None else {"cols": 1, "rows": 1}
    cols, rows = shape["cols"], shape["rows"]
    cells: dict[tuple[int, int], dict[str, int]] = {}
    for r in store.overview_cells(min_score):
        cells.setdefault((r["cx"], r["cy"]), {})[r["state"]] = r["n"]
    size = 6
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {cols * size} {rows * size}" '
        f'width="{cols * size}" height="{rows * size}" role="img" aria-label="overview">',
        f'<rect width="{cols * size}" height="{rows * size}" fill="#f1f3f4"/>',
    ]
    for (cx, cy), by_state in sorted(cells.items()):
        state = next(s for s in (*DECISIONS, "pending") if s in by_state)
        title = ", ".join(f"{n} {s}" for s, n in sorted(by_state.items()))
        parts.append(
            f'<rect x="{cx * size}" y="{cy * size}" width="{size}" height="{size}" '
            f'fill="{COLOURS[state]}" class="cell-{state}"><title>{title}</title></rect>'
        )
    if current is not None and "cx" in current:
        x, y = current["cx"] * size + size / 2, current["cy"] * size + size / 2
        parts.append(
            f'<circle cx="{x}" cy="{y}" r="{size * 0.7:g}" fill="none" stroke="#1a73e8" '
            f'stroke-width="{size / 6:g}" class="current"><title>current tile</title></circle>'
        )
    parts.append("</svg>")
    return "\n".join(parts)
