"""What an `--input` path lists, one spec per input kind: make_records and predict both ask here.

    InputKind("csv", "a tile CSV", _is_csv, labelled=_csv, rows=_csv_rows, names_files=True)

A spec says how the path is recognised (`matches`, tried in order; the folder kind last) and
how it is read: `labelled` as a `Listing` with labels (make_records, which also checks the
files rows name when `names_files`), `rows` unlabelled in listing order, a `TileRef` per tile
or a `Rejection` keeping a refused row's place (predict scores them in order, tiles without a
file from `--tiles`); None where a stage cannot use the kind. `zoom` places coordinates on
tiles. Adding a kind of input is one spec here (and its readers). A records folder is not a
listing of tiles (predict reads its TFRecords itself) and has no spec.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from satx.errors import InputError
from satx.io import storage
from satx.tiles.folders import read_folder
from satx.tiles.places import is_geojson, read_geojson
from satx.tiles.refs import Listing, Rejection, TileRef
from satx.tiles.tables import read_rows, read_table

Rows = list[TileRef | Rejection]


@dataclass(frozen=True)
class ReadOptions:
    """How to read an input: with labels (make_records) or without (predict)."""

    labelled: bool
    zoom: int = 0  # of coordinates (lon,lat rows, places); 0: none given
    label_property: str = "label"  # places' label
    polygon_mode: str = "cover"  # places' polygons: every tile they cover, or one
    context: int = 1  # places name windows of this side (their top-left tiles)


def _places(path: str, o: ReadOptions) -> Listing:
    if not Path(path).is_file():
        raise InputError(f"--input={path}: no such file")
    if not o.zoom:
        raise InputError(f"--input={path}: labelled places need --zoom (e.g. --zoom=18)")
    return read_geojson(path, o.zoom, o.label_property, o.polygon_mode, o.context)


def _csv(path: str, o: ReadOptions) -> Listing:
    return read_table(path, o.zoom, labels=True, context=o.context)


def _csv_rows(path: str, o: ReadOptions) -> Rows:
    return read_rows(path, o.zoom)


def _exists(path: str, what: str) -> None:
    if not storage.is_gcs(path) and not Path(path).expanduser().exists():
        raise InputError(f"{path}: no such {what}")


def _folder(path: str, o: ReadOptions) -> Listing:
    _exists(path, "file or folder")
    return read_folder(path, labelled=True)


def _folder_rows(path: str, o: ReadOptions) -> Rows:
    if not storage.is_gcs(path) and not Path(path).is_dir():
        raise InputError(f"--input={path}: no such folder or CSV file")
    return list(read_folder(path, labelled=False).refs)


@dataclass(frozen=True)
class InputKind:
    """One kind of `--input` (see the module docstring)."""

    name: str  # recorded in predict's input fingerprint: never renamed
    what: str
    matches: Callable[[str], bool]
    labelled: Callable[[str, ReadOptions], Listing] | None = None
    rows: Callable[[str, ReadOptions], Rows] | None = None
    names_files: bool = False  # its rows name files, which may not exist


def _is_csv(path: str) -> bool:
    return path.lower().endswith(".csv")


KINDS = (
    InputKind("places", "labelled places (GeoJSON)", is_geojson, labelled=_places),
    InputKind("csv", "a tile CSV", _is_csv, labelled=_csv, rows=_csv_rows, names_files=True),
    InputKind("folder", "a folder of tiles", lambda p: True, labelled=_folder, rows=_folder_rows),
)


def kind_of(path: str) -> InputKind:
    """The kind of input `path` is (the first spec that matches; a folder otherwise)."""
    return next(kind for kind in KINDS if kind.matches(path))


def labelled_input(path: str, options: ReadOptions) -> tuple[InputKind, Listing]:
    """make_records' listing of `path`, and its kind.

    Raises:
        InputError: the path is missing, unreadable or of a kind that carries no labels.
    """
    kind = kind_of(path)
    if kind.labelled is None:
        raise InputError(f"--input={path}: {kind.what} carries no labels for make_records")
    return kind, kind.labelled(path, options)


def input_rows(path: str, zoom: int) -> tuple[InputKind, Rows]:
    """Predict's rows of `path` in listing order, and its kind.

    Raises:
        InputError: the path is missing or unreadable, or predict cannot score its kind.
    """
    kind = kind_of(path)
    if kind.rows is None:
        raise InputError(
            f"--input={path}: predict does not score {kind.what}; list the tiles in a CSV "
            "(z,x,y or lon,lat with --zoom) or give the area with --aoi"
        )
    return kind, kind.rows(path, ReadOptions(labelled=False, zoom=zoom))
