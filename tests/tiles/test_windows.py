"""Context windows: geolocation round trips, points near their window's centre, edges."""

from __future__ import annotations

import mercantile
import numpy as np
import pytest

from satx.tiles.windows import Window, covering, window_of_point, window_of_tile


@pytest.mark.parametrize("size", [1, 2, 3])
def test_window_tiles_window_round_trips(size):
    rng = np.random.default_rng(size)
    for _ in range(200):
        z = int(rng.integers(3, 20))
        n = 1 << z
        tile = mercantile.Tile(int(rng.integers(0, n)), int(rng.integers(size, n - size)), z)
        window = window_of_tile(tile, size)
        tiles = window.tiles
        assert len(tiles) == size * size and tile in tiles
        assert tiles[0] == window.top_left
        assert window_of_tile(tiles[(size - 1) // 2 * (size + 1)], size) == window
        assert sorted(covering(tile, size)).count(window) == 1
        # the window's corners are its tiles' outer corners
        west, south, east, north = window.bounds()
        first, last = mercantile.bounds(tiles[0]), mercantile.bounds(tiles[-1])
        if tiles[-1].x >= tiles[0].x:  # not across the antimeridian
            assert (west, north) == pytest.approx((first.west, first.north))
            assert (east, south) == pytest.approx((last.east, last.south))


def test_a_point_lies_within_half_a_tile_of_its_window_s_centre():
    rng = np.random.default_rng(0)
    for _ in range(500):
        lon, lat, z = rng.uniform(-179, 179), rng.uniform(-80, 80), int(rng.integers(5, 19))
        window = window_of_point(lon, lat, z, 2)
        tile = mercantile.tile(lon, lat, z)
        assert tile in window.tiles  # the point's own tile is always inside
        cx, cy = window.x + 1, window.y + 1  # the centre, in tile units
        fx, fy = mercantile.xy(lon, lat)
        px = (fx + 20037508.342789244) / (2 * 20037508.342789244) * (1 << z)
        py = (20037508.342789244 - fy) / (2 * 20037508.342789244) * (1 << z)
        n = 1 << z
        across = (px - cx + n / 2) % n - n / 2  # a window may wrap at the antimeridian
        assert abs(across) <= 0.5 + 1e-9 and abs(py - cy) <= 0.5 + 1e-9


def test_edges_wrap_at_the_antimeridian_and_stop_at_the_poles():
    z = 4
    east_edge = mercantile.Tile(15, 7, z)
    window = window_of_point(179.9, 0.5, z, 2)
    assert window.x == 15 and [t.x for t in window.tiles] == [15, 0, 15, 0]
    assert east_edge in window.tiles
    top = window_of_tile(mercantile.Tile(3, 0, z), 3)
    assert top.y == 0 and all(0 <= t.y < 16 for t in top.tiles)
    assert len(covering(mercantile.Tile(3, 0, z), 2)) == 2  # no window above the pole
    assert len(covering(mercantile.Tile(0, 5, z), 2)) == 4  # one of them wraps
    assert Window(z, 15, 5, 2) in covering(mercantile.Tile(0, 5, z), 2)
