"""Scenes as a tile source, on scenes made from the real xyz tiles (tests/support/scenes.py)."""

from __future__ import annotations

import io
import json

import mercantile
import numpy as np
import pytest
from PIL import Image

from satx.config import SourceConfig
from satx.errors import InputError
from satx.tiles.base import MISSING
from satx.tiles.scene_list import is_scene_spec
from satx.tiles.scenes import SceneTiles
from satx.tiles.sources import open_source
from tests.support import scenes
from tests.support.scenes import BLOCK, HOLE, original

pytestmark = pytest.mark.realdata
OUTSIDE = mercantile.Tile(62000, 50000, 17)


def _cut(spec: str, tiles, **options):
    source = open_source(SourceConfig(tiles=spec, **options))
    try:
        data, errors, shares = source.read_covered(tiles)
        assert (data, errors) == source.read(tiles)
        return source, data, errors, dict(zip(tiles, shares, strict=True))
    finally:
        source.close()


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_which_tiles_specs_name_scenes(tmp_path):
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "a.tif").write_bytes(b"")
    (tmp_path / "tiles" / "17" / "1").mkdir(parents=True)  # a folder of z/x/y tiles is not
    (tmp_path / "tiles" / "17" / "1" / "2.jpg").write_bytes(b"")
    assert not is_scene_spec(str(tmp_path / "tiles"))
    for spec in ("a.tif", "s/b.TIFF", "m.vrt", "gs://b/s.tif", "https://h/s.tif?sig=1", "i.json"):
        assert is_scene_spec(spec), spec
    assert is_scene_spec(str(tmp_path / "scenes")) and is_scene_spec(str(tmp_path / "*.tif"))
    for spec in ("t/{z}/{x}/{y}.jpg", "https://h/{z}/{x}/{y}.png", "a.mbtiles", "a.pmtiles"):
        assert not is_scene_spec(spec), spec


def test_a_mercator_cog_gives_back_every_tile_exactly(tmp_path):
    path = scenes.mercator_scene(tmp_path / "block.tif")
    source, data, errors, coverage = _cut(str(path), [*BLOCK, OUTSIDE])
    hole, outside = BLOCK.index(HOLE), len(BLOCK)
    assert errors[hole][0] == MISSING and errors[outside][0] == MISSING
    assert set(errors) == {hole, outside}
    for i, tile in enumerate(BLOCK):
        if i != hole:
            assert data[i][:8] == b"\x89PNG\r\n\x1a\n"
            np.testing.assert_array_equal(_pixels(data[i]), original(tile), err_msg=str(tile))
            assert coverage[tile] == 1.0
    assert source.native_zoom == 17
    (identity,) = source.identity()
    assert identity["bands"] == [1, 2, 3] and identity["rescale"] == []
    assert len(identity["sha256"]) == 64


def test_a_utm_scene_is_warped_back_within_a_few_levels(tmp_path):
    path = scenes.utm_scene(tmp_path / "utm.tif")
    source, data, errors, coverage = _cut(str(path), BLOCK)
    assert not errors
    assert coverage[HOLE] < 1e-3  # the hole: a pixel of its neighbours' warp
    errors_by_tile = []
    for tile, tile_data in zip(BLOCK[1:], data[1:], strict=True):
        got, want = _pixels(tile_data).astype(int), original(tile).astype(int)
        covered = got.sum(axis=2) > 0  # edges: the warp may leave a sliver uncovered (black)
        assert coverage[tile] > 0.99
        assert coverage[tile] == pytest.approx(covered.mean(), abs=0.01)
        errors_by_tile.append(np.abs(got - want)[covered].mean())
    # bilinear twice (to UTM, back to 3857) on real imagery: a blur, not a shift (measured:
    # 4.3-6.2 levels a tile; a one-pixel shift of the originals gives 11-16)
    assert max(errors_by_tile) < 8, errors_by_tile


def test_sixteen_bit_bands_rescale_and_a_nodata_border(tmp_path):
    path = scenes.sixteen_bit_scene(tmp_path / "b16.tif")
    centre = mercantile.Tile(62093, 50163, 17)
    corner = mercantile.Tile(62094, 50164, 17)
    source, data, errors, coverage = _cut(
        str(path), [centre, corner], bands=(3, 2, 1), rescale=(0, 1020)
    )
    assert not errors
    want = original(centre).astype(int)
    assert np.abs(_pixels(data[0]).astype(int) - want).max() <= 1  # 0 was stored as 4
    assert coverage[centre] == 1.0
    share = (256 - 64) ** 2 / 256**2  # the frame takes 64 px off two sides of a corner tile
    assert coverage[corner] == pytest.approx(share)
    assert (_pixels(data[1])[-64:] == 0).all()  # uncovered: black
    # default: each band's 2nd-98th percentile, computed once and recorded
    source, data, _, _ = _cut(str(path), [centre], bands=(3, 2, 1))
    (identity,) = source.identity()
    assert identity["dtype"] == "uint16" and len(identity["rescale"]) == 3
    for low, high in identity["rescale"]:
        assert 4 <= low < high <= 1020
    assert _pixels(data[0]).std() > 20


def test_overlapping_scenes_first_wins_and_stac_orders_by_date(tmp_path):
    rgb, mask, bounds = scenes.mosaic()
    scenes.write_scene(tmp_path / "s" / "a.tif", rgb, bounds, mask=mask)
    scenes.write_scene(tmp_path / "s" / "b.tif", 255 - rgb, bounds)  # b covers the hole too
    tile = mercantile.Tile(62093, 50163, 17)
    _, data, errors, _ = _cut(str(tmp_path / "s"), [tile, HOLE])
    assert not errors
    np.testing.assert_array_equal(_pixels(data[0]), original(tile))  # a.tif first
    assert (_pixels(data[1]) == 255).all()  # a's hole filled by b: 255 - 0
    items = [
        {
            "type": "Feature",
            "id": name,
            "properties": {"datetime": when},
            "assets": {"visual": {"href": f"s/{name}.tif"}, "thumb": {"href": "x.png"}},
        }
        for name, when in (("a", "2024-01-01T00:00:00Z"), ("b", "2025-06-01T00:00:00Z"))
    ]
    (tmp_path / "items.json").write_text(
        json.dumps({"type": "FeatureCollection", "features": items})
    )
    _, data, _, _ = _cut(str(tmp_path / "items.json"), [tile])
    np.testing.assert_array_equal(_pixels(data[0]), 255 - original(tile))  # b is newer
    (tmp_path / "item.json").write_text(json.dumps(items[0]))
    _, data, _, _ = _cut(str(tmp_path / "item.json"), [tile])
    np.testing.assert_array_equal(_pixels(data[0]), original(tile))
    with pytest.raises(
        InputError, match=r"STAC item a has no asset 'analytic' \(it has: thumb, visual\)"
    ):
        SceneTiles(SourceConfig(tiles=str(tmp_path / "item.json"), stac_asset="analytic"))


def test_bad_scenes_are_one_line_each(tmp_path):
    (tmp_path / "text.tif").write_text("not a raster")
    rgb, mask, bounds = scenes.mosaic()
    scenes.write_scene(tmp_path / "nocrs.tif", rgb, bounds, crs=None, driver="GTiff")
    scenes.sixteen_bit_scene(tmp_path / "b16.tif")
    cases = {
        str(tmp_path / "text.tif"): "is not a raster GDAL can read",
        str(tmp_path / "nocrs.tif"): "has no CRS",
        str(tmp_path / "missing.tif"): "no such scene file",
        str(tmp_path / "empty" / "*.tif"): "no GeoTIFF/COG or VRT scene there",
    }
    for spec, words in cases.items():
        with pytest.raises(InputError, match=words) as caught:
            open_source(SourceConfig(tiles=spec))
        assert "\n" not in str(caught.value)
    with pytest.raises(InputError, match=r"--bands=7: .*b16.tif has 4 band\(s\)"):
        open_source(SourceConfig(tiles=str(tmp_path / "b16.tif"), bands=(7,)))
    with pytest.raises(InputError, match="--rescale=5.0: give MIN,MAX"):
        SourceConfig(tiles="x.tif", rescale=(5.0,))


def test_make_records_from_labelled_points_over_a_scene_at_its_native_zoom(tmp_path):
    from tests.support.helpers import cli, one_error_line, read_all

    scene = scenes.mercator_scene(tmp_path / "block.tif")
    features = []
    for k, tile in enumerate(BLOCK):
        w, s, e, n = mercantile.bounds(tile)
        point = {"type": "Point", "coordinates": [(w + e) / 2, (s + n) / 2]}
        label = "building" if k % 2 else "other"
        features.append({"type": "Feature", "geometry": point, "properties": {"label": label}})
    places = tmp_path / "places.geojson"
    places.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    args = [
        "tools.make_records",
        f"--input={places}",
        f"--output={tmp_path / 'records'}",
        "--image_size=256",
        f"--tiles={scene}",
        "--split=train:0.5,val:0.25,test:0.25",
    ]
    made = cli(*args, "--zoom=native", check=True)
    assert "zoom 17: the ground resolution closest to the scene's" in made.stderr
    manifest = json.loads((tmp_path / "records" / "manifest.json").read_text())
    assert manifest["records"] == 8 and manifest["quarantine"]["count"] == 1  # the hole
    quarantined = json.loads((tmp_path / "records" / "quarantine.jsonl").read_text())
    assert quarantined["reason"] == "no_imagery"
    _, examples = read_all(tmp_path / "records")
    for _, ex in examples:
        assert ex.tile.z == 17
        np.testing.assert_array_equal(_pixels(ex.encoded), original(ex.tile))
    wrong = cli(*args[:2], f"--output={tmp_path / 'other'}", "--zoom=nativ", f"--tiles={scene}")
    assert one_error_line(wrong).endswith("--zoom=nativ: expected a whole number or native")


def test_a_cog_over_http_range_requests_with_a_token(tmp_path):
    from satx.bench.fileserver import FileServer

    scenes.mercator_scene(tmp_path / "www" / "block.tif")
    local = str(tmp_path / "www" / "block.tif")
    tiles = [t for t in BLOCK if t != HOLE]
    _, want, _, _ = _cut(local, tiles)
    token = "cog-s3cr3t-7731"
    with FileServer(tmp_path / "www", token=token) as server:
        source, got, errors, _ = _cut(server.url("block.tif"), [*tiles, HOLE])
        assert server.ranges > 0  # read by ranges, not downloaded whole
    assert got[:-1] == want and errors[len(tiles)][0] == MISSING
    (identity,) = source.identity()
    assert identity["etag"].startswith('"') and token not in json.dumps(identity)
    assert token not in source.description and "access_token=" in source.description
    with FileServer(tmp_path / "www", token=token) as server:
        wrong = server.url("block.tif").replace(token, "wrong-token-000")
        with pytest.raises(InputError) as caught:
            open_source(SourceConfig(tiles=wrong))
    assert "wrong-token-000" not in str(caught.value)


def test_a_server_that_drops_connections_is_read_through(tmp_path):
    """A response cut mid-body: GDAL would keep failing that block; the source retries it."""
    from satx.bench.fileserver import FileServer

    scenes.mercator_scene(tmp_path / "www" / "block.tif")
    tiles = [t for t in BLOCK if t != HOLE]
    _, want, _, _ = _cut(str(tmp_path / "www" / "block.tif"), tiles)
    with FileServer(tmp_path / "www", drops=3) as server:
        _, got, errors, _ = _cut(server.url("block.tif"), tiles, fetch_threads=2)
        assert server.dropped == 3
    assert not errors and got == want
    with FileServer(tmp_path / "www", drops=1000) as server:  # always cut: each tile says so
        source = open_source(SourceConfig(tiles=server.url("block.tif"), fetch_retries=1))
        try:
            _, errors = source.read(tiles[:2])
        finally:
            source.close()
    assert {reason for reason, _ in errors.values()} == {"unreadable"}
    assert all("block.tif" in detail for _, detail in errors.values())


def test_a_stac_item_over_https_sends_the_header_and_retries(tmp_path, monkeypatch):
    from satx.bench.fileserver import FileServer

    scenes.mercator_scene(tmp_path / "www" / "block.tif")
    item = {
        "type": "Feature",
        "id": "block",
        "properties": {"datetime": "2025-01-01T00:00:00Z"},
        "assets": {"visual": {"href": "block.tif"}},  # relative to the item's URL
    }
    (tmp_path / "www" / "item.json").write_text(json.dumps(item))
    secret = "hdr-s3cr3t-9120"
    monkeypatch.setenv("SCENE_KEY", secret)
    monkeypatch.delenv("GDAL_HTTP_HEADERS", raising=False)
    tile = BLOCK[4]
    with FileServer(tmp_path / "www", header=("X-Key", secret), fails=2) as server:
        config = SourceConfig(
            tiles=server.url("item.json"), tile_header=("X-Key: ${SCENE_KEY}",), fetch_threads=1
        )
        source = open_source(config)
        try:
            data, errors = source.read([tile])
            recorded = json.dumps(source.identity())
        finally:
            source.close()
        assert server.failed == 2 and server.ranges > 0  # two 503s, then range reads
    assert not errors
    np.testing.assert_array_equal(_pixels(data[0]), original(tile))
    assert secret not in recorded and secret not in source.description
    with (
        FileServer(tmp_path / "www", header=("X-Key", secret)) as server,
        pytest.raises(InputError, match=r"item.json: HTTP 401") as caught,
    ):
        open_source(SourceConfig(tiles=server.url("item.json")))
    assert "\n" not in str(caught.value)


def test_a_cog_on_the_gcs_emulator(gcs, tmp_path):
    from satx.io import storage
    from tests.support.helpers import GCS_BUCKET

    path = scenes.mercator_scene(tmp_path / "block.tif")
    url = f"gs://{GCS_BUCKET}/scenes/block.tif"
    storage.open_store(f"gs://{GCS_BUCKET}/scenes").write_bytes("block.tif", path.read_bytes())
    tiles = [t for t in BLOCK if t != HOLE]
    _, want, _, _ = _cut(str(path), tiles)
    source, got, errors, coverage = _cut(url, tiles)
    assert not errors and got == want and set(coverage.values()) == {1.0}
    (identity,) = source.identity()
    assert identity["etag"] and "sha256" not in identity


def test_native_zoom_of_a_remote_scene(tmp_path, monkeypatch):
    """make_records asks a remote scene's zoom before it opens the source, in a process where
    GDAL's folder-listing setting is not yet set (it opens through `open_scenes` too)."""
    from satx.bench.fileserver import FileServer
    from tests.support.helpers import cli

    scenes.mercator_scene(tmp_path / "www" / "block.tif")
    tile = BLOCK[4]
    w, s, e, n = mercantile.bounds(tile)
    places = tmp_path / "places.csv"
    places.write_text(f"lon,lat,label\n{(w + e) / 2},{(s + n) / 2},school\n")
    monkeypatch.delenv("GDAL_DISABLE_READDIR_ON_OPEN", raising=False)
    with FileServer(tmp_path / "www") as server:
        made = cli(
            "tools.make_records",
            f"--input={places}",
            f"--output={tmp_path / 'records'}",
            f"--tiles={server.url('block.tif')}",
            "--zoom=native",
            "--split=train:1",
            check=True,
            timeout=120,
        )
    assert "zoom 17: the ground resolution closest to the scene's" in made.stderr
