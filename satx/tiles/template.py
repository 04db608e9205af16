"""Where tile (z, x, y) lives, as a template: a path, a gs:// URL or an HTTP(S) URL.

Placeholders: `{z}`, `{x}`, `{y}`, `{-y}` (the TMS row, counted from the south), `{quadkey}`,
`{s}` (one of the subdomains, chosen by the tile so a tile always goes to the same host) and
`{bbox}` (the tile's EPSG:3857 bounds `minx,miny,maxx,maxy`, for WMS GetMap URLs).
"""

from __future__ import annotations

from collections.abc import Sequence

import mercantile

from satx.errors import InputError
from satx.io import secrets

DEFAULT_TEMPLATE = "{z}/{x}/{y}.jpg"
PLACEHOLDERS = ("{z}", "{x}", "{y}", "{-y}", "{quadkey}", "{s}", "{bbox}")


def _addresses_a_tile(template: str) -> bool:
    has_row = "{y}" in template or "{-y}" in template
    return (
        ("{z}" in template and "{x}" in template and has_row)
        or "{quadkey}" in template
        or "{bbox}" in template
    )


class TileTemplate:
    """Where tile (z, x, y) lives. A bare folder (not a URL) means `FOLDER/{z}/{x}/{y}.jpg`.

    Args:
        template: the path or URL with placeholders.
        subdomains: what `{s}` takes (required when the template has `{s}`).
    """

    def __init__(self, template: str, subdomains: Sequence[str] = ()):
        if not template:
            raise InputError("--tiles is required with --bbox, --aoi or a CSV of z,x,y / lon,lat")
        is_http = template.lower().startswith(("http://", "https://"))
        if not is_http and not any(p in template for p in PLACEHOLDERS):
            template = f"{template.rstrip('/')}/{DEFAULT_TEMPLATE}"
        if not _addresses_a_tile(template):
            raise InputError(
                f"--tiles={secrets.redact_url(template)}: needs {{z}}, {{x}} and {{y}} (or "
                f"{{-y}}, {{quadkey}} or {{bbox}}), e.g. gs://bucket/tiles/{DEFAULT_TEMPLATE}"
            )
        if "{s}" in template and not subdomains:
            raise InputError(
                f"--tiles={secrets.redact_url(template)} has {{s}}: give --tile_subdomains=a,b,c"
            )
        self.template = template
        self.subdomains = tuple(subdomains)

    def location(self, tile: mercantile.Tile) -> str:
        """The file or URL of one tile."""
        t = self.template
        if "{-y}" in t:
            t = t.replace("{-y}", str(2**tile.z - 1 - tile.y))
        t = t.replace("{z}", str(tile.z)).replace("{x}", str(tile.x)).replace("{y}", str(tile.y))
        if "{quadkey}" in t:
            t = t.replace("{quadkey}", mercantile.quadkey(tile))
        if "{s}" in t:
            t = t.replace("{s}", self.subdomains[(tile.x + tile.y) % len(self.subdomains)])
        if "{bbox}" in t:
            t = t.replace("{bbox}", ",".join(f"{v:.3f}" for v in mercantile.xy_bounds(tile)))
        return t
