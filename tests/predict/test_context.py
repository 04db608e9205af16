"""`satx.predict --context=2`: overlapping windows over an area, each tile read once (issue 39)."""

import csv
import io
import json

import keras
import mercantile
import numpy as np
import pytest
from PIL import Image

from satx import geo
from satx.bench.tileserver import TileServer
from satx.errors import InputError
from satx.predict.run import predict
from satx.tiles.windows import covering
from tests.support.helpers import cli, encode, noise, write
from tests.support.predict import AREA_BBOX, predict_config, predicted_errors, predicted_rows

SIDE = 16  # the tiny model takes 32 px: a 2x2 window of 16 px tiles, so nothing is resized


@pytest.fixture(scope="module")
def window_tiles(tmp_path_factory):
    """AREA_BBOX's tiles and a ring of neighbours; a neighbour missing, an area tile corrupt."""
    root = tmp_path_factory.mktemp("windows")
    area = list(mercantile.tiles(*AREA_BBOX, 18))
    xs, ys = [t.x for t in area], [t.y for t in area]
    ring = [
        mercantile.Tile(x, y, 18)
        for x in range(min(xs) - 1, max(xs) + 2)
        for y in range(min(ys) - 1, max(ys) + 2)
    ]
    data = {t: encode(noise(900 + i, (SIDE, SIDE, 3)), "PNG") for i, t in enumerate(ring)}
    gap = mercantile.Tile(min(xs) - 1, min(ys) + 1, 18)  # a neighbour without imagery
    corrupt = area[7]
    del data[gap]
    data[corrupt] = data[corrupt][:60]
    for t, d in data.items():
        write(root / f"18/{t.x}/{t.y}.jpg", d)
    return {"root": root, "area": area, "data": data, "gap": gap, "corrupt": corrupt}


def _brute_force(model_path, window_tiles):
    """Every window over the area scored on its own (Pillow decodes, numpy mosaics)."""
    model = keras.saving.load_model(model_path, compile=False)
    data = window_tiles["data"]

    def pixels(tile):
        try:
            return np.asarray(Image.open(io.BytesIO(data[tile])).convert("RGB"))
        except (KeyError, OSError):
            return None

    scores = {}
    for tile in window_tiles["area"]:
        for w in covering(tile, 2):
            parts = [pixels(t) for t in w.tiles]
            if w.name in scores or any(p is None for p in parts):
                continue
            image = np.concatenate(
                [np.concatenate(parts[:2], axis=1), np.concatenate(parts[2:], axis=1)]
            )
            scores[w.name] = float(model(image[None], training=False).numpy()[0, 1])
    return scores


def test_windows_equal_a_brute_force_and_each_tile_is_read_once(tiny_model, window_tiles, tmp_path):
    expected = _brute_force(tiny_model["root"] / "model.keras", window_tiles)
    area, corrupt = window_tiles["area"], window_tiles["corrupt"]
    with TileServer(window_tiles["root"]) as server:
        out = tmp_path / "one"
        summary = predict(
            predict_config(
                tiny_model["export"],
                out,
                tiles=server.template,
                bbox=AREA_BBOX,
                zoom=18,
                context=2,
                chunk_size=len(area),
                formats=("csv", "parquet"),
            )
        )
        # one chunk: every tile its windows hold was requested exactly once
        wanted = {t for tile in area for w in covering(tile, 2) for t in w.tiles}
        assert set(server.requests) == {geo.tile_key(t) for t in wanted}
        assert set(server.requests.values()) == {1}
    assert summary.tiles == len(area) and summary.errors == 1
    assert predicted_errors(out) == {geo.tile_key(corrupt): "corrupt"}
    rows = {r["source_id"]: r for r in predicted_rows(out)}
    assert len(rows) == len(area) - 1
    for tile in area:
        if tile == corrupt:
            continue
        mine = [expected[w.name] for w in covering(tile, 2) if w.name in expected]
        row = rows[geo.tile_key(tile)]
        assert float(row["score_school"]) == pytest.approx(max(mine), abs=1e-5)
        assert float(row["score_mean"]) == pytest.approx(np.mean(mine), abs=1e-4)
        assert int(row["windows"]) == len(mine)
        assert (int(row["x"]), int(row["y"])) == (tile.x, tile.y)  # placed at its own tile
    # the windows holding the gap or the corrupt tile were left out: fewer than 4 for their tiles
    assert {int(r["windows"]) for r in rows.values()} == {2, 3, 4}
    windows = list(csv.DictReader((out / "windows.csv").open()))
    assert sorted(r["window"] for r in windows) == sorted(expected)
    for r in windows:
        assert float(r["score_school"]) == pytest.approx(expected[r["window"]], abs=1e-5)
        w, s, e, n = (float(r[k]) for k in ("west", "south", "east", "north"))
        top_left = mercantile.Tile(int(r["x"]), int(r["y"]), 18)
        assert (w, n) == pytest.approx(mercantile.ul(top_left), abs=1e-6)
        centre = mercantile.ul(top_left.x + 1, top_left.y + 1, 18)  # the four tiles' corner
        assert (float(r["lon"]), float(r["lat"])) == pytest.approx(tuple(centre), abs=1e-6)
    # GeoParquet rows carry the count as an integer
    import pyarrow.parquet as pq

    table = pq.read_table(out / "predictions.parquet")
    assert str(table.schema.field("windows").type) == "int64"
    run = json.loads((out / "predict_run.json").read_text())
    assert run["input"]["context"] == 2 and run["files"]["windows"].endswith("windows.csv")


def test_chunks_write_each_window_once_and_score_as_one_chunk(tiny_model, window_tiles, tmp_path):
    """Small chunks re-read tiles at their borders, but every window is written by one chunk."""
    runs = {}
    for chunk_size in (len(window_tiles["area"]), 7):
        out = tmp_path / f"c{chunk_size}"
        predict(
            predict_config(
                tiny_model["export"],
                out,
                tiles=str(window_tiles["root"] / "{z}/{x}/{y}.jpg"),
                bbox=AREA_BBOX,
                zoom=18,
                context=2,
                chunk_size=chunk_size,
            )
        )
        runs[chunk_size] = out
    one, seven = runs[len(window_tiles["area"])], runs[7]
    for name, key in (("predictions.csv", "source_id"), ("windows.csv", "window")):
        a, b = ({r[key]: r for r in csv.DictReader((run / name).open())} for run in (one, seven))
        assert sorted(a) == sorted(b)
        assert len(b) == len((seven / name).read_text().splitlines()) - 1  # no row twice
        for k, row in a.items():  # batches differ: the last float digit may too
            assert float(b[k]["score"]) == pytest.approx(float(row["score"]), abs=2e-6)


def test_context_needs_an_area():
    with pytest.raises(InputError, match="--context=2 scores the windows of an area"):
        predict_config("m", "o", input="tiles/", context=2)


def _windows_of(out):
    return {r["window"]: float(r["score"]) for r in csv.DictReader((out / "windows.csv").open())}


def test_beam_equals_local(tiny_model, window_tiles, tmp_path):
    pytest.importorskip("apache_beam", reason="the Beam engine needs the satx[beam] extra")
    from satx.predict.beam import predict_beam

    kw = dict(
        tiles=str(window_tiles["root"] / "{z}/{x}/{y}.jpg"), bbox=AREA_BBOX, zoom=18, context=2
    )
    local = predict(predict_config(tiny_model["export"], tmp_path / "local", **kw))
    beam = predict_beam(
        predict_config(tiny_model["export"], tmp_path / "beam", engine="beam", **kw)
    )
    for name in ("predictions.csv", "errors.csv", "windows.csv"):
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "beam" / name).read_bytes()
    assert (local.tiles, local.errors, local.kept) == (beam.tiles, beam.errors, beam.kept)


@pytest.mark.slow
def test_kill_9_and_resume_on_two_devices_gives_each_tile_and_window_once(
    tiny_model, window_tiles, tmp_path
):
    tiles = str(window_tiles["root"] / "{z}/{x}/{y}.jpg")
    reference = tmp_path / "ref"
    predict(
        predict_config(
            tiny_model["export"], reference, tiles=tiles, bbox=AREA_BBOX, zoom=18, context=2
        )
    )
    out = tmp_path / "out"
    args = (
        "satx.predict",
        f"--model={tiny_model['export']}",
        f"--tiles={tiles}",
        f"--bbox={','.join(map(str, AREA_BBOX))}",
        "--zoom=18",
        "--context=2",
        f"--output={out}",
        "--chunk_size=5",
        "--batch_size=6",
        "--cpu_devices=2",
        "--strategy=mirrored",
        "--formats=csv",
    )
    killed = cli(*args, env={"SATX_FAILPOINTS": "predict.chunk_written:3"})
    assert killed.returncode == -9 and (out / "parts/00000002.windows.csv").exists()
    resumed = cli(*args, check=True)
    assert "resuming: 2 of 4 chunks already done" in resumed.stderr
    assert "MirroredStrategy over 2 replica(s)" in resumed.stderr
    rows, expected = predicted_rows(out), {r["source_id"]: r for r in predicted_rows(reference)}
    assert sorted(r["source_id"] for r in rows) == sorted(expected)
    for r in rows:
        assert float(r["score"]) == pytest.approx(
            float(expected[r["source_id"]]["score"]), abs=1e-5
        )
    got, want = _windows_of(out), _windows_of(reference)
    assert sorted(got) == sorted(want)
    assert len((out / "windows.csv").read_text().splitlines()) == len(want) + 1
    assert all(got[k] == pytest.approx(v, abs=1e-5) for k, v in want.items())


def test_a_window_is_its_tiles_row_by_row_and_resized_as_training_resizes():
    """Mosaics of decoded cells: the layout, and the one antialiased resize when sizes differ."""
    from satx.data.decode import resize_uint8
    from satx.predict.windows import WindowSet

    cells = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    ws = WindowSet(2, [], [], [], {}, np.array([[0, 1, 2, 3]]), np.ones(1, bool), [], [])
    ws.pixels = cells
    whole = ws.mosaics(np.array([0]), 16)[0]
    assert np.array_equal(whole[:8, :8], cells[0]) and np.array_equal(whole[:8, 8:], cells[1])
    assert np.array_equal(whole[8:, :8], cells[2]) and np.array_equal(whole[8:, 8:], cells[3])
    resized = ws.mosaics(np.array([0]), 15)[0]  # e.g. 299 px for 2 x 150
    assert np.array_equal(resized, resize_uint8(whole, 15).numpy())
