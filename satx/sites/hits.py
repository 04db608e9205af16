"""The hit tiles of a finished prediction run, as arrays (z, x, y, score).

Rows are streamed from the run's merged file (`satx.predict.result.iter_records`); only rows
scoring at least `floor` are kept, so memory follows the hits, not the tiles scored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from satx.errors import InputError
from satx.io.progress import Progress
from satx.predict.formats import format_of
from satx.predict.result import PredictRun, iter_records

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hits:
    """Tiles of one zoom scoring at least `floor`, in file order."""

    z: int
    x: np.ndarray  # int64 [N]
    y: np.ndarray  # int64 [N]
    score: np.ndarray  # float64 [N]: the positive class's probability
    rows: int  # rows read (tiles with a score in the output)
    floor: float

    def __len__(self) -> int:
        return int(self.x.size)


def read_hits(run: PredictRun, root: str, positive: str, floor: float) -> Hits:
    """Every row of `run` scoring at least `floor` for class `positive`.

    Raises:
        InputError: the run wrote no rows file, its rows have no tile addresses (tiles named
            by path only), or they hold several zooms.
    """
    rows_file = run.rows_file()
    assert rows_file is not None, "checked by the caller"
    column = f"score_{positive}"
    columns = format_of(rows_file).read_columns
    if columns is not None:  # columnar: only the four columns, a record batch at a time
        return _check(_from_batches(columns(root, ["z", "x", "y", column]), column, floor), root)
    zooms: set[int] = set()
    xs: list[int] = []
    ys: list[int] = []
    scores: list[float] = []
    rows = unaddressed = 0
    progress = Progress("reading predictions", run.kept or run.tiles, unit="rows", every_s=5.0)
    for record in iter_records(root, rows_file):
        rows += 1
        if rows % 65536 == 0:
            progress.update(rows)
        score = float(record[column])
        if score < floor:
            continue
        z = record.get("z")
        if z in (None, ""):
            unaddressed += 1
            continue
        zooms.add(int(z))
        xs.append(int(record["x"]))
        ys.append(int(record["y"]))
        scores.append(score)
    found = _Found(zooms, xs, ys, scores, rows, unaddressed, floor)
    return _check(found, root)


@dataclass
class _Found:
    zooms: set[int]
    x: list[Any]
    y: list[Any]
    score: list[Any]
    rows: int
    unaddressed: int
    floor: float


def _from_batches(batches: Iterator[Any], column: str, floor: float) -> _Found:
    """The hits of Arrow record batches (GeoParquet chunk files): columns, not rows."""
    found = _Found(set(), [], [], [], 0, 0, floor)
    for batch in batches:
        found.rows += batch.num_rows
        score = batch.column(column).to_numpy(zero_copy_only=False)
        z = batch.column("z")
        hit = score >= floor
        addressed = ~np.asarray(z.is_null().to_numpy(zero_copy_only=False), bool)
        found.unaddressed += int((hit & ~addressed).sum())
        keep = hit & addressed
        if keep.any():
            found.zooms.update(np.unique(z.to_numpy(zero_copy_only=False)[keep]).tolist())
            found.x.append(batch.column("x").to_numpy(zero_copy_only=False)[keep])
            found.y.append(batch.column("y").to_numpy(zero_copy_only=False)[keep])
            found.score.append(score[keep])
    return found


def _check(found: _Found, root: str) -> Hits:
    if found.unaddressed and not found.x:
        raise InputError(
            f"--predictions={root}: its tiles have no z/x/y (named by path only), so they have "
            "no place on the map; predict tiles named z/x/y (or x-y-z), a CSV of z,x,y or "
            "lon,lat, an --aoi or a --bbox"
        )
    if found.unaddressed:
        log.warning("%d hits have no z/x/y (tiles named by path only): left out", found.unaddressed)
    if len(found.zooms) > 1:
        raise InputError(
            f"--predictions={root}: hits at zooms {sorted(found.zooms)}; sites are made at one "
            "zoom (predict each zoom into its own output)"
        )

    def join(parts: list[Any], kind: Any) -> np.ndarray:
        if parts and isinstance(parts[0], np.ndarray):
            return np.concatenate(parts).astype(kind)
        return np.asarray(parts, kind)

    return Hits(
        z=found.zooms.pop() if found.zooms else 0,
        x=join(found.x, np.int64),
        y=join(found.y, np.int64),
        score=join(found.score, np.float64),
        rows=found.rows,
        floor=found.floor,
    )
