import io

import mercantile
import numpy as np
from PIL import Image

from satx import geo
from satx.records.sample import draw_tile, sample_addresses, write_sample_tiles

COLOMBIA = (-79.1, -4.3, -66.8, 12.5)  # west, south, east, north


def test_sample_tiles_are_deterministic_named_by_real_colombian_z18_tiles(tmp_path):
    a = write_sample_tiles(tmp_path / "a", count=30, seed=1, size=64)
    b = write_sample_tiles(tmp_path / "b", count=30, seed=1, size=64)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert {p.parent.name for p in a} == {"school", "not_school"}
    tiles = [geo.parse_tile_path(p.name) for p in a]
    assert len(set(tiles)) == 30 and all(t.z == 18 for t in tiles)
    for t in tiles:
        b = mercantile.bounds(t)
        assert COLOMBIA[0] < b.west < COLOMBIA[2] and COLOMBIA[1] < b.south < COLOMBIA[3]
    with Image.open(io.BytesIO(a[0].read_bytes())) as im:
        assert im.format == "JPEG" and im.size == (64, 64) and im.mode == "RGB"


def test_default_tiles_are_256_and_spread_over_several_split_blocks():
    addresses = sample_addresses(240, 0.3, seed=0)
    assert sum(1 for label, _ in addresses if label == "school") == 72
    assert len({geo.parent_at_zoom(t, 12) for _, t in addresses}) >= 24
    assert draw_tile("school", np.random.default_rng(0)).size == (256, 256)


def test_classes_differ_visibly():
    """School tiles carry bright roofs and pitch lines; not_school tiles rarely do."""
    rng = np.random.default_rng(0)

    def bright_fraction(label):
        arr = np.asarray(draw_tile(label, rng, 128))
        return float((arr.min(axis=-1) > 185).mean())

    school = [bright_fraction("school") for _ in range(20)]
    other = [bright_fraction("not_school") for _ in range(20)]
    assert min(school) > 0.004 and max(other) < 0.001
