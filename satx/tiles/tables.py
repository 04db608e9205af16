"""A CSV that lists tiles: the one parser of `path`, `z,x,y` and `lon,lat` rows.

Columns (case-insensitive, any order): `path` (a file; relative paths are from the CSV's
folder, local or gs://), `z,x,y` (a tile address), `lon,lat` (WGS84 degrees, the tile at
`zoom` that holds the point; used when a row has no path), and for labelled lists `label` and
optionally `split`. A row's tile is its z,x,y, else its lon,lat, else what its path names
(`satx.geo.parse_tile_path`); a row without a path is read from the tile source by its tile.

Every row is validated here, once: integers and a valid address for z,x,y, numbers on the
web-mercator map for lon,lat, a label where one is needed, a split name of [a-z0-9_]+. A row
that fails becomes a `Rejection` (`bad_row`, `missing_label`) naming the file and line.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path, PurePosixPath

import mercantile

from satx import geo
from satx.errors import InputError
from satx.io import storage
from satx.tiles.refs import Listing, Rejection, TileRef
from satx.tiles.windows import window_of_point, window_of_tile

_SPLIT_NAME = re.compile(r"^[a-z0-9_]+$")


def _read_text(path: str) -> tuple[str, str]:
    """The CSV's text and the folder its relative paths start from."""
    try:
        if storage.is_gcs(path):
            folder, _, name = path.rpartition("/")
            return storage.open_store(folder).read_bytes(name).decode("utf-8-sig"), folder
        local = Path(path).expanduser()
        if not local.is_file():
            raise InputError(f"--input={path}: no such CSV file")
        return local.read_text(encoding="utf-8-sig"), str(local.parent.absolute())
    except UnicodeDecodeError as err:
        raise InputError(
            f"--input={path}: not UTF-8 text (byte {err.start} is {err.object[err.start]:#04x}); "
            "is it really a CSV? Save it as UTF-8"
        ) from None


def _check_header(columns: set[str], path: str, labels: bool) -> None:
    names_tiles = "path" in columns or {"z", "x", "y"} <= columns or {"lon", "lat"} <= columns
    if names_tiles and (not labels or "label" in columns):
        return
    wanted = "'label' and " if labels else ""
    optional = " (optional split)" if labels else ""
    raise InputError(
        f"{path}: needs a header with {wanted}'path', 'z,x,y' or 'lon,lat'{optional}; "
        f"found {sorted(columns)}"
    )


def _row_tile(
    row: dict[str, str], zoom: int, where: str, context: int = 1
) -> mercantile.Tile | None:
    """The tile a row names (see the module docstring); None when only a path without one.

    With `context` > 1, the top-left tile of the window around the row's point or tile
    (`satx.tiles.windows`).

    Raises:
        ValueError: the row's z,x,y or lon,lat are not a tile (the message says why).
        InputError: lon,lat without a zoom.
    """
    zxy = [row.get(k, "") for k in ("z", "x", "y")]
    path = row.get("path", "")
    if any(zxy):
        try:
            tile = geo.make_tile(*(int(v) for v in zxy))
        except ValueError:
            raise ValueError(f"z,x,y must be integers, got {','.join(zxy)}") from None
        if tile is None:
            raise ValueError(f"z,x,y = {','.join(zxy)} is not a valid tile address")
        return window_of_tile(tile, context).top_left if context > 1 else tile
    if not path and (row.get("lon") or row.get("lat")):
        if not zoom:
            raise InputError(f"{where}: a CSV of lon,lat needs --zoom (e.g. --zoom=18)")
        try:
            lon, lat = float(row.get("lon", "")), float(row.get("lat", ""))
        except ValueError:
            raise ValueError(
                f"lon,lat must be numbers, got {row.get('lon')},{row.get('lat')}"
            ) from None
        if not (-180 <= lon <= 180 and -geo.MAX_LAT <= lat <= geo.MAX_LAT):
            raise ValueError(f"lon,lat = {lon},{lat} is off the web-mercator map")
        if context > 1:
            return window_of_point(lon, lat, zoom, context).top_left
        return mercantile.tile(lon, lat, zoom)
    if path:
        return geo.parse_tile_path(path)
    raise ValueError("no path, z,x,y or lon,lat")


def _row(
    row: dict[str, str], where: str, base: str, zoom: int, labels: bool, context: int = 1
) -> TileRef | Rejection:
    path, label = row.get("path", ""), row.get("label", "")
    try:
        tile = _row_tile(row, zoom, where, context)
    except ValueError as err:
        return Rejection(where, label, "bad_row", f"{where}: {err}")
    if labels and not label:
        return Rejection(path or where, "", "missing_label", f"{where}: empty label")
    split = row.get("split") or None
    if labels and split is not None and not _SPLIT_NAME.match(split):
        raise InputError(f"{where}: split name {split!r} must match [a-z0-9_]+")
    if not path:
        assert tile is not None
        return TileRef(geo.tile_key(tile), tile, None, label, split, where)
    absolute = storage.is_gcs(path) or PurePosixPath(path).is_absolute()
    location = path if absolute else f"{base}/{path}"
    return TileRef(path, tile, location, label, split, where)


def read_rows(
    path: str, zoom: int = 0, labels: bool = False, context: int = 1
) -> list[TileRef | Rejection]:
    """Every data row of a tile CSV, in file order: a `TileRef`, or a `Rejection` saying why not.

    Args:
        path: a local or gs:// CSV.
        zoom: the zoom of lon,lat rows (0: such rows are an error).
        labels: a labelled list (make_records): `label` is required.
        context: rows without a path name the top-left tile of their window of this side.

    Raises:
        InputError: no such file, a header without the needed columns, no rows, lon,lat without
            a zoom, or a bad split name.
    """
    text, base = _read_text(path)
    reader = csv.DictReader(text.splitlines())
    try:
        columns = {(c or "").strip().lower() for c in reader.fieldnames or []}
        _check_header(columns, path, labels)
        rows: list[TileRef | Rejection] = []
        for line, raw in enumerate(reader, start=2):
            where = f"{path}:{line}"
            if None in raw:  # csv.DictReader's key for the fields beyond the header's
                detail = f"{where}: {len(raw[None])} more field(s) than the header has"
                rows.append(Rejection(where, raw.get("label") or "", "bad_row", detail))
                continue
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
            rows.append(_row(row, where, base, zoom, labels, context))
    except csv.Error as err:
        raise InputError(f"--input={path}: not a readable CSV ({err})") from None
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows


def read_table(path: str, zoom: int = 0, labels: bool = False, context: int = 1) -> Listing:
    """A tile CSV as a listing (`read_rows`, with the refused rows apart)."""
    rows = read_rows(path, zoom, labels, context)
    refs = tuple(r for r in rows if isinstance(r, TileRef))
    rejected = tuple(r for r in rows if isinstance(r, Rejection))
    return Listing("csv", refs, rejected)  # records call a list of places only `locations`
