"""Tile sources against real servers and files: a loopback HTTP server injecting faults,
MBTiles (table and view) and PMTiles (local and gs://) written here, the on-disk cache."""

import time

import mercantile
import pytest

from satx.bench.tileserver import TileServer
from satx.config import SourceConfig
from satx.errors import InputError
from satx.io import storage
from satx.tiles.sources import open_source
from satx.tiles.template import TileTemplate
from tests.support.helpers import GCS_BUCKET, write_mbtiles, write_pmtiles, xyz_folder

TILES = list(mercantile.tiles(-74.08, 4.60, -74.075, 4.605, 18))  # 20 tiles in Bogota
ABSENT = mercantile.Tile(x=1, y=1, z=18)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "xyz"
    return root, xyz_folder(root, TILES)


def _read(config, tiles=(*TILES, ABSENT)):
    source = open_source(config)
    try:
        return source.read(list(tiles))
    finally:
        source.close()


def _fast(tiles, **kw):
    return SourceConfig(tiles=tiles, fetch_timeout=0.5, **{"fetch_retries": 3, **kw})


def test_template_placeholders_follow_mercantile():
    t = mercantile.Tile(x=77200, y=126500, z=18)
    url = TileTemplate("https://{s}.h/{z}/{x}/{-y}/{quadkey}?bbox={bbox}", ("a", "b")).location(t)
    bounds = ",".join(f"{v:.3f}" for v in mercantile.xy_bounds(t))
    assert url == f"https://a.h/18/77200/{2**18 - 1 - 126500}/{mercantile.quadkey(t)}?bbox={bounds}"
    with pytest.raises(InputError, match="tile_subdomains"):
        TileTemplate("https://{s}.h/{z}/{x}/{y}.png")
    with pytest.raises(InputError, match=r"access_token=REDACTED"):
        TileTemplate("https://h/tiles.png?access_token=abcd1234")


def test_every_source_gives_the_same_bytes(folder, tmp_path, gcs):
    root, expected = folder
    write_mbtiles(tmp_path / "t.mbtiles", expected)
    write_mbtiles(tmp_path / "v.mbtiles", expected, view=True)
    write_pmtiles(tmp_path / "t.pmtiles", expected)
    storage.open_store(f"gs://{GCS_BUCKET}/pm").write_bytes(
        "t.pmtiles", (tmp_path / "t.pmtiles").read_bytes()
    )
    with TileServer(root) as server:
        specs = [
            str(root),
            server.template,
            server.tms_template,
            server.wms_template,
            str(tmp_path / "t.mbtiles"),
            str(tmp_path / "v.mbtiles"),
            str(tmp_path / "t.pmtiles"),
            f"gs://{GCS_BUCKET}/pm/t.pmtiles",
        ]
        for spec in specs:
            data, errors = _read(_fast(spec))
            assert data[:-1] == [expected[t] for t in TILES], spec
            assert data[-1] is None and errors.keys() == {len(TILES)}, spec
            assert errors[len(TILES)][0] == "missing", spec


def test_http_retries_faults_and_reports_what_it_cannot_fetch(folder):
    root, expected = folder
    key = [f"{t.z}/{t.x}/{t.y}" for t in TILES]
    faults = {
        key[0]: ["500", "500"],  # recovers on the third try
        key[1]: ["429"],  # waits for Retry-After: 1
        key[2]: ["slow"],  # past the 0.5 s timeout, then fine
        key[3]: ["html", "*"],  # a quota page with status 200, every time
        key[4]: ["500", "*"],  # never recovers
        key[5]: ["404"],  # no imagery
        key[6]: ["302", "302"],  # redirected twice, then served
    }
    with TileServer(root, faults=faults, slow_s=1.5) as server:
        start = time.monotonic()
        data, errors = _read(_fast(server.template), TILES)
        elapsed = time.monotonic() - start
        requests = dict(server.requests)
    for i in (0, 1, 2, *range(6, len(TILES))):
        assert data[i] == expected[TILES[i]] and i not in errors, i
    assert requests[key[0]] == 3 and requests[key[1]] == 2 and requests[key[2]] == 2
    assert requests[key[6]] == 3
    assert elapsed >= 1.0  # Retry-After was honoured
    assert errors[3][0] == "not_an_image" and "text/html" in errors[3][1]
    assert requests[key[3]] == 1  # a 200 is not retried
    assert errors[4][0] == "fetch_failed" and "HTTP 500" in errors[4][1]
    assert requests[key[4]] == 4  # one try and three retries
    assert errors[5][0] == "missing" and "404" in errors[5][1]
    assert all(data[i] is None for i in errors)


def test_refused_token_stops_with_a_redacted_message(folder):
    root, _ = folder
    with TileServer(root, token="s3cr3t-right") as server:
        url = server.template + "?access_token=s3cr3t-wrong"
        with pytest.raises(InputError, match="HTTP 401") as err:
            _read(_fast(url))
        assert "s3cr3t-wrong" not in str(err.value) and "REDACTED" in str(err.value)
        data, errors = _read(_fast(server.template + "?access_token=s3cr3t-right"), TILES)
        assert not errors and all(data)


def test_header_from_the_environment_authorises(folder, monkeypatch):
    root, _ = folder
    monkeypatch.setenv("SATX_TEST_TILE_TOKEN", "hdr-s3cr3t-value")
    with TileServer(root, header=("Authorization", "Bearer hdr-s3cr3t-value")) as server:
        config = _fast(
            server.template, tile_header=("Authorization: Bearer ${SATX_TEST_TILE_TOKEN}",)
        )
        data, errors = _read(config, TILES)
        assert not errors and all(data)
    monkeypatch.delenv("SATX_TEST_TILE_TOKEN")
    with pytest.raises(InputError, match="SATX_TEST_TILE_TOKEN is unset"):
        _read(config)


def test_max_rps_caps_the_request_rate(folder):
    root, _ = folder
    with TileServer(root) as server:
        start = time.monotonic()
        _read(_fast(server.template, max_rps=20), TILES)  # 20 requests at 20/s
        assert time.monotonic() - start >= 0.9
        assert sum(server.requests.values()) == len(TILES)


def test_tile_cache_answers_a_second_read_without_fetching(folder, tmp_path):
    root, expected = folder
    key = f"{TILES[0].z}/{TILES[0].x}/{TILES[0].y}"
    with TileServer(root, faults={key: ["500", "*"]}) as server:
        config = _fast(server.template, tile_cache=str(tmp_path / "cache"), fetch_retries=0)
        first = _read(config)
        served = sum(server.requests.values())
        second = _read(config)
        # the error is tried again; tiles and the no-imagery mark come from disk
        assert sum(server.requests.values()) == served + 1
    assert first[0] == second[0]
    assert {i: r for i, (r, _) in first[1].items()} == {i: r for i, (r, _) in second[1].items()}
    assert first[1][0][0] == "fetch_failed" and first[1][len(TILES)][0] == "missing"
    cached = tmp_path / "cache" / str(TILES[1].z) / str(TILES[1].x) / str(TILES[1].y)
    assert cached.read_bytes() == expected[TILES[1]]
    assert not (tmp_path / "cache" / key).exists()


def test_bad_archives_are_named(tmp_path):
    (tmp_path / "bad.mbtiles").write_bytes(b"not sqlite at all" * 10)
    (tmp_path / "bad.pmtiles").write_bytes(b"not a pmtiles archive" * 10)
    with pytest.raises(InputError, match="bad.mbtiles: not an MBTiles file"):
        open_source(SourceConfig(tiles=str(tmp_path / "bad.mbtiles")))
    with pytest.raises(InputError, match="bad.pmtiles: not a PMTiles v3 archive"):
        open_source(SourceConfig(tiles=str(tmp_path / "bad.pmtiles")))
    with pytest.raises(InputError, match="no such MBTiles file"):
        open_source(SourceConfig(tiles=str(tmp_path / "none.mbtiles")))
