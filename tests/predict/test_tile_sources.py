"""`satx.predict` reading tiles where they live: a folder, a loopback HTTP service, MBTiles and
PMTiles give the same predictions; a kill -9 while fetching resumes; no secret is written."""

import csv
import os
from pathlib import Path

import mercantile
import pytest

from satx.bench.tileserver import TileServer
from satx.config import PredictConfig, SourceConfig
from satx.predict.run import predict
from tests.helpers import cli, encode, noise, write, write_mbtiles, write_pmtiles

BBOX = (-74.0800, 4.6000, -74.0760, 4.6040)  # 30 zoom-18 tiles in Bogota
TOKEN, HEADER_TOKEN = "url-s3cr3t-7f3a9", "hdr-s3cr3t-c41d2"


@pytest.fixture(scope="module")
def area_tiles(tmp_path_factory):
    """The bbox's tiles as a folder, one missing and one corrupt; and the same as archives."""
    root = tmp_path_factory.mktemp("area")
    tiles = list(mercantile.tiles(*BBOX, 18))
    data = {t: encode(noise(500 + i)) for i, t in enumerate(tiles)}
    missing, corrupt = tiles[1], tiles[2]
    del data[missing]
    data[corrupt] = data[corrupt][:200]
    for t, d in data.items():
        write(root / "xyz" / f"{t.z}/{t.x}/{t.y}.jpg", d)
    write_mbtiles(root / "t.mbtiles", data)
    write_pmtiles(root / "t.pmtiles", data)
    return root, tiles, missing, corrupt


def _table(out: Path) -> tuple[dict, dict]:
    with open(out / "predictions.csv") as f:
        scores = {r["source_id"]: r["score_school"] for r in csv.DictReader(f)}
    with open(out / "errors.csv") as f:
        errors = {r["source_id"]: r["reason"] for r in csv.DictReader(f)}
    return scores, errors


def test_folder_http_mbtiles_and_pmtiles_give_identical_predictions(
    tiny_model, area_tiles, tmp_path
):
    root, tiles, missing, corrupt = area_tiles
    results = {}
    with TileServer(root / "xyz") as server:
        for name, spec in (
            ("folder", str(root / "xyz")),
            ("http", server.template),
            ("mbtiles", str(root / "t.mbtiles")),
            ("pmtiles", str(root / "t.pmtiles")),
        ):
            config = PredictConfig(
                model=str(tiny_model["export"]),
                output=str(tmp_path / name),
                bbox=BBOX,
                zoom=18,
                source=SourceConfig(tiles=spec),
                chunk_size=8,
                batch_size=8,
            )
            summary = predict(config)
            assert summary.tiles == len(tiles) and summary.missing == 1, name
            results[name] = _table(tmp_path / name)
    scores, errors = results["folder"]
    assert len(scores) == len(tiles) - 2
    key = "{0.z}/{0.x}/{0.y}".format
    assert errors == {key(missing): "missing", key(corrupt): "corrupt"}
    for name, table in results.items():
        assert table == results["folder"], name


def _files_under(*folders: Path):
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                yield path


def test_kill_9_while_fetching_then_rerun_scores_each_tile_once_and_writes_no_secret(
    tiny_model, area_tiles, tmp_path
):
    root, tiles, missing, corrupt = area_tiles
    out, cache = tmp_path / "out", tmp_path / "cache"
    html = tiles[5]
    faults = {f"{html.z}/{html.x}/{html.y}": ["html", "*"]}
    header = ("X-Api-Key", HEADER_TOKEN)
    with TileServer(root / "xyz", token=TOKEN, header=header, faults=faults) as server:
        args = (
            "satx.predict",
            f"--model={tiny_model['export']}",
            f"--bbox={','.join(map(str, BBOX))}",
            "--zoom=18",
            f"--tiles={server.template}?access_token={TOKEN}",
            "--tile_header=X-Api-Key: ${SATX_TEST_KEY}",
            f"--tile_cache={cache}",
            "--fetch_threads=4",
            "--chunk_size=8",
            f"--output={out}",
        )
        env = {"SATX_TEST_KEY": HEADER_TOKEN}
        killed = cli(*args, env={**env, "SATX_FAILPOINTS": "fetch.request:14"})
        assert killed.returncode == -9, killed.stderr[-2000:]
        fetched_before = sum(server.requests.values())
        assert 10 <= fetched_before < len(tiles)  # killed part-way through fetching
        done = cli(*args, "--verbosity=1", env=env, check=True)
    scores, errors = _table(out)
    key = "{0.z}/{0.x}/{0.y}".format
    assert set(scores) | set(errors) == {key(t) for t in tiles}
    assert not set(scores) & set(errors)
    with open(out / "predictions.csv") as f:
        assert len(list(csv.DictReader(f))) == len(scores)  # each tile once
    assert errors == {key(missing): "missing", key(corrupt): "corrupt", key(html): "not_an_image"}
    written = list(_files_under(out, cache))
    assert any(p.name == "predict_run.json" for p in written)
    texts = [killed.stdout, killed.stderr, done.stdout, done.stderr]
    texts += [p.read_bytes().decode("latin-1") for p in written]
    for text in texts:
        assert TOKEN not in text and HEADER_TOKEN not in text
    assert "REDACTED" in (out / "predict_run.json").read_text()
    assert os.environ.get("SATX_TEST_KEY") is None
