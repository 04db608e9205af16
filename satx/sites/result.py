"""A sites folder: its file names, and the run that filled it (`SitesRun`).

Layout of `--output` (a local folder or gs:// prefix):

    sites_config.json        what this output is for (settings + the predictions' identity)
    sites.csv                one row per site, ranked: id, point, scores, tiles, known/new
    sites.geojson            the same rows as points
    sites_polygons.geojson   the same rows with each site's tiles as one shape (--polygons)
    site_tiles.csv           every hit tile of a site: site_id, z, x, y, quadkey, score
    report.md, curve.png     the counts, the threshold curve, known schools recovered
    sites_report.json        the `SitesRun`, written last: the folder is complete

Each file is written atomically; a run killed before `sites_report.json` is simply run again.
Review opens a folder with `SitesRun.load` and reads `sites.csv` and `site_tiles.csv`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from satx.io import claim
from satx.io.run_record import Record, path_from

CONFIG_NAME = "sites_config.json"
REPORT_NAME = "sites_report.json"
SITES_CSV = "sites.csv"
SITES_GEOJSON = "sites.geojson"
POLYGONS_GEOJSON = "sites_polygons.geojson"
SITE_TILES_CSV = "site_tiles.csv"
REPORT_MD = "report.md"
CURVE_PNG = "curve.png"
_OWNED = (CONFIG_NAME, REPORT_NAME, SITES_CSV, SITES_GEOJSON, POLYGONS_GEOJSON, SITE_TILES_CSV)
LAYOUT = claim.Layout("sites", (*_OWNED, REPORT_MD, CURVE_PNG), legacy=(CONFIG_NAME,))
SITE_COLUMNS = (
    "rank",
    "site_id",
    "lon",
    "lat",
    "max_score",
    "mean_score",
    "tiles",
    "z",
    "best_x",
    "best_y",
    "known",
    "known_distance_m",
    "nearest_known",
)
SITE_TILE_COLUMNS = ("site_id", "z", "x", "y", "quadkey", "score")


@dataclass(frozen=True)
class CurvePoint(Record):
    """Sites and known schools recovered at one threshold."""

    threshold: float
    hits: int
    sites: int
    sites_per_million: float
    known_sites: int | None = None
    new_sites: int | None = None
    recovered: int | None = None
    recovered_share: float | None = None


@dataclass(frozen=True)
class KnownMatch(Record):
    """Sites against known schools at the chosen threshold."""

    file: str
    schools: int
    radius_m: float
    recovered: int  # known schools within the radius of a site
    recovered_share: float
    known_sites: int  # sites within the radius of a known school
    new_sites: int


@dataclass(frozen=True)
class SitesRun(Record):
    """A finished sites run (sites_report.json).

    Attributes:
        predictions, positive_class: where the hits came from and whose score made them.
        threshold, threshold_source: the hit threshold and what chose it.
        zoom, connectivity, max_gap: how tiles were grouped.
        tiles_scored: rows of the predictions (tiles with a score); hits: tiles at or above
            the threshold; sites, sites_per_million: per million tiles scored.
        biggest_site: tiles in the largest site.
        known: the match against --known (None without it).
        curve: the same counts over thresholds (from the lowest score read).
        files: name -> path of every output.
        seconds, stage_seconds: the run's time, and its stages' (read, group, write, curve).
    """

    predictions: str
    positive_class: str
    threshold: float
    threshold_source: str
    zoom: int
    connectivity: int
    max_gap: int
    tiles_scored: int
    hits: int
    sites: int
    sites_per_million: float
    biggest_site: int = 0
    known: KnownMatch | None = None
    curve: tuple[CurvePoint, ...] = ()
    files: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    input: dict[str, Any] = field(default_factory=dict)
    command: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, root: str) -> SitesRun:
        """The run of a finished sites folder, its `predictions` found from the folder.

        Raises:
            InputError: no sites_report.json there (satx.sites did not finish).
        """
        run = cls.load_finished(root, REPORT_NAME, "--sites", "satx.sites")
        return dataclasses.replace(run, predictions=path_from(run.predictions, root))
