"""Hits -> sites on hand-made grids and against a brute-force reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import shapely

from satx.errors import InputError
from satx.sites.grid import neighbour_offsets, tile_graph
from satx.sites.table import make_sites, members, outlines

Z = 18
X0, Y0 = 77_000, 127_000
L_SHAPE = [(0, 0), (0, 1), (0, 2), (1, 2)]
DIAGONAL = [(5, 0), (6, 1)]
ISLANDS = [(10, 0), (10, 5)]
GAP = [(0, 10), (2, 10)]  # one tile without a hit between them
GRID = L_SHAPE + DIAGONAL + ISLANDS + GAP


def _groups(cells, connectivity, max_gap, scores=None):
    x = np.array([X0 + c[0] for c in cells])
    y = np.array([Y0 + c[1] for c in cells])
    score = np.linspace(0.9, 0.6, len(cells)) if scores is None else np.asarray(scores)
    graph = tile_graph(Z, x, y, connectivity, max_gap)
    sites = make_sites(graph, score)
    found = {}
    for i, cell in enumerate(cells):
        found.setdefault(sites.site_of[i], set()).add(cell)
    return sorted(sorted(g) for g in found.values()), sites, graph


@pytest.mark.parametrize(
    ("connectivity", "max_gap", "expected"),
    [
        (8, 0, [L_SHAPE, DIAGONAL, [ISLANDS[0]], [ISLANDS[1]], [GAP[0]], [GAP[1]]]),
        (
            4,
            0,
            [L_SHAPE, [DIAGONAL[0]], [DIAGONAL[1]], [ISLANDS[0]], [ISLANDS[1]], [GAP[0]], [GAP[1]]],
        ),
        (8, 1, [L_SHAPE, DIAGONAL, [ISLANDS[0]], [ISLANDS[1]], GAP]),
        (4, 1, [L_SHAPE, DIAGONAL, [ISLANDS[0]], [ISLANDS[1]], GAP]),
    ],
)
def test_hand_made_grid_gives_the_expected_sites(connectivity, max_gap, expected):
    groups, sites, _ = _groups(GRID, connectivity, max_gap)
    assert groups == sorted(sorted(g) for g in expected)
    # every hit belongs to exactly one site, and the sizes add up
    assert (sites.site_of >= 0).all() and sites.tiles.sum() == len(GRID)
    assert len(sites) == len(expected) == len(set(sites.ids))


def test_the_gap_rule_is_chebyshev_for_8_and_manhattan_for_4():
    assert neighbour_offsets(8, 0) == [(0, 1), (1, -1), (1, 0), (1, 1)]
    assert neighbour_offsets(4, 0) == [(0, 1), (1, 0)]
    # two tiles on a knight's move are 8-connected with a gap of 1, 4-connected with a gap of 2
    assert (1, 2) in neighbour_offsets(8, 1) and (1, 2) not in neighbour_offsets(4, 1)
    assert (1, 2) in neighbour_offsets(4, 2)
    with pytest.raises(InputError, match="4 or 8"):
        neighbour_offsets(6, 0)


def test_ids_and_ranks_do_not_depend_on_the_input_order():
    rng = np.random.default_rng(3)
    scores = rng.uniform(0.5, 1, len(GRID)).round(3)
    _, sites, graph = _groups(GRID, 8, 0, scores)
    order = rng.permutation(len(GRID))
    _, again, graph2 = _groups([GRID[i] for i in order], 8, 0, scores[order])
    assert again.ids == sites.ids
    assert np.array_equal(again.tiles, sites.tiles)
    assert np.array_equal(again.max_score, sites.max_score)
    # the id is the quadkey of the best tile: the L-shape's best is its highest score
    best = max(range(4), key=lambda i: scores[i])
    import mercantile

    l_id = mercantile.quadkey(X0 + GRID[best][0], Y0 + GRID[best][1], Z)
    assert l_id in sites.ids
    # ranked by best score
    assert list(sites.max_score) == sorted(sites.max_score, reverse=True)


def test_the_point_is_the_score_weighted_centre():
    cells = [(0, 0), (1, 0)]
    _, sites, _ = _groups(cells, 8, 0, [0.9, 0.3])
    from satx import geo

    lon, lat = geo.grid_to_lonlat(Z, X0 + (0.5 * 0.9 + 1.5 * 0.3) / 1.2, Y0 + 0.5)
    assert sites.lon[0] == pytest.approx(lon, abs=1e-9)
    assert sites.lat[0] == pytest.approx(lat, abs=1e-9)
    assert sites.mean_score[0] == pytest.approx(0.6)


def test_a_tile_listed_twice_is_refused():
    with pytest.raises(InputError, match="listed twice"):
        tile_graph(Z, np.array([1, 1]), np.array([2, 2]))


def test_columns_wrap_at_the_antimeridian():
    side = 1 << 3
    graph = tile_graph(3, np.array([side - 1, 0]), np.array([4, 4]))
    assert graph.components()[0] == 1


def _reference(cells, connectivity, reach):
    """Union-find over every pair: the definition itself."""
    parent = list(range(len(cells)))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in itertools.combinations(range(len(cells)), 2):
        dx, dy = abs(cells[i][0] - cells[j][0]), abs(cells[i][1] - cells[j][1])
        near = max(dx, dy) if connectivity == 8 else dx + dy
        if near <= reach:
            parent[find(i)] = find(j)
    return sorted(
        sorted(cells[k] for k in range(len(cells)) if find(k) == r)
        for r in {find(k) for k in range(len(cells))}
    )


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("connectivity", "max_gap"), [(4, 0), (8, 0), (4, 1), (8, 2)])
def test_components_equal_a_brute_force_reference(seed, connectivity, max_gap):
    rng = np.random.default_rng(seed)
    cells = sorted({(int(a), int(b)) for a, b in rng.integers(0, 30, size=(150, 2))})
    groups, _, _ = _groups(cells, connectivity, max_gap, rng.uniform(0, 1, len(cells)))
    assert groups == _reference(cells, connectivity, 1 + max_gap)


def test_a_mask_regroups_a_subset_without_a_new_search():
    cells = [(0, 0), (1, 0), (2, 0)]
    graph = tile_graph(Z, np.array([X0 + c[0] for c in cells]), np.array([Y0] * 3))
    count, labels = graph.components(np.array([True, False, True]))
    assert count == 2 and labels[1] == -1 and labels[0] != labels[2]


def test_outlines_are_the_union_of_each_sites_tiles():
    ring = [(i, j) for i in range(3) for j in range(3) if (i, j) != (1, 1)]  # a hole inside
    cells = L_SHAPE + [(20 + i, j) for i, j in ring] + [(40, 0), (41, 1)]  # and a diagonal pair
    _, sites, graph = _groups(cells, 8, 0)
    shapes = outlines(sites, graph)
    order, starts = members(sites)
    for k, shape in enumerate(shapes):
        assert shape.is_valid
        tiles = order[starts[k] : starts[k + 1]]
        # one tile's box in degrees, per tile: the union covers exactly the tiles
        from satx import geo

        boxes = []
        for i in tiles:
            (w, e), (n, s) = geo.grid_to_lonlat(
                Z, [graph.x[i], graph.x[i] + 1], [graph.y[i], graph.y[i] + 1]
            )
            boxes.append(shapely.box(w, s, e, n))
        union = shapely.union_all(boxes)
        assert shape.symmetric_difference(union).area < 1e-4 * union.area  # 7 decimals: 1 cm
        assert shapely.is_ccw(shapely.get_exterior_ring(shapely.get_geometry(shape, 0)))
    kinds = sorted(
        (int(sites.tiles[k]), shapes[k].geom_type, len(shapely.get_rings(shapes[k])))
        for k in range(len(sites))
    )
    assert (4, "Polygon", 1) in kinds  # the L
    assert (8, "Polygon", 2) in kinds  # the ring: an exterior and a hole
    assert any(t == 2 and kind == "MultiPolygon" for t, kind, _ in kinds)  # corners only
