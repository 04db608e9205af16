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

import io
import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from satx.errors import InputError
from satx.io import csv_out, storage
from satx.io.targets import check_target
from satx.review.store import ReviewStore, tile_centre

log = logging.getLogger(__name__)

COLUMNS = ["z", "x", "y", "label", "reviewer", "decided_at", "score", "model_version", "site_id"]
UNRECOGNIZED_SUFFIX = ".unrecognized.geojson"


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
    """labels.csv text; every cell neutralised as OWASP advises for CSV injection (`csv_out`).

    Class names are checked when the review opens (`--negative_class=` a formula is refused),
    so labels stay what make_records reads back.
    """
    out = io.StringIO()
    writer = csv_out.writer(out)
    writer.writerow(COLUMNS)
    writer.writerows([r[k] for k in COLUMNS] for r in rows)
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


def _ours(path: Path) -> bool:
    """Whether an existing export target is a file an earlier export wrote (else: keep it)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 20)
        if path.suffix.lower() == ".csv":
            return head.split(b"\n", 1)[0].decode() == ",".join(COLUMNS)
        collection = json.loads(head)
    except (OSError, ValueError):
        return False
    features = collection.get("features") if isinstance(collection, dict) else None
    return collection.get("type") == "FeatureCollection" and isinstance(features, list)


def export_labels(store: ReviewStore, path: str) -> dict[str, Any]:
    """Write the labels file and the unrecognized layer (atomically); returns counts.

    Raises:
        InputError: a target exists and is not an export of satx.review (it is kept).
    """
    for target in (Path(path).expanduser(), unrecognized_path(path)):
        check_target(target, "--export")
        if target.exists() and not _ours(target):
            raise InputError(
                f"--export={path}: {target} exists and is not a satx.review export; "
                "choose another file (satx overwrites only its own exports)"
            )
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
