import mercantile
import numpy as np
import pytest

from satx import geo


@pytest.mark.parametrize(
    "path, expected",
    [
        ("school/75000-120000-18.jpg", (18, 75000, 120000)),
        ("a/b/18_75000_120000.png", (18, 75000, 120000)),
        ("school/18/75000/120000.jpeg", (18, 75000, 120000)),
        ("gs://bucket/tiles/17/62092/50163.jpg", (17, 62092, 50163)),
        ("62092-50163-17.png", (17, 62092, 50163)),
    ],
)
def test_parse_tile_path_patterns(path, expected):
    z, x, y = expected
    assert geo.parse_tile_path(path) == mercantile.Tile(x, y, z)


@pytest.mark.parametrize(
    "path",
    [
        "Forest/Forest_12.jpg",  # EuroSAT: no geolocation
        "school/img-001.jpg",
        "school/5-40-3.jpg",  # x=5 y=40 z=3: y outside a zoom-3 grid
        "school/1-1-31.jpg",  # zoom beyond 30
        "18/abc/7.jpg",
    ],
)
def test_parse_tile_path_rejects_non_tiles(path):
    assert geo.parse_tile_path(path) is None


def test_geolocate_matches_mercantile():
    tile = mercantile.Tile(75000, 120000, 18)
    loc = geo.geolocate(tile)
    b = mercantile.bounds(tile)
    assert loc.bbox == (b.west, b.south, b.east, b.north)
    assert loc.quadkey == mercantile.quadkey(tile)
    assert loc.lon == pytest.approx((b.west + b.east) / 2)
    assert loc.lat == pytest.approx((b.south + b.north) / 2)
    assert mercantile.tile(loc.lon, loc.lat, 18) == tile


def test_tile_bounds_tile_round_trip_for_random_tiles():
    rng = np.random.default_rng(0)
    for _ in range(500):
        z = int(rng.integers(0, 23))
        x, y = (int(v) for v in rng.integers(0, 1 << z, 2))
        tile = mercantile.Tile(x, y, z)
        loc = geo.geolocate(tile)
        assert mercantile.tile(loc.lon, loc.lat, z) == tile
        assert mercantile.quadkey_to_tile(loc.quadkey) == tile
        assert geo.parse_tile_path(f"t/{x}-{y}-{z}.jpg") == tile
        assert geo.parse_tile_path(f"t/{z}/{x}/{y}.png") == tile


def test_parent_at_zoom():
    tile = mercantile.Tile(75000, 120000, 18)
    assert geo.parent_at_zoom(tile, 12) == mercantile.parent(tile, zoom=12)
    assert geo.parent_at_zoom(tile, 18) == tile
    assert geo.parent_at_zoom(mercantile.Tile(3, 3, 4), 12) == mercantile.Tile(3, 3, 4)


@pytest.mark.parametrize(
    "bbox, zoom",
    [
        ((-75.6, 4.5, -75.5, 4.65), 18),  # a city block of Colombia
        ((179.99, -1.0, -179.99, 1.0), 17),  # across the antimeridian: two blocks
        ((-80.0, -5.0, -66.0, 13.0), 10),
        ((10.0, 10.0, 10.0, 10.0), 18),  # a point: one tile
        ((-180.0, -90.0, 180.0, 90.0), 3),  # the world: latitudes clamped to the square
    ],
)
def test_bbox_blocks_enumerate_exactly_mercantiles_tiles(bbox, zoom):
    expected = list(mercantile.tiles(*bbox, zoom))
    blocks = geo.bbox_blocks(*bbox, zoom)
    assert sum(len(b) for b in blocks) == len(expected)
    assert [geo.block_tile(b, i) for b in blocks for i in range(len(b))] == expected


def test_bbox_blocks_of_a_country_are_a_few_integers():
    blocks = geo.bbox_blocks(-79.1, -4.3, -66.8, 12.5, 18)  # Colombia's box at zoom 18
    assert len(blocks) == 1 and len(blocks[0]) > 100_000_000
    last = geo.block_tile(blocks[0], len(blocks[0]) - 1)
    assert last == mercantile.tile(-66.8 - mercantile.LL_EPSILON, -4.3 + mercantile.LL_EPSILON, 18)
    with pytest.raises(ValueError, match="south"):
        geo.bbox_blocks(0, 10, 1, 5, 18)
    # not clamped silently (issue 35: NaN became -180, 1e308 the whole world)
    for bad in [(-200, 0, 1, 1), (0, 0, 1e308, 1), (float("nan"), 0, 1, 1), (0, -91, 1, 1)]:
        with pytest.raises(ValueError, match="longitudes in -180..180"):
            geo.bbox_blocks(*bad, 18)


def test_array_forms_agree_with_mercantile():
    import numpy as np

    rng = np.random.default_rng(0)
    for z in (0, 1, 7, 18, 24):
        x, y = rng.integers(0, 1 << z, 200), rng.integers(0, 1 << z, 200)
        keys = geo.quadkeys(z, x, y)
        tiles = [(int(a), int(b)) for a, b in zip(x, y, strict=True)]
        assert keys.tolist() == [mercantile.quadkey(a, b, z) for a, b in tiles]
        lon, lat = geo.grid_to_lonlat(z, x, y)  # a tile's corner is mercantile's ul
        ul = [mercantile.ul(a, b, z) for a, b in tiles]
        assert np.allclose(lon, [u.lng for u in ul]) and np.allclose(lat, [u.lat for u in ul])
        fx, fy = geo.lonlat_to_grid(z, lon + 1e-9, lat - 1e-9)
        assert np.array_equal(np.floor(fx).astype(int), x) and np.array_equal(
            np.floor(fy).astype(int), y
        )


def test_tile_keys_sort_like_tiles_and_morton_inverts():
    x, y = np.array([0, 5, 5, 2**18 - 1]), np.array([7, 0, 3, 2**18 - 1])
    keys = geo.tile_keys(x, y)
    assert list(np.argsort(keys)) == sorted(range(4), key=lambda i: (x[i], y[i]))
    assert [a.tolist() for a in geo.key_xy(keys)] == [x.tolist(), y.tolist()]
    index = np.arange(4**3)
    dx, dy = geo.morton_xy(index, 3)
    assert (geo.morton(3, dx, dy) == index).all()
    quadkeys = geo.quadkeys(3, dx, dy)  # quadkey order is morton order
    assert list(quadkeys) == sorted(quadkeys)
