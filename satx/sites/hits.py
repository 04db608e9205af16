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

from satx import geo
from satx.errors import InputError
from satx.io.progress import Progress
from satx.predict.formats import format_of
from satx.predict.result import PredictRun, iter_records

log = logging.getLogger(__name__)

PEAK = ("peak_lon", "peak_lat")


@dataclass(frozen=True)
class Hits:
    """Tiles of one zoom scoring at least `floor`, in file order."""

    z: int
    x: np.ndarray  # int64 [N]
    y: np.ndarray  # int64 [N]
    score: np.ndarray  # float64 [N]: the positive class's probability
    rows: int  # rows read (tiles with a score in the output)
    floor: float
    peak: np.ndarray | None = None  # float64 [N, 2]: predict --localize's lon, lat (NaN: none)

    def __len__(self) -> int:
        return int(self.x.size)

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """Each hit's point: its class-activation peak where predict found one, else its centre."""
        lon, lat = geo.grid_to_lonlat(self.z, self.x + 0.5, self.y + 0.5)
        if self.peak is None:
            return lon, lat
        found = np.isfinite(self.peak).all(axis=1)
        return np.where(found, self.peak[:, 0], lon), np.where(found, self.peak[:, 1], lat)


def read_hits(run: PredictRun, root: str, positive: str, floor: float) -> Hits:
    """Every row of `run` scoring at least `floor` for class `positive`.

    Raises:
        InputError: the run wrote no rows file, its rows have no tile addresses (tiles named
            by path only), or they hold several zooms.
    """
    rows_file = run.rows_file()
    assert rows_file is not None, "checked by the caller"
    column = f"score_{positive}"
    localized = _localized(run)
    columns = format_of(rows_file).read_columns
    if columns is not None:  # columnar: only the columns used, a record batch at a time
        wanted = ["z", "x", "y", column, *(PEAK if localized else ())]
        return _check(_from_batches(columns(root, wanted), column, floor), root)
    zooms: set[int] = set()
    xs: list[int] = []
    ys: list[int] = []
    scores: list[float] = []
    peaks: list[list[float]] = []
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
        if localized:
            peaks.append([_number(record.get(name)) for name in PEAK])
    found = _Found(zooms, xs, ys, scores, rows, unaddressed, floor, peaks if localized else None)
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
    peak: list[Any] | None = None


def _localized(run: PredictRun) -> bool:
    """Whether the run's rows carry points (`predict --localize`)."""
    return run.config.get("scoring", {}).get("localize", "none") != "none"


def _number(value: Any) -> float:
    return float("nan") if value in (None, "") else float(value)


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
            if PEAK[0] in batch.schema.names:
                peak = [batch.column(n).to_numpy(zero_copy_only=False)[keep] for n in PEAK]
                found.peak = (found.peak or []) + [np.stack(peak, axis=1).astype(np.float64)]
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
        peak=None if found.peak is None else join(found.peak, np.float64).reshape(-1, 2),
    )
