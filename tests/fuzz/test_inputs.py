"""Fuzzing every parser of user input: a result or one `SatxError` line, never another exception.

Hypothesis draws the inputs (seeded: `derandomize`, so CI sees the same examples every run)
for tile CSVs, GeoJSON places, known-schools files, areas of interest, `--bbox`/`--zoom`,
tile templates and mask files. Each example runs the real reader on a real file.
"""

from __future__ import annotations

import json
import math
import string
from pathlib import Path

import mercantile
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satx.errors import SatxError
from satx.tiles.refs import Rejection, TileRef

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# JSON values as a careless or hostile file holds them
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
coordinates = st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.text(max_size=4)
geometries = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Point", "Polygon", "MultiPoint", "LineString", "Nope", 3]),
        "coordinates": st.recursive(coordinates, lambda c: st.lists(c, max_size=5), max_leaves=12),
    }
)
features = st.fixed_dictionaries(
    {
        "type": st.just("Feature"),
        "geometry": geometries | json_values,
        "properties": st.dictionaries(st.sampled_from(["label", "id", "name"]), json_values)
        | json_values,
    }
)
collections = st.fixed_dictionaries(
    {"type": st.just("FeatureCollection"), "features": st.lists(features, max_size=4) | json_values}
) | st.fixed_dictionaries({"type": st.just("FeatureCollection"), "crs": json_values})
geojson_texts = (collections | features | json_values).map(json.dumps) | st.text(max_size=60)
cells = st.text(alphabet=string.printable + "é\x00\ufeff", max_size=10) | st.sampled_from(
    ["", "18", "-1", "nan", "1e308", "77128", "school", "a/b.jpg", "1,2", '"']
)
csv_texts = st.builds(
    lambda header, rows, sep: sep.join([",".join(header), *(",".join(r) for r in rows)]),
    st.lists(
        st.sampled_from(["path", "z", "x", "y", "lon", "lat", "label", "split", "id", ""]),
        max_size=6,
    ),
    st.lists(st.lists(cells, max_size=7), max_size=5),
    st.sampled_from(["\n", "\r\n", "\r"]),
)
raw_bytes = st.binary(max_size=200)


def _file(root: Path, name: str, content: str | bytes) -> str:
    path = root / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    else:
        path.write_bytes(content)
    return str(path)


def _one_line(err: SatxError) -> None:
    assert str(err) and "\n" not in str(err).strip()


@FUZZ
@given(text=csv_texts | raw_bytes, zoom=st.integers(0, 24), labels=st.booleans())
def test_tile_csvs(tmp_path, text, zoom, labels):
    from satx.tiles.tables import read_rows

    path = _file(tmp_path, "tiles.csv", text)
    try:
        rows = read_rows(path, zoom, labels)
    except SatxError as err:
        return _one_line(err)
    assert rows and all(isinstance(r, TileRef | Rejection) for r in rows)


@FUZZ
@given(text=geojson_texts | raw_bytes, zoom=st.integers(0, 20))
def test_geojson_places(tmp_path, text, zoom):
    from satx.tiles.places import read_geojson

    path = _file(tmp_path, "places.geojson", text)
    try:
        listing = read_geojson(path, zoom)
    except SatxError as err:
        return _one_line(err)
    assert all(isinstance(r, TileRef) for r in listing.refs)


@FUZZ
@given(text=geojson_texts | csv_texts | raw_bytes, suffix=st.sampled_from([".geojson", ".csv"]))
def test_known_schools(tmp_path, text, suffix):
    from satx.sites.known import read_known

    path = _file(tmp_path, f"known{suffix}", text)
    try:
        known = read_known(path)
    except SatxError as err:
        return _one_line(err)
    assert len(known) > 0


@FUZZ
@given(text=geojson_texts | raw_bytes, zoom=st.integers(0, 16))
def test_areas_of_interest(tmp_path, text, zoom):
    from satx.tiles.aoi import load_aoi

    path = _file(tmp_path, "aoi.geojson", text)
    try:
        area = load_aoi(path, zoom)
    except SatxError as err:
        return _one_line(err)
    assert len(area) >= 0


@FUZZ
@given(
    bbox=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=5),
    zoom=st.integers(-2, 40),
)
def test_bboxes_and_zooms(bbox, zoom):
    from satx.config import PredictConfig
    from satx.tiles.areas import BboxArea

    try:
        config = PredictConfig.make(
            model="m", output="o", bbox=tuple(bbox), zoom=zoom, dry_run=True
        )
        area = BboxArea(config.inputs.bbox, config.inputs.zoom)
    except SatxError as err:
        return _one_line(err)
    assert all(math.isfinite(v) for v in bbox) and 0 <= zoom <= 24
    if len(area):
        assert isinstance(area.tiles(0, 1)[0], mercantile.Tile)


@FUZZ
@given(
    template=st.text(alphabet=string.printable, max_size=40)
    | st.sampled_from(
        ["{z}/{x}/{y}", "http://h/{s}/{z}/{x}/{y}", "gs://b/{quadkey}", "a/{-y}"]
    ).flatmap(lambda t: st.text(max_size=5).map(lambda s: s + t)),
    subdomains=st.lists(st.text(max_size=3), max_size=3),
)
def test_tile_templates(template, subdomains):
    from satx.tiles.template import TileTemplate

    try:
        located = TileTemplate(template, subdomains).location(mercantile.Tile(3, 5, 4))
    except SatxError as err:
        return _one_line(err)
    assert isinstance(located, str)


@FUZZ
@given(
    content=geojson_texts | raw_bytes,
    suffix=st.sampled_from([".geojson", ".parquet", ".fgb", ".tif", ".txt"]),
)
def test_mask_files(tmp_path, content, suffix):
    pytest.importorskip("pyogrio", reason="masks need satx[geo]")
    from satx.tiles.mask import mask_keys

    path = _file(tmp_path, f"mask{suffix}", content)
    try:
        keys = mask_keys(path, 16, 50.0)
    except SatxError as err:
        return _one_line(err)
    assert keys.ndim == 1


# -- the review API: random JSON and headers ----------------------------------------------

ROUTES = ["/", "/api/config", "/api/next", "/api/decision", "/api/undo", "/api/stats"]
ROUTES += ["/overview.svg", "/tiles/1/0/0", "/tiles/1/-1/1", "/static/review.js", "/x"]
header_names = st.sampled_from(
    ["Host", "Origin", "Content-Type", "Cookie", "Authorization", "Sec-Fetch-Site", "X-A"]
)
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=40)


@pytest.fixture(scope="module")
def review(tmp_path_factory):
    from tests.support.review import RunningReview, review_config, write_prediction_set

    root = tmp_path_factory.mktemp("fuzz_review")
    config = review_config(write_prediction_set(root, side=4), root / "r.sqlite", token="t" * 20)
    running = RunningReview(config)
    yield running
    running.stop()


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE"]),
    path=st.sampled_from(ROUTES),
    query=st.text(max_size=20),
    headers=st.dictionaries(header_names, header_values, max_size=6),
    body=json_values.map(lambda v: json.dumps(v).encode()) | raw_bytes,
    authorised=st.booleans(),
)
def test_review_api(review, method, path, query, headers, body, authorised):
    import io

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    if authorised:
        environ["HTTP_AUTHORIZATION"] = "Bearer " + "t" * 20
        environ["HTTP_HOST"] = "127.0.0.1"
    answered = []
    chunks = review.server.wsgi(environ, lambda status, head: answered.append((status, head)))
    status = int(answered[0][0].split()[0])
    assert 200 <= status < 500, (status, b"".join(chunks)[:200])
    assert dict(answered[0][1])["Content-Length"].isdigit()


@FUZZ
@given(
    data=st.binary(max_size=300)
    | st.lists(header_values, max_size=5).map(
        lambda lines: ("\r\n".join(["POST /api/undo HTTP/1.1", *lines]) + "\r\n\r\n").encode()
    )
)
def test_review_server_survives_raw_bytes(review, data):
    from tests.review.test_hostile import exchange, raw, request

    answer = exchange(review.port, data, timeout=10)
    assert not answer or answer.startswith(b"HTTP/1.")
    assert b" 500 " not in answer.split(b"\r\n", 1)[0]
    assert raw(
        review.port, request(review.port, "GET", "/api/stats", Authorization="Bearer " + "t" * 20)
    ) == [200]
