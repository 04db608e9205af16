"""Predictions as GeoParquet 1.1: a file per chunk in `predictions.parquet/`, read as one table.

Each chunk's rows are written as `predictions.parquet/chunk-00000012.parquet` (atomically,
before the chunk's done marker), so the output is usable while the run goes on and no process
ever merges tens of millions of rows: pyarrow (`pyarrow.dataset.dataset(folder)`), GeoPandas
(`geopandas.read_parquet(folder)`) and DuckDB (`read_parquet('folder/*.parquet')`) read the
folder as one table. Temporary files start with a dot, which those readers skip.

Columns: source_id, z, x, y, quadkey, label, score, lon, lat, score_<class>..., `bbox` (a
struct of xmin, ymin, xmax, ymax: GeoParquet 1.1's bounding-box covering) and `geometry` (the
tile's polygon as WKB, counter-clockwise, in OGC:CRS84, the GeoParquet default); with scenes,
`coverage` (the tile's share of valid pixels) after `lat`. The `geo` key of each file's
metadata describes them. Rows of tiles named by path only have nulls.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from satx import geo
from satx.errors import InputError
from satx.io import storage
from satx.tiles.refs import TileRef

PARQUET_DIR = "predictions.parquet"

GEOPARQUET_VERSION = "1.1.0"


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as err:  # pragma: no cover - pyarrow comes with satx[geo] and [beam]
        raise InputError("--formats=parquet needs pyarrow: pip install 'satx[geo]'") from err
    return pyarrow


def geo_metadata(bbox: Sequence[float] | None, types: Sequence[str]) -> dict[str, Any]:
    """The `geo` metadata of a predictions file (GeoParquet 1.1)."""
    column: dict[str, Any] = {
        "encoding": "WKB",
        "geometry_types": list(types),
        "orientation": "counterclockwise",
        "covering": {
            "bbox": {
                "xmin": ["bbox", "xmin"],
                "ymin": ["bbox", "ymin"],
                "xmax": ["bbox", "xmax"],
                "ymax": ["bbox", "ymax"],
            }
        },
    }
    if bbox is not None:
        column["bbox"] = [float(v) for v in bbox]
    return {
        "version": GEOPARQUET_VERSION,
        "primary_column": "geometry",
        "columns": {"geometry": column},
    }


def _places(tiles: list[TileRef]) -> dict[str, np.ndarray]:
    """Addresses, quadkeys and corners of the tiles (zeros and None where a tile has none)."""
    n = len(tiles)
    addressed = np.array([t.tile is not None for t in tiles], dtype=bool)
    z, x, y = (
        np.array([getattr(t.tile, k) if t.tile else 0 for t in tiles], np.int64) for k in "zxy"
    )
    corners = {k: np.zeros(n) for k in ("west", "south", "east", "north")}
    quadkeys = np.full(n, None, dtype=object)
    for zoom in np.unique(z[addressed]).tolist():
        m = addressed & (z == zoom)
        corners["west"][m], corners["north"][m] = geo.grid_to_lonlat(zoom, x[m], y[m])
        corners["east"][m], corners["south"][m] = geo.grid_to_lonlat(zoom, x[m] + 1, y[m] + 1)
        quadkeys[m] = geo.quadkeys(zoom, x[m], y[m])
    return {"addressed": addressed, "z": z, "x": x, "y": y, "quadkey": quadkeys, **corners}


def chunk_bytes(
    tiles: list[TileRef],
    labels: list[str],
    scores: np.ndarray,
    probs: np.ndarray,
    class_names: tuple[str, ...],
    extra: dict[str, np.ndarray] | None = None,
) -> bytes:
    """One chunk's kept rows as a GeoParquet file (zstd-compressed).

    `extra`: the input's own columns (a scene's coverage), after `lat`; NaN is null.
    """
    pa = _pyarrow()
    p = _places(tiles)
    missing = ~p["addressed"]
    w, s, e, n = p["west"], p["south"], p["east"], p["north"]

    def column(values: Any, kind: Any, decimals: int | None = None) -> Any:
        if decimals is not None:
            values = np.round(np.asarray(values, np.float64), decimals)
        return pa.array(values, type=kind, mask=missing)

    table = {
        "source_id": pa.array([t.source_id for t in tiles], type=pa.string()),
        "z": column(p["z"], pa.int32()),
        "x": column(p["x"], pa.int64()),
        "y": column(p["y"], pa.int64()),
        "quadkey": pa.array(p["quadkey"].tolist(), type=pa.string()),
        "label": pa.array(labels, type=pa.string()),
        "score": pa.array(np.round(np.asarray(scores, np.float64), 6), type=pa.float64()),
        "lon": column((w + e) / 2, pa.float64(), 7),
        "lat": column((s + n) / 2, pa.float64(), 7),
    }
    for column_name, values in (extra or {}).items():
        if np.issubdtype(np.asarray(values).dtype, np.integer):  # a count (--context's windows)
            table[column_name] = pa.array(np.asarray(values, np.int64), type=pa.int64())
            continue
        shares = np.round(np.asarray(values, np.float64), 4)
        table[column_name] = pa.array(shares, type=pa.float64(), mask=np.isnan(shares))
    for k, name in enumerate(class_names):
        table[f"score_{name}"] = pa.array(np.round(probs[:, k], 6), type=pa.float64())
    table["bbox"] = pa.StructArray.from_arrays(
        [pa.array(v, type=pa.float64()) for v in (w, s, e, n)],
        names=["xmin", "ymin", "xmax", "ymax"],
        mask=pa.array(missing),
    )
    import shapely

    wkb = shapely.to_wkb(shapely.box(w, s, e, n)) if len(tiles) else np.zeros(0, object)
    table["geometry"] = pa.array(wkb.tolist(), type=pa.binary(), mask=missing)
    has = p["addressed"]
    bbox = [w[has].min(), s[has].min(), e[has].max(), n[has].max()] if has.any() else None
    metadata = geo_metadata(bbox, ["Polygon"] if has.any() else [])
    arrow = pa.table(table).replace_schema_metadata({"geo": json.dumps(metadata)})
    out = io.BytesIO()
    pa.parquet.write_table(arrow, out, compression="zstd")
    return out.getvalue()


def part_files(root: str) -> list[str]:
    """The finished chunk files of a predictions folder, in chunk order (temps left out)."""
    store = storage.open_store(root)
    return [
        name
        for name in store.list(PARQUET_DIR)
        if name.endswith(".parquet") and not name.rsplit("/", 1)[-1].startswith((".", "_"))
    ]


def iter_batches(root: str, columns: Sequence[str] | None = None) -> Iterator[Any]:
    """Every record batch of the folder's GeoParquet files, in chunk order."""
    pa = _pyarrow()
    store = storage.open_store(root)
    for name in part_files(root):
        with store.open(name) as f:
            reader = pa.parquet.ParquetFile(f)
            yield from reader.iter_batches(columns=list(columns) if columns else None)
