"""Decisions -> the next training set's labels (`--export=labels.csv` or `.geojson`).

A confirmed tile gets the positive class name and a rejected one the negative class name (a
hard negative: the model called it positive); skips are not rows. A confirmed or rejected site
gives every one of its tiles that label (`site_id` says which site). Both files are places
inputs of make_records: `python -m tools.make_records --input=labels.csv --tiles=SOURCE` (a
GeoJSON's points are tile centres, so it also needs `--zoom`, the tiles' zoom).

`unrecognized` answers (the mapper could not tell) are never labels: they go to
`<export>.unrecognized.geojson` beside it, one point per site or tile, the field-check layer.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from satx.errors import InputError
from satx.io import storage
from satx.review.store import ReviewStore, tile_centre

log = logging.getLogger(__name__)

COLUMNS = ["z", "x", "y", "label", "reviewer", "decided_at", "score", "model_version", "site_id"]
UNRECOGNIZED_SUFFIX = ".unrecognized.geojson"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FREE_TEXT = ("reviewer", "model_version", "site_id")


def _cell(value: Any) -> Any:
    """A text cell a spreadsheet shows as text: one that would start a formula gets a `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def _label_rows(store: ReviewStore) -> list[dict[str, Any]]:
    """One row per tile of each live positive or negative decision, in the order made."""
    meta = store.meta()
    if not meta:
        raise InputError(f"--db={store.path}: holds no review (no predictions were loaded)")
    names = {"positive": meta["positive_class"], "negative": meta["negative_class"]}
    rows = []
    for r in store.live_decisions():
        if r["decision"] not in names:
            continue
        common = {
            "label": names[r["decision"]],
            "reviewer": r["reviewer"],
            "decided_at": _iso(r["decided_at"]),
            "model_version": r["model_version"],
            "site_id": r["site_id"] or "",
        }
        members = store.site_members(r["tile_id"]) if r["site_id"] else []
        tiles = [(m["z"], m["x"], m["y"], m["score"]) for m in members]
        for z, x, y, score in tiles or [(r["z"], r["x"], r["y"], r["score"])]:
            rows.append({"z": z, "x": x, "y": y, **common, "score": round(score, 6)})
    return [{k: row[k] for k in COLUMNS} for row in rows]


def _unrecognized(store: ReviewStore) -> tuple[str, int]:
    """The field-check layer's GeoJSON text and how many points it has.

    A point per unrecognized site (its point) or tile (its centre).
    """
    features = []
    for r in store.live_decisions():
        if r["decision"] != "unrecognized":
            continue
        if r["site_id"]:
            lon, lat = r["site_lon"], r["site_lat"]
        else:
            lon, lat = tile_centre(r["z"], r["x"], r["y"])
        props = {
            "site_id": r["site_id"] or "",
            "z": r["z"],
            "x": r["x"],
            "y": r["y"],
            "tiles": r["site_tiles"] or 1,
            "score": round(r["score"], 6),
            "known": None if r["known"] is None else bool(r["known"]),
            "reviewer": r["reviewer"],
            "decided_at": _iso(r["decided_at"]),
        }
        geometry = {"type": "Point", "coordinates": [lon, lat]}
        features.append({"type": "Feature", "geometry": geometry, "properties": props})
    text = json.dumps({"type": "FeatureCollection", "features": features}, indent=1) + "\n"
    return text, len(features)


def _to_csv(rows: list[dict[str, Any]]) -> str:
    """labels.csv text; free-text cells are neutralised as OWASP advises for CSV injection.

    Labels are class names, which make_records reads back; they are left as they are.
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _cell(v) if k in FREE_TEXT else v for k, v in r.items()} for r in rows)
    return out.getvalue()


def _to_geojson(rows: list[dict[str, Any]]) -> str:
    """labels.geojson text: a point at each tile's centre, the row as its properties."""
    features = []
    for row in rows:
        lon, lat = tile_centre(row["z"], row["x"], row["y"])
        geometry = {"type": "Point", "coordinates": [lon, lat]}
        features.append({"type": "Feature", "geometry": geometry, "properties": row})
    return json.dumps({"type": "FeatureCollection", "features": features}, indent=1) + "\n"


def unrecognized_path(path: str) -> Path:
    """Where the field-check layer of an export goes: beside it."""
    p = Path(path).expanduser()
    return p.with_name(p.name[: -len(p.suffix)] + UNRECOGNIZED_SUFFIX)


def export_labels(store: ReviewStore, path: str) -> dict[str, Any]:
    """Write the labels file and the unrecognized layer (atomically); returns counts."""
    rows = _label_rows(store)
    text = _to_geojson(rows) if path.lower().endswith(".geojson") else _to_csv(rows)
    storage.atomic_write_local(Path(path).expanduser(), text.encode())
    field_check, unrecognized = _unrecognized(store)
    storage.atomic_write_local(unrecognized_path(path), field_check.encode())
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["label"]] = counts.get(row["label"], 0) + 1
    log.info("wrote %d labels to %s: %s", len(rows), path, counts)
    return {
        "path": path,
        "rows": len(rows),
        "labels": counts,
        "unrecognized": unrecognized,
        "unrecognized_path": str(unrecognized_path(path)),
    }
