"""make_records --context=2: labelled places stored as the 2x2 windows around them."""

from __future__ import annotations

import io
import json

import mercantile
import numpy as np
import pytest
from PIL import Image

from satx.config import RecordsConfig, SourceConfig
from satx.errors import InputError
from satx.records.make import make_records
from satx.records.manifest import load_records
from satx.tiles.windows import Window, window_of_tile
from tests.support.helpers import read_all

Z = 18
ORIGIN = mercantile.tile(-74.08, 4.60, Z)
SIDE = 32  # px a tile


def _colour(tile: mercantile.Tile) -> tuple[int, int, int]:
    """A colour of its own for every tile of the block (so a window's layout can be checked)."""
    dx, dy = tile.x - ORIGIN.x, tile.y - ORIGIN.y
    return (40 + 30 * dx, 40 + 30 * dy, 200 - 20 * (dx + dy))


def _block(root, missing=()):
    """6 x 6 flat-coloured JPEG tiles as ROOT/{z}/{x}/{y}.jpg (without `missing`)."""
    for dy in range(6):
        for dx in range(6):
            tile = mercantile.Tile(ORIGIN.x + dx, ORIGIN.y + dy, Z)
            if tile in missing:
                continue
            path = root / str(Z) / str(tile.x) / f"{tile.y}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (SIDE, SIDE), _colour(tile)).save(path, quality=95)
    return str(root / "{z}/{x}/{y}.jpg")


def _point(tile: mercantile.Tile, fx: float, fy: float) -> list[float]:
    """The point at fraction (fx, fy) of a tile, from its north-west corner (in mercator)."""
    left, bottom, right, top = mercantile.xy_bounds(tile)
    return list(mercantile.lnglat(left + fx * (right - left), top - fy * (top - bottom)))


def _places(path, points):
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": xy},
            "properties": {"label": label},
        }
        for xy, label in points
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return str(path)


def _config(tmp_path, places, tiles, **kw):
    values = dict(
        input=places,
        output=str(tmp_path / "records"),
        zoom=Z,
        context=2,
        image_size=SIDE,
        source=SourceConfig(tiles=tiles),
        split="train:1",
    )
    return RecordsConfig(**{**values, **kw})


def test_places_become_the_windows_around_them_with_exact_geolocation(tmp_path):
    a = mercantile.Tile(ORIGIN.x + 2, ORIGIN.y + 2, Z)
    gap = mercantile.Tile(ORIGIN.x + 5, ORIGIN.y + 5, Z)
    tiles = _block(tmp_path / "tiles", missing={gap})
    points = [
        (_point(a, 0.9, 0.9), "school"),  # near a's south-east corner: a is the top-left tile
        (_point(a, 0.1, 0.2), "school"),  # near its north-west corner: a is the bottom-right
        (_point(mercantile.Tile(a.x + 1, a.y - 1, Z), 0.3, 0.7), "other"),
        (_point(mercantile.Tile(gap.x - 1, gap.y - 1, Z), 0.8, 0.8), "other"),  # needs gap
    ]
    manifest = make_records(_config(tmp_path, _places(tmp_path / "p.geojson", points), tiles))
    assert manifest.context == 2 and manifest.image_size == 2 * SIDE
    assert manifest.records == 3 and manifest.quarantine.reasons == {"no_imagery": 1}
    quarantined = json.loads((tmp_path / "records" / "quarantine.jsonl").read_text())
    assert f"tile {Z}/{gap.x}/{gap.y}" in quarantined["detail"]  # a window is kept only whole
    _, examples = read_all(tmp_path / "records")
    tops = {(ex.tile.x - ORIGIN.x, ex.tile.y - ORIGIN.y) for _, ex in examples}
    assert tops == {(2, 2), (1, 1), (2, 1)}  # 3.3, 1.7 tiles in: the window from 2, 1
    for _, ex in examples:
        window = Window(Z, ex.tile.x, ex.tile.y, 2)
        assert ex.window == 2 and ex.source_id == f"{Z}/{ex.tile.x}/{ex.tile.y}+2x2"
        assert window_of_tile(window.tiles[0], 2) == window  # window -> tiles -> window
        # the image: the four tiles in place, each its own colour (JPEG within a few levels)
        pixels = np.asarray(Image.open(io.BytesIO(ex.encoded)).convert("RGB")).astype(int)
        assert pixels.shape == (2 * SIDE, 2 * SIDE, 3)
        for k, tile in enumerate(window.tiles):
            row, col = divmod(k, 2)
            cell = pixels[row * SIDE : (row + 1) * SIDE, col * SIDE : (col + 1) * SIDE]
            assert np.abs(cell.mean(axis=(0, 1)) - _colour(tile)).max() < 3, (tile, k)
        # the geolocation is the window's: its centre is the four tiles' shared corner
        where = ex.geolocation
        corner = mercantile.ul(ex.tile.x + 1, ex.tile.y + 1, Z)
        assert (where.lon, where.lat) == pytest.approx(tuple(corner), abs=1e-9)
        west, north = mercantile.ul(ex.tile.x, ex.tile.y, Z)
        east, south = mercantile.ul(ex.tile.x + 2, ex.tile.y + 2, Z)
        assert where.bbox == pytest.approx((west, south, east, north))
    described = load_records(str(tmp_path / "records")).manifest.describe()
    assert "3 2x2 windows" in described
    from satx.records.verify import describe_example

    assert "2x2 window from tile z18/" in describe_example(examples[0][1])


def test_context_needs_places(tmp_path, sample_tiles):
    with pytest.raises(InputError, match=r"--context=2: .* names tile files"):
        make_records(_config(tmp_path, str(sample_tiles), "", zoom=0))


def test_single_tiles_keep_their_records_and_manifest(tmp_path):
    """--context=1 (the default) writes no window feature and no manifest key."""
    tiles = _block(tmp_path / "tiles")
    places = _places(tmp_path / "p.geojson", [(_point(ORIGIN, 0.5, 0.5), "school")])
    make_records(_config(tmp_path, places, tiles, context=1))
    manifest = json.loads((tmp_path / "records" / "manifest.json").read_text())
    assert "context" not in manifest and manifest["image_size"] == SIDE
    _, examples = read_all(tmp_path / "records")
    ((_, ex),) = examples
    assert ex.window == 1 and ex.source_id == f"{Z}/{ORIGIN.x}/{ORIGIN.y}"
