"""A `satx.sites` output opened for review: the queue holds sites, each shown at its best tile.

The sites folder names its predictions (classes, model) and the threshold that made its hits;
`sites.csv` gives one queue row per site and `site_tiles.csv` its member tiles. Every site is a
hit (its tiles scored at least the threshold).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator

from satx.config import ReviewConfig
from satx.errors import InputError
from satx.io import storage
from satx.predict.result import PredictRun, iter_records
from satx.review.predictions import Predictions, Row, Site
from satx.sites.result import CONFIG_NAME, SITE_TILES_CSV, SITES_CSV, SitesRun


def open_sites(config: ReviewConfig) -> Predictions:
    """Open `config.sites` and the predictions it was made from."""
    run = SitesRun.load(config.sites)
    predict_run = PredictRun.load(run.predictions)
    store = storage.open_store(config.sites)
    for name in (SITES_CSV, SITE_TILES_CSV):
        if not store.exists(name):
            raise InputError(f"--sites={config.sites}: no {name}; run satx.sites again")
    if config.positive_class and config.positive_class != run.positive_class:
        raise InputError(
            f"--positive_class={config.positive_class}: these sites are of class "
            f"{run.positive_class!r}"
        )
    others = [c for c in predict_run.class_names if c != run.positive_class]
    default_negative = others[0] if len(others) == 1 else f"not_{run.positive_class}"
    digest = hashlib.sha256(store.read_bytes(CONFIG_NAME) + str(store.size(SITES_CSV)).encode())
    return Predictions(
        url=storage.open_store(run.predictions).url(""),
        fingerprint=digest.hexdigest()[:16],
        class_names=predict_run.class_names,
        positive=run.positive_class,
        negative=config.negative_class or default_negative,
        threshold=run.threshold,
        model=predict_run.model,
        rows_file=SITES_CSV,
        unit="site",
        sites=store.url(""),
    )


def iter_site_rows(predictions: Predictions) -> Iterator[Row]:
    """One queue row per site, in the sites' rank order."""
    members: dict[str, list[tuple[int, int, int, float]]] = defaultdict(list)
    for t in iter_records(predictions.sites, SITE_TILES_CSV):
        members[t["site_id"]].append((int(t["z"]), int(t["x"]), int(t["y"]), float(t["score"])))
    for r in iter_records(predictions.sites, SITES_CSV):
        known = r["known"]
        site = Site(
            site_id=r["site_id"],
            tiles=tuple(members[r["site_id"]]),
            mean_score=float(r["mean_score"]),
            lon=float(r["lon"]),
            lat=float(r["lat"]),
            known=None if known == "" else known == "true",
            distance_m=float(r["known_distance_m"]) if r["known_distance_m"] else None,
            nearest_known=r["nearest_known"] or None,
        )
        z, x, y = int(r["z"]), int(r["best_x"]), int(r["best_y"])
        yield Row(z, x, y, float(r["max_score"]), True, site)
