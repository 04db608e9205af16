"""A tile source given as a path template: `ROOT/{z}/{x}/{y}.jpg`, local or gs://."""

from __future__ import annotations

import mercantile

from satx.errors import InputError

DEFAULT_TEMPLATE = "{z}/{x}/{y}.jpg"
_PLACEHOLDERS = ("{z}", "{x}", "{y}", "{quadkey}")


class TileTemplate:
    """Where tile (z, x, y) lives: a path or gs:// URL with `{z}`, `{x}`, `{y}` or `{quadkey}`.

    A bare folder means `FOLDER/{z}/{x}/{y}.jpg`.
    """

    def __init__(self, template: str):
        if not template:
            raise InputError("--tiles is required with --bbox, --aoi or a CSV of z,x,y / lon,lat")
        if not any(p in template for p in _PLACEHOLDERS):
            template = f"{template.rstrip('/')}/{DEFAULT_TEMPLATE}"
        if not (all(p in template for p in ("{z}", "{x}", "{y}")) or "{quadkey}" in template):
            raise InputError(
                f"--tiles={template}: needs {{z}}, {{x}} and {{y}} (or {{quadkey}}), e.g. "
                f"gs://bucket/tiles/{DEFAULT_TEMPLATE}"
            )
        self.template = template

    def location(self, tile: mercantile.Tile) -> str:
        """The file or URL of one tile."""
        path = self.template.replace("{z}", str(tile.z))
        path = path.replace("{x}", str(tile.x)).replace("{y}", str(tile.y))
        if "{quadkey}" in path:
            path = path.replace("{quadkey}", mercantile.quadkey(tile))
        return path
