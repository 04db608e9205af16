"""Labelled places -> labelled tiles: GeoJSON points and polygons, CSVs of lon,lat or z,x,y.

`python -m tools.make_records --input=schools.geojson --zoom=18 --tiles=SOURCE ...`:
- a Point gives the tile that contains it; a (Multi)Polygon every tile whose interior overlaps
  it (`satx.tiles.aoi`), or only its centroid's tile with `polygon_mode="centroid"`;
- a CSV has `lon,lat,label` (at `zoom`) or `z,x,y,label` columns, and no `path` column (a CSV
  with paths names files, `satx.records.sources`);
- several places with one label in one tile make one example; different labels in one tile are
  quarantined as `conflicting_labels`;
- the tiles are fetched from the source (concurrently, retried, cached: `satx.tiles`) into a
  folder the rest of make_records reads like any other input; tiles without imagery and tiles
  that could not be fetched are quarantined with their reason, never written blank.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mercantile
import shapely

from satx import geo
from satx.config import RecordsConfig
from satx.errors import InputError
from satx.io.progress import Progress
from satx.records.sources import Discovery, MissingTile, SourceTile
from satx.tiles.aoi import PolygonArea, check_coordinates, check_crs
from satx.tiles.sources import CachedSource, open_source

log = logging.getLogger(__name__)

GEOJSON_SUFFIXES = (".geojson", ".json")
# Tiles per call to the source, per fetch thread: the cache keeps a batch once it is complete,
# so a kill loses at most one batch; several tiles per thread keep the threads busy.
FETCH_BATCH_PER_THREAD = 4


@dataclass(frozen=True)
class Place:
    """One tile that one labelled geometry (or row) gave."""

    tile: mercantile.Tile
    label: str
    origin: str  # "schools.geojson: feature 3", "points.csv:12"


def is_locations_input(path: str) -> bool:
    """Whether `path` lists places (GeoJSON, or a CSV without a `path` column) not files."""
    lowered = path.lower()
    if lowered.endswith(GEOJSON_SUFFIXES):
        return True
    if not lowered.endswith(".csv") or not Path(path).is_file():
        return False
    with open(path, newline="", encoding="utf-8-sig") as f:
        header = {c.strip().lower() for c in next(csv.reader(f), [])}
    return "path" not in header and ({"lon", "lat"} <= header or {"z", "x", "y"} <= header)


def _shape_tiles(shape: Any, zoom: int, polygon_mode: str) -> list[mercantile.Tile]:
    kind = shape.geom_type
    if kind in ("Point", "MultiPoint"):
        points = shapely.get_coordinates(shape)
        return list(dict.fromkeys(mercantile.tile(lon, lat, zoom) for lon, lat in points))
    if kind in ("Polygon", "MultiPolygon"):
        if polygon_mode == "centroid":
            point = shape.centroid if shape.centroid.within(shape) else shape.point_on_surface()
            return [mercantile.tile(point.x, point.y, zoom)]
        area = PolygonArea(shape, zoom)
        return area.tiles(0, len(area))
    raise ValueError(f"a {kind}: use Point, MultiPoint, Polygon or MultiPolygon")


def read_geojson(
    path: str, zoom: int, label_property: str, polygon_mode: str
) -> tuple[list[Place], list[MissingTile], Counter[str]]:
    """Places of a GeoJSON FeatureCollection (or one Feature).

    Features without a usable label or geometry are reported, one MissingTile each.
    """
    try:
        data = json.loads(Path(path).read_bytes())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"--input={path}: cannot read GeoJSON ({err})") from err
    check_crs(data, path)
    features = data.get("features", []) if data.get("type") == "FeatureCollection" else [data]
    places, bad, geometries = [], [], Counter()
    for i, feature in enumerate(features):
        origin = f"{path}: feature {i}"
        label = str((feature.get("properties") or {}).get(label_property) or "").strip()
        if not label:
            bad.append(MissingTile(origin, "", "missing_label", f"{origin}: no {label_property!r}"))
            continue
        try:
            shape = shapely.geometry.shape(feature.get("geometry"))
            check_coordinates([shape], origin)
            tiles = _shape_tiles(shape, zoom, polygon_mode)
        except (AttributeError, TypeError, ValueError, shapely.errors.GEOSException) as err:
            bad.append(MissingTile(origin, label, "bad_geometry", f"{origin}: {err}"))
            continue
        except InputError as err:
            bad.append(MissingTile(origin, label, "bad_geometry", str(err)))
            continue
        geometries[label] += 1
        places += [Place(t, label, origin) for t in tiles]
    return places, bad, geometries


def read_csv(path: str, zoom: int) -> tuple[list[Place], list[MissingTile], Counter[str]]:
    """Places of a CSV of `lon,lat,label` (at `zoom`) or `z,x,y,label` rows."""
    places, bad, geometries = [], [], Counter()
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = {c.strip().lower() for c in reader.fieldnames or []}
        if "label" not in columns:
            raise InputError(f"{path}: needs a 'label' column; found {sorted(columns)}")
        by_lonlat = {"lon", "lat"} <= columns
        if by_lonlat and not zoom:
            raise InputError(f"--input={path}: a CSV of lon,lat needs --zoom (e.g. --zoom=18)")
        for line, raw in enumerate(reader, start=2):
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
            origin, label = f"{path}:{line}", row["label"]
            try:
                if by_lonlat:
                    lon, lat = float(row["lon"]), float(row["lat"])
                    if not (-180 <= lon <= 180 and -geo.MAX_LAT <= lat <= geo.MAX_LAT):
                        raise ValueError(f"lon,lat = {lon},{lat} is off the web-mercator map")
                    tile = mercantile.tile(lon, lat, zoom)
                else:
                    tile = geo.make_tile(*(int(row[k]) for k in "zxy"))
                    if tile is None:
                        raise ValueError(f"z,x,y = {row['z']},{row['x']},{row['y']} is no tile")
            except (KeyError, ValueError) as err:
                bad.append(MissingTile(origin, label, "bad_row", f"{origin}: {err}"))
                continue
            if not label:
                bad.append(MissingTile(origin, "", "missing_label", f"{origin}: empty label"))
                continue
            geometries[label] += 1
            places.append(Place(tile, label, origin))
    return places, bad, geometries


def merge(places: list[Place]) -> tuple[dict[mercantile.Tile, str], list[MissingTile]]:
    """One label per tile; tiles that places give different labels become conflicts."""
    labels: dict[mercantile.Tile, set[str]] = defaultdict(set)
    origins: dict[mercantile.Tile, list[str]] = defaultdict(list)
    for p in places:
        labels[p.tile].add(p.label)
        origins[p.tile].append(p.origin)
    merged, conflicts = {}, []
    for tile in sorted(labels, key=lambda t: (t.z, t.x, t.y)):
        if len(labels[tile]) == 1:
            merged[tile] = next(iter(labels[tile]))
            continue
        names = ", ".join(sorted(labels[tile]))
        shown = "; ".join(origins[tile][:5]) + ("; ..." if len(origins[tile]) > 5 else "")
        conflicts.append(
            MissingTile(
                geo.tile_key(tile),
                "",
                "conflicting_labels",
                f"tile {geo.tile_key(tile)} is labelled {names} by {shown}",
            )
        )
    return merged, conflicts


@dataclass(frozen=True)
class Places:
    """A places input read and merged: one label per tile, and what could not be used."""

    merged: dict[mercantile.Tile, str]
    unusable: tuple[MissingTile, ...]  # bad rows and geometries, conflicting labels
    per_label: dict[str, dict[str, int]]  # label -> geometries, tiles


def read_places(config: RecordsConfig) -> Places:
    """Read a places input and merge its tiles (no fetching)."""
    path = config.input
    if not Path(path).is_file():
        raise InputError(f"--input={path}: no such file")
    geojson = path.lower().endswith(GEOJSON_SUFFIXES)
    if geojson and not config.zoom:  # a CSV of z,x,y names its tiles; lon,lat is checked there
        raise InputError(f"--input={path}: labelled places need --zoom (e.g. --zoom=18)")
    if not config.source.tiles:
        raise InputError(f"--input={path}: labelled places need --tiles=SOURCE to fetch from")
    if geojson:
        places, bad, geometries = read_geojson(
            path, config.zoom, config.label_property, config.polygon_mode
        )
    else:
        places, bad, geometries = read_csv(path, config.zoom)
    merged, conflicts = merge(places)
    per_label = {
        label: {
            "geometries": geometries[label],
            "tiles": sum(1 for v in merged.values() if v == label),
        }
        for label in sorted(geometries)
    }
    log.info(
        "%d places gave %d tiles (%d with conflicting labels); per label: %s",
        sum(geometries.values()),
        len(merged),
        len(conflicts),
        per_label,
    )
    return Places(merged, (*bad, *conflicts), per_label)


def fetch_failure(key: str, label: str, error: tuple[str, str]) -> MissingTile:
    """A tile the source could not deliver, in make_records' quarantine vocabulary."""
    reason, detail = error
    return MissingTile(key, label, "no_imagery" if reason == "missing" else reason, detail)


def discover_locations(config: RecordsConfig, fetch_dir: Path) -> Discovery:
    """The labelled tiles of a places input, fetched into `fetch_dir` (or the tile cache)."""
    places = read_places(config)
    tiles, missing, description = _fetch(config, places.merged, fetch_dir)
    return Discovery(
        "locations",
        tuple(tiles),
        (*places.unusable, *missing),
        (),
        tile_source=description,
        geometries=places.per_label,
    )


def _fetch(
    config: RecordsConfig, merged: dict[mercantile.Tile, str], fetch_dir: Path
) -> tuple[list[SourceTile], list[MissingTile], str]:
    folder = Path(config.source.tile_cache) if config.source.tile_cache else fetch_dir
    inner = open_source(config.source)
    source = inner if isinstance(inner, CachedSource) else CachedSource(inner, str(folder))
    order = list(merged)
    tiles, missing = [], []
    progress = Progress("fetch", len(order))
    step = FETCH_BATCH_PER_THREAD * config.source.fetch_threads
    try:
        for start in range(0, len(order), step):
            batch = order[start : start + step]
            _, errors = source.read(batch)
            for i, tile in enumerate(batch):
                key, label = geo.tile_key(tile), merged[tile]
                if i in errors:
                    missing.append(fetch_failure(key, label, errors[i]))
                else:
                    location = str(folder / str(tile.z) / str(tile.x) / str(tile.y))
                    tiles.append(SourceTile(key, location, label, None, tile))
            progress.update(start + len(batch))
    finally:
        source.close()
    progress.finish()
    log.info(
        "fetched %d tiles from %s (%d were in the cache); %d without imagery or failed",
        len(tiles),
        source.description,
        source.hits,
        len(missing),
    )
    return tiles, missing, source.description
