"""Predict's output formats, one spec each: a chunk's part, its name, the merge, reading rows.

    OutputFormat("jsonl", part=".jsonl", merged="predictions.jsonl", chunk=_jsonl,
                 merge=_concatenated, read_rows=_jsonl_rows)

A spec is everything satx knows about a format: what one chunk's part holds (`chunk`, from the
chunk's rows), where the part goes (`part_name`), how the parts become the output (`merge`,
called once every chunk is done; None: nothing to merge), and, for formats with rows, how later
stages read them back (`read_rows`; `read_columns` where a format is columnar). `--formats`
choices, the folder's owned names, size limits, the bench and sites' and review's readers derive
from `FORMATS`; adding a format is one spec here (and its functions). Light to import: pyarrow
and rasterio load when a GeoParquet or raster part is written or read.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from satx import geo
from satx.errors import InputError
from satx.io import csv_out, storage
from satx.predict.parquet import PARQUET_DIR

if TYPE_CHECKING:
    from satx.tiles.refs import TileRef

log = logging.getLogger(__name__)

LARGE_ROWS = 1_000_000  # past this, a format merged into one file keeps its rows in parts/


PARTS = "parts/{chunk:08d}."  # most formats' parts: parts/00000012.csv


def part_name(chunk: int, suffix: str) -> str:
    """One chunk's part file (`parts/00000012.csv`)."""
    return (PARTS + suffix).format(chunk=chunk)


@dataclass
class ChunkRows:
    """One chunk's rows as the formats see them: the kept rows, and every scored tile."""

    tiles: list[TileRef]  # kept rows (scored at least --min_score)
    labels: list[str]
    scores: np.ndarray
    probs: np.ndarray
    class_names: tuple[str, ...]
    every: tuple[list[TileRef], np.ndarray, np.ndarray] | None = None  # tiles, scores, scored
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # kept rows' input columns

    @cached_property
    def places(self) -> list[dict[str, Any]]:
        """Each kept row's address and scores (computed once for every text format)."""
        places = []
        for i, (tile, label, score, p) in enumerate(
            zip(self.tiles, self.labels, self.scores, self.probs, strict=True)
        ):
            a = _address(tile.tile)
            props = {"source_id": tile.source_id, **{k: a[k] for k in ("z", "x", "y", "quadkey")}}
            props.update(label=label, score=round(float(score), 6))
            extra = {name: _cell(values[i]) for name, values in self.extra.items()}
            by_class = {
                f"score_{c}": round(float(v), 6) for c, v in zip(self.class_names, p, strict=True)
            }
            places.append({"props": props, "address": a, "extra": extra, "by_class": by_class})
        return places


def _cell(value: float) -> float | int | None:
    """An input column's value in a row (a count; a share: 4 decimals; None where unknown)."""
    if isinstance(value, np.integer):
        return int(value)
    return None if np.isnan(value) else round(float(value), 4)


def _address(tile: Any) -> dict[str, Any]:
    if tile is None:
        return {"z": None, "x": None, "y": None, "quadkey": None, "lon": None, "lat": None}
    g = geo.geolocate(tile)
    return {
        "z": tile.z,
        "x": tile.x,
        "y": tile.y,
        "quadkey": g.quadkey,
        "lon": round(g.lon, 7),
        "lat": round(g.lat, 7),
        "bbox": g.bbox,
    }


def _csv(rows: ChunkRows) -> str:
    text = io.StringIO()
    writer = csv_out.writer(text)
    for p in rows.places:
        a = p["address"]
        extra = ["" if v is None else v for v in p["extra"].values()]
        writer.writerow([*p["props"].values(), a["lon"], a["lat"], *extra, *p["by_class"].values()])
    return text.getvalue()


def _jsonl(rows: ChunkRows) -> str:
    return "".join(
        json.dumps(
            {
                **p["props"],
                "lon": p["address"]["lon"],
                "lat": p["address"]["lat"],
                "bbox": p["address"].get("bbox"),
                **p["extra"],
                **p["by_class"],
            }
        )
        + "\n"
        for p in rows.places
    )


def _geojsonl(rows: ChunkRows) -> str:
    lines = []
    for p in rows.places:
        bbox = p["address"].get("bbox")
        geometry = geo.bbox_polygon(bbox) if bbox else None
        properties = {**p["props"], **p["extra"], **p["by_class"]}
        lines.append(
            json.dumps({"type": "Feature", "geometry": geometry, "properties": properties})
        )
    return "".join(line + "\n" for line in lines)


def _parquet(rows: ChunkRows) -> bytes:
    from satx.predict import parquet

    return parquet.chunk_bytes(
        rows.tiles, rows.labels, rows.scores, rows.probs, rows.class_names, rows.extra
    )


def _raster(rows: ChunkRows) -> bytes:
    from satx.predict import raster

    # every scored tile, whatever --min_score keeps as rows
    tiles, scores, scored = rows.every or (rows.tiles, rows.scores, np.ones(len(rows.tiles), bool))
    return raster.chunk_bytes(tiles, scores, scored)


def csv_header(class_names: Sequence[str], columns: Sequence[str] = ()) -> str:
    """The first line of predictions.csv (`columns`: the input's own, such as coverage)."""
    base = ["source_id", "z", "x", "y", "quadkey", "label", "score", "lon", "lat", *columns]
    text = io.StringIO()
    csv_out.writer(text).writerow(base + [f"score_{c}" for c in class_names])
    return text.getvalue()


def concatenate(
    store: Any, name: str, parts: list[str], head: str, tail: str = "", comma: bool = False
) -> None:
    """Parts joined into `name`: byte for byte, or (`comma`) one JSON value a line, by commas."""
    with storage.staged_file(store, name) as tmp, open(tmp, "wb") as f:
        f.write(head.encode())
        first = True
        for part in parts:
            data = store.read_bytes(part)
            if not comma:
                f.write(data)
                continue
            for line in data.splitlines():
                f.write(line if first else b",\n" + line)
                first = False
        f.write((b"\n" if comma and not first else b"") + tail.encode())


@dataclass(frozen=True)
class Merge:
    """What the merge of one format needs to know about the run."""

    store: Any
    chunks: int
    kept: int  # rows the chunks hold in all
    class_names: tuple[str, ...]
    columns: tuple[str, ...] = ()  # the input's own columns (coverage, for scenes)


def _text_merge(head: Callable[[Merge], str], tail: str = "", comma: bool = False) -> Callable:
    def merge(spec: OutputFormat, m: Merge) -> str | None:
        if m.kept > LARGE_ROWS:
            log.warning(
                "%d rows: a merged %s would be too large to open; its rows stay in parts/ (use "
                "--formats=parquet for runs this size)",
                m.kept,
                spec.merged,
            )
            return None
        parts = [spec.part_name(k) for k in range(m.chunks)]
        concatenate(m.store, spec.merged, parts, head(m), tail, comma)
        return m.store.url(spec.merged)

    return merge


def _raster_merge(spec: OutputFormat, m: Merge) -> str | None:
    from satx.predict import raster

    return raster.write_raster(m.store, [spec.part_name(k) for k in range(m.chunks)])


def _parquet_merge(spec: OutputFormat, m: Merge) -> str:
    return m.store.url(PARQUET_DIR)  # the chunk files are the output


def _text_rows(kind: str) -> Callable[[str, str], Iterator[dict[str, Any]]]:
    def read(root: str, name: str) -> Iterator[dict[str, Any]]:
        with storage.open_store(root).open(name) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            if kind == "csv":
                yield from csv.DictReader(text)
            elif kind == "jsonl":
                yield from (json.loads(line) for line in text if line.strip())
            else:
                yield from (f["properties"] for f in json.load(text)["features"])

    return read


def _parquet_rows(root: str, name: str) -> Iterator[dict[str, Any]]:
    from satx.predict import parquet

    for batch in parquet.iter_batches(root):
        yield from batch.drop_columns(["geometry", "bbox"]).to_pylist()


def _parquet_columns(root: str, columns: Sequence[str]) -> Iterator[Any]:
    from satx.predict import parquet

    yield from parquet.iter_batches(root, columns=columns)


def _parquet_size(store: Any, root: str) -> int:
    from satx.predict import parquet

    return sum(store.size(name) for name in parquet.part_files(root))


@dataclass(frozen=True)
class OutputFormat:
    """One output format of predict (see the module docstring)."""

    name: str
    part: str  # a chunk's part file, `{chunk:08d}` in it
    merged: str  # the output's name in the folder (a file, or the folder of the parts)
    chunk: Callable[[ChunkRows], str | bytes]
    merge: Callable[[OutputFormat, Merge], str | None]
    read_rows: Callable[[str, str], Iterator[dict[str, Any]]] | None = None
    read_columns: Callable[[str, Sequence[str]], Iterator[Any]] | None = None
    read_order: int = 0  # later stages read rows from the lowest present (0: never)
    one_file: bool = False  # every row in one file: too large past LARGE_ROWS
    size: Callable[[Any, str], int] | None = None  # bytes of its rows (None: the merged file's)

    def part_name(self, chunk: int) -> str:
        """Where one chunk's part goes."""
        return self.part.format(chunk=chunk)

    @property
    def owned(self) -> str:
        """Its output as the folder's layout names it (a folder when its parts are inside)."""
        return self.merged + "/" if self.part.startswith(self.merged + "/") else self.merged


FORMATS = {
    spec.name: spec
    for spec in (
        OutputFormat(
            "geojson",
            PARTS + "geojsonl",
            "predictions.geojson",
            _geojsonl,
            _text_merge(lambda m: '{"type": "FeatureCollection", "features": [\n', "]}\n", True),
            _text_rows("geojson"),
            read_order=4,
            one_file=True,
        ),
        OutputFormat(
            "csv",
            PARTS + "csv",
            "predictions.csv",
            _csv,
            _text_merge(lambda m: csv_header(m.class_names, m.columns)),
            _text_rows("csv"),
            read_order=2,
            one_file=True,
        ),
        OutputFormat(
            "jsonl",
            PARTS + "jsonl",
            "predictions.jsonl",
            _jsonl,
            _text_merge(lambda m: ""),
            _text_rows("jsonl"),
            read_order=3,
            one_file=True,
        ),
        OutputFormat(
            "parquet",
            PARQUET_DIR + "/chunk-{chunk:08d}.parquet",
            PARQUET_DIR,
            _parquet,
            _parquet_merge,
            _parquet_rows,
            _parquet_columns,
            read_order=1,
            size=_parquet_size,
        ),
        OutputFormat("raster", PARTS + "raster.npz", "predictions.tif", _raster, _raster_merge),
    )
}
NAMES = tuple(FORMATS)  # --formats choices
# the formats later stages read rows from, in the order they look for them
ROW_FORMATS = tuple(
    sorted((n for n, s in FORMATS.items() if s.read_order), key=lambda n: FORMATS[n].read_order)
)


def format_of(name: str) -> OutputFormat:
    """The format whose output `name` is, else the row format with its extension (sites.csv).

    Raises:
        InputError: `name` is no file of rows (CSV, JSON lines, GeoJSON or GeoParquet).
    """
    for spec in FORMATS.values():
        if spec.merged == name:
            return spec
    extension = name.rsplit(".", 1)[-1]
    for spec in FORMATS.values():
        if spec.read_rows and spec.merged.rsplit(".", 1)[-1] == extension:
            return spec
    raise InputError(f"{name}: not a file of rows (CSV, JSON lines, GeoJSON or GeoParquet)")


def chunk_parts(rows: ChunkRows, formats: Sequence[str]) -> dict[str, str | bytes]:
    """One chunk's part of each format asked for."""
    return {f: FORMATS[f].chunk(rows) for f in formats}
