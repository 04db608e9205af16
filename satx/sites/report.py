"""A sites run for people: report.md and curve.png (sites and known schools over thresholds)."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from satx.sites.result import CURVE_PNG, REPORT_MD, SitesRun


def curve_png(run: SitesRun) -> bytes:
    """Sites per million tiles (and known schools recovered) against the threshold."""
    t = [p.threshold for p in run.curve]
    fig, left = plt.subplots(figsize=(6, 4), dpi=100)
    left.plot(t, [p.sites_per_million for p in run.curve], "o-", color="#1a73e8")
    left.set_xlabel("threshold (score of a hit)")
    left.set_ylabel("sites per million tiles", color="#1a73e8")
    left.axvline(run.threshold, color="#5f6368", linestyle=":", label="chosen")
    if run.known is not None:
        right = left.twinx()
        share = [100 * (p.recovered_share or 0.0) for p in run.curve]
        right.plot(t, share, "s-", color="#1e8e3e")
        right.set_ylabel("known schools recovered (%)", color="#1e8e3e")
        right.set_ylim(0, 100)
    left.set_title("sites and known schools recovered by threshold")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def markdown(run: SitesRun) -> str:
    """report.md: the counts at the chosen threshold, then the curve."""
    lines = [
        "# Sites",
        "",
        f"Predictions `{run.predictions}` (class `{run.positive_class}`, zoom {run.zoom}): "
        f"{run.tiles_scored:,} tiles with a score.",
        "",
        f"- threshold {run.threshold:.4g} ({run.threshold_source})",
        f"- {run.hits:,} hit tiles -> **{run.sites:,} sites** "
        f"({run.sites_per_million:,.1f} per million tiles; the largest has {run.biggest_site} "
        f"tile{'' if run.biggest_site == 1 else 's'})",
        f"- grouping: {run.connectivity}-connected, gaps of up to {run.max_gap} tiles bridged",
    ]
    if run.known is not None:
        k = run.known
        lines += [
            f"- known schools (`{k.file}`, {k.schools:,}): **{k.recovered:,} recovered "
            f"({100 * k.recovered_share:.1f} %)** within {k.radius_m:g} m of a site; "
            f"{k.known_sites:,} sites are known, **{k.new_sites:,} new**",
        ]
    lines += ["", f"![sites by threshold]({CURVE_PNG})", "", _curve_table(run), ""]
    return "\n".join(lines)


def _curve_table(run: SitesRun) -> str:
    head = ["threshold", "hits", "sites", "sites per million"]
    if run.known is not None:
        head += ["known sites", "new sites", "recovered", "recovered %"]
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for p in run.curve:
        cells: list[Any] = [f"{p.threshold:.4g}", f"{p.hits:,}", f"{p.sites:,}"]
        cells.append(f"{p.sites_per_million:,.1f}")
        if run.known is not None:
            share = "" if p.recovered_share is None else f"{100 * p.recovered_share:.1f}"
            cells += [f"{p.known_sites:,}", f"{p.new_sites:,}", f"{p.recovered:,}", share]
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(rows)


def write_report(out: Any, run: SitesRun) -> None:
    """Write report.md and curve.png into the sites store (atomically)."""
    out.write_bytes(CURVE_PNG, curve_png(run))
    out.write_bytes(REPORT_MD, markdown(run).encode())
