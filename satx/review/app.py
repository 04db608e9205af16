"""What the review server's request handlers share: the config, the database, the tiles."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

import mercantile

from satx.config import ReviewConfig
from satx.review.store import ReviewStore
from satx.tiles.base import TileSource
from satx.tiles.formats import too_large

log = logging.getLogger(__name__)


class ReviewApp:
    """What the request handlers share: the config, the database, the tile source."""

    def __init__(
        self, config: ReviewConfig, store: ReviewStore, source: TileSource, token: str
    ) -> None:
        self.config, self.store, self.source, self.token = config, store, source, token
        self.meta = store.meta()
        self._images: OrderedDict[tuple[int, int, int], bytes | None] = OrderedDict()
        self._lock = threading.Lock()

    def image(self, tile: mercantile.Tile) -> bytes | None:
        """The tile's bytes from the source (None: no imagery), kept in a small LRU."""
        key = (tile.z, tile.x, tile.y)
        with self._lock:
            if key in self._images:
                self._images.move_to_end(key)
                return self._images[key]
        found, errors = self.source.read([tile])
        data = found[0]
        if errors and errors[0][0] != "missing":
            log.warning("tile %d/%d/%d: %s", *key, errors[0][1])
            return None  # not cached: a later request tries again
        if data and (why := too_large(data)) is not None:
            log.warning("tile %d/%d/%d: too_large: %s", *key, why)
            data = None  # never handed to a browser
        with self._lock:
            self._images[key] = data
            while len(self._images) > 2048:
                self._images.popitem(last=False)
        return data

    def settings(self, reviewer: str) -> dict[str, Any]:
        """What the page needs to know once."""
        m = self.meta
        return {
            "reviewer": reviewer,
            "positive_class": m["positive_class"],
            "negative_class": m["negative_class"],
            "threshold": float(m["threshold"]),
            "order": self.config.order,
            "min_score": self.config.min_score,
            "model_version": m["model_version"],
            "lease_seconds": self.config.lease_seconds,
            "unit": m.get("unit", "tile"),
        }
