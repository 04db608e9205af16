"""Prediction runs killed with SIGKILL resume: every tile once, the scores of an unbroken run."""

import csv
import os
import signal

import pytest

from satx.bench.tileserver import TileServer
from satx.config import COUNTRY_TILES, SourceConfig
from satx.predict.run import predict
from tests.support.helpers import (
    cli,
)
from tests.support.predict import (
    AREA_BBOX,
    BBOX,
    HEADER_TOKEN,
    TOKEN,
    beam_config,
    files_under,
    predict_config,
    predicted_rows,
    rows_of,
    same_outputs,
    sample_tiles_folder,
    score_table,
)


def test_cli_resumes_after_kill_9_with_each_tile_once_on_two_devices(
    tiny_model, sample_records, tmp_path
):
    """SIGKILL twice (parts written but not marked done; then right after a chunk), re-run: the
    output holds every tile exactly once, with the single-device scores, under MirroredStrategy."""
    src, out = sample_tiles_folder(sample_records), tmp_path / "out"
    reference = {
        r["source_id"]: float(r["score_school"])
        for r in rows_of(
            predict(predict_config(tiny_model["export"], tmp_path / "ref", input=str(src)))
        )
    }
    args = (
        "satx.predict",
        f"--model={tiny_model['export']}",
        f"--input={src}",
        f"--output={out}",
        "--chunk_size=10",
        "--batch_size=6",
        "--cpu_devices=2",
        "--strategy=mirrored",
        "--formats=csv,parquet",
    )
    first = cli(*args, env={"SATX_FAILPOINTS": "predict.chunk_written:3"})
    assert first.returncode == -9
    assert len(list((out / "parts").glob("*.done.json"))) == 2
    # chunk 2's GeoParquet file is whole (written by rename) though not yet marked done
    assert len(list((out / "predictions.parquet").glob("chunk-*.parquet"))) == 3
    second = cli(*args, env={"SATX_FAILPOINTS": "predict.chunk_done:2"})
    assert second.returncode == -9 and "resuming: 2 of 10 chunks already done" in second.stderr
    third = cli(*args, check=True)
    assert "resuming: 4 of 10 chunks already done" in third.stderr
    assert "MirroredStrategy over 2 replica(s)" in third.stderr
    assert "tiles/s" in third.stdout and f"projected for {COUNTRY_TILES:,} tiles" in third.stdout
    rows = predicted_rows(out)
    assert sorted(r["source_id"] for r in rows) == sorted(reference)
    for r in rows:
        assert float(r["score_school"]) == pytest.approx(reference[r["source_id"]], abs=1e-5)
    import pyarrow.dataset

    parquet = pyarrow.dataset.dataset(str(out / "predictions.parquet"), format="parquet")
    assert sorted(parquet.to_table().column("source_id").to_pylist()) == sorted(reference)
    assert not [p for p in (out / "predictions.parquet").iterdir() if p.name.startswith(".")]
    changed = cli(*args, "--min_score=0.9")
    assert changed.returncode == 2 and "another prediction run" in changed.stderr


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
            f"--bbox={','.join(map(str, AREA_BBOX))}",
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
    scores, errors = score_table(out)
    key = "{0.z}/{0.x}/{0.y}".format
    assert set(scores) | set(errors) == {key(t) for t in tiles}
    assert not set(scores) & set(errors)
    with open(out / "predictions.csv") as f:
        assert len(list(csv.DictReader(f))) == len(scores)  # each tile once
    assert errors == {key(missing): "missing", key(corrupt): "corrupt", key(html): "not_an_image"}
    written = list(files_under(out, cache))
    assert any(p.name == "predict_run.json" for p in written)
    texts = [killed.stdout, killed.stderr, done.stdout, done.stderr]
    texts += [p.read_bytes().decode("latin-1") for p in written]
    for text in texts:
        assert TOKEN not in text and HEADER_TOKEN not in text
    assert "REDACTED" in (out / "predict_run.json").read_text()
    assert os.environ.get("SATX_TEST_KEY") is None


@pytest.mark.slow
def test_kill_9_of_the_driver_then_rerun_scores_each_tile_once(tiny_model, xyz_area, tmp_path):
    root, tiles = xyz_area
    out = tmp_path / "out"
    args = (
        "satx.predict",
        f"--model={tiny_model['export']}",
        f"--bbox={','.join(map(str, BBOX))}",
        "--zoom=18",
        f"--tiles={root}",
        "--chunk_size=3",
        "--engine=beam",
        f"--output={out}",
    )
    killed = cli(*args, env={"SATX_FAILPOINTS": "predict.chunk_done:2"})
    assert killed.returncode == -signal.SIGKILL
    assert len(list(out.glob("parts/*.done.json"))) == 2
    cli(*args, check=True)
    local = predict(
        beam_config(
            tiny_model["export"],
            tmp_path / "local",
            bbox=BBOX,
            zoom=18,
            source=SourceConfig(tiles=str(root)),
            chunk_size=3,
        )
    )
    same_outputs(tmp_path / "local", out)
    assert local.tiles == len(tiles)
