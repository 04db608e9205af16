"""A prediction run's hits -> ranked candidate sites, matched against known schools.

    predictions (PredictRun) -> hits at or above the curve's lowest threshold (hits.py)
      -> neighbour graph (grid.py) -> sites at the chosen threshold (table.py)
      -> distances to known schools (known.py) -> the curve over thresholds (curve.py)
      -> sites.csv/.geojson, sites_polygons.geojson, site_tiles.csv, report (outputs, report)

The run takes seconds to minutes and has no partial state: a killed run is run again, and
every file it writes is complete (atomic writes), with sites_report.json last.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from satx.artifact.artifact import report_threshold
from satx.config import SitesConfig
from satx.errors import InputError, OutputExistsError
from satx.io import claim, failpoints, storage
from satx.io.lock import output_lock
from satx.io.run_record import file_sha256, json_bytes, recorded_path, run_record
from satx.predict.result import PredictRun, fingerprint
from satx.sites import curve, outputs, report
from satx.sites.grid import TileGraph, tile_graph
from satx.sites.hits import Hits, read_hits
from satx.sites.known import KnownSchools, best_score_near, nearest, read_known
from satx.sites.result import (
    CONFIG_NAME,
    CURVE_PNG,
    LAYOUT,
    POLYGONS_GEOJSON,
    REPORT_MD,
    REPORT_NAME,
    SITE_TILES_CSV,
    SITES_CSV,
    SITES_GEOJSON,
    KnownMatch,
    SitesRun,
)
from satx.sites.table import Sites, make_sites

log = logging.getLogger(__name__)
DEFAULT_SOURCE = "the predictions' threshold"


@dataclass(frozen=True)
class _Plan:
    """What a run reads and how it decides hits, resolved before the folder is touched."""

    positive: str
    threshold: float
    source: str  # what chose the threshold
    floor: float  # the lowest score read: the curve's first threshold
    known: KnownSchools | None
    inputs: dict[str, Any]


@dataclass(frozen=True)
class _Grouped:
    """The sites at the chosen threshold and their distances to known schools."""

    graph: TileGraph
    sites: Sites
    threshold: float
    source: str
    near: outputs.Proximity | None = None
    tile_known: np.ndarray | None = None  # per hit: a known school within the radius
    school_best: np.ndarray | None = None  # per known school: the best score near it


def find_sites(config: SitesConfig, command: str | None = None) -> SitesRun:
    """Group the hits of `config.predictions` into sites and write them to `config.output`."""
    started = time.monotonic()
    run = PredictRun.load(config.predictions)
    plan = _resolve(config, run)
    stages: dict[str, float] = {}
    inputs = (("--predictions", config.predictions), ("--known", config.known))
    with output_lock(config.output, "satx.sites", LAYOUT, inputs):
        out = storage.open_store(config.output)
        _claim(out, config, plan.inputs)
        with _timed(stages, "read"):
            hits = read_hits(run, config.predictions, plan.positive, plan.floor)
        with _timed(stages, "group"):
            grouped = _group(config, plan, hits)
        with _timed(stages, "write"):
            files = _write_sites(config, out, hits, grouped, plan.known)
        with _timed(stages, "curve"):
            points = [
                curve.curve_point(
                    grouped.graph, hits.score, t, hits.rows, grouped.tile_known, grouped.school_best
                )
                for t in curve.curve_thresholds(grouped.threshold, hits.floor)
            ]
        record = run_record(command, config, {"input": plan.inputs})
        sites = grouped.sites
        summary = SitesRun(
            predictions=recorded_path(config.predictions, config.output),
            positive_class=plan.positive,
            threshold=grouped.threshold,
            threshold_source=grouped.source,
            zoom=hits.z,
            connectivity=config.connectivity,
            max_gap=config.max_gap,
            tiles_scored=hits.rows,
            hits=int((hits.score >= grouped.threshold).sum()),
            sites=len(sites),
            sites_per_million=round(curve.PER_MILLION * len(sites) / max(hits.rows, 1), 3),
            biggest_site=int(sites.tiles.max()) if len(sites) else 0,
            known=_match(config, plan.known, grouped),
            curve=tuple(points),
            files={**files, **{n: out.url(n) for n in (REPORT_MD, CURVE_PNG)}},
            seconds=round(time.monotonic() - started, 2),
            stage_seconds=stages,
            input=plan.inputs,
            command=record["command"],
            config=record["config"],
            versions=record["versions"],
        )
        report.write_report(out, summary)
        failpoints.hit("sites.before_report")
        out.write_bytes(REPORT_NAME, json_bytes(summary))
    log.info(
        "%d hits -> %d sites (%.1f per million tiles) at threshold %.4g in %.1f s",
        summary.hits,
        summary.sites,
        summary.sites_per_million,
        summary.threshold,
        summary.seconds,
    )
    return summary


@contextlib.contextmanager
def _timed(stages: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    stages[name] = round(time.perf_counter() - start, 3)


def _resolve(config: SitesConfig, run: PredictRun) -> _Plan:
    """The class, threshold, curve floor and known schools; the inputs' identity."""
    positive = run.positive(config.positive_class)
    threshold, source = _threshold(config, run)
    run_floor = run.min_score
    if threshold < run_floor and source == DEFAULT_SOURCE:
        threshold, source = run_floor, "the predictions' --min_score"
    if threshold < run_floor:
        raise InputError(
            f"threshold {threshold}: the predictions only hold tiles scoring at least "
            f"{run_floor} (satx.predict --min_score); use a threshold of at least that"
        )
    rows_file = run.rows_file()
    if rows_file is None:
        raise InputError(
            f"--predictions={config.predictions}: the run wrote no predictions.csv, .jsonl or "
            ".geojson; predict with --formats=csv"
        )
    known = read_known(config.known) if config.known else None
    inputs = {
        "predictions": config.predictions,
        "fingerprint": fingerprint(config.predictions, rows_file),
    }
    if known is not None:
        inputs["known_sha256"] = file_sha256(known.path)
    floor = max(min(threshold, curve.CURVE_GRID[0]), run_floor)
    return _Plan(positive, threshold, source, floor, known, inputs)


def _threshold(config: SitesConfig, run: PredictRun) -> tuple[float, str]:
    if config.threshold_from:
        t, rep = report_threshold(config.threshold_from, list(run.class_names))
        return t, f"{config.threshold_from} ({rep.get('threshold_mode')})"
    if config.min_score >= 0:
        return config.min_score, "--min_score"
    return run.threshold, DEFAULT_SOURCE


def _claim(out: Any, config: SitesConfig, inputs: dict[str, Any]) -> None:
    """Make the folder this run's, or check it already is (a rerun rewrites the same files)."""
    identity = json_bytes({"config": {**config.to_dict(), "overwrite": False}, "input": inputs})
    taken = out.exists(CONFIG_NAME) and out.read_bytes(CONFIG_NAME) != identity
    if taken and not config.overwrite:
        raise OutputExistsError(
            f"{out.url(CONFIG_NAME)}: this folder holds other sites (other predictions, "
            "known schools or settings); pass --overwrite to replace them or choose "
            "another --output"
        )
    if config.overwrite or not out.exists(CONFIG_NAME):
        claim.remove_owned(out, LAYOUT)
    out.write_bytes(CONFIG_NAME, identity)


def _group(config: SitesConfig, plan: _Plan, hits: Hits) -> _Grouped:
    """The neighbour graph of every hit read, the sites at the threshold, known distances."""
    graph = tile_graph(hits.z, hits.x, hits.y, config.connectivity, config.max_gap)
    threshold, source = plan.threshold, plan.source
    if config.max_sites:
        budget = curve.threshold_for_budget(graph, hits.score, threshold, config.max_sites)
        threshold = max(threshold, budget)
        source = f"{source}, raised to at most {config.max_sites} sites (--max_sites)"
    lon, lat = hits.points()  # peaks (predict --localize) or tile centres
    points = (lon, lat) if hits.peak is not None else None
    sites = make_sites(graph, hits.score, hits.score >= threshold, points)
    known = plan.known
    if known is None:
        return _Grouped(graph, sites, threshold, source)
    distance, index = nearest(known, lon, lat)
    radius = config.known_radius_m
    return _Grouped(
        graph,
        sites,
        threshold,
        source,
        near=outputs.site_proximity(sites, distance, index, radius),
        tile_known=distance <= radius,
        school_best=best_score_near(known, lon, lat, hits.score, radius),
    )


def _write_sites(
    config: SitesConfig, out: Any, hits: Hits, g: _Grouped, known: KnownSchools | None
) -> dict[str, str]:
    """sites.csv, sites.geojson, site_tiles.csv and (with --polygons) the outlines."""
    columns = outputs.site_columns(g.sites, g.graph, g.near, known)
    texts = {
        SITES_CSV: lambda: outputs.sites_csv(columns),
        SITES_GEOJSON: lambda: outputs.sites_geojson(columns),
        SITE_TILES_CSV: lambda: outputs.site_tiles_csv(g.sites, g.graph, hits.score),
    }
    if config.polygons:
        shapes = outputs.outline_texts(g.sites, g.graph)
        texts[POLYGONS_GEOJSON] = lambda: outputs.sites_geojson(columns, shapes)
    files = {}
    for name, make in texts.items():
        files[name] = outputs.write_text(out, name, make())
        failpoints.hit("sites.file_written")
    return files


def _match(config: SitesConfig, known: KnownSchools | None, g: _Grouped) -> KnownMatch | None:
    if known is None or g.near is None or g.school_best is None:
        return None
    recovered = int((g.school_best >= g.threshold).sum())
    known_sites = int(g.near.known.sum())
    return KnownMatch(
        file=config.known,
        schools=len(known),
        radius_m=config.known_radius_m,
        recovered=recovered,
        recovered_share=round(recovered / len(known), 6),
        known_sites=known_sites,
        new_sites=len(g.sites) - known_sites,
    )
