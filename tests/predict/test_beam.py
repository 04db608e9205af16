"""`satx.predict --engine=beam` equals the local engine: the same predictions, errors and
missing list; over a tile service, gs:// in and out, 2 worker processes, and after a kill -9
of the driver."""

import signal
from pathlib import Path

import pytest

from satx.bench.tileserver import TileServer
from satx.config import PredictConfig, SourceConfig
from satx.predict.run import predict
from tests.conftest import GCS_BUCKET
from tests.helpers import cli
from tests.io.test_gcs import download_tree, upload_tree
from tests.predict.test_predict import BBOX, _bbox_tiles, _sample_tiles_folder

pytest.importorskip("apache_beam", reason="the Beam engine needs the satx[beam] extra")
from satx.predict.beam import predict_beam

TWO_PROCESSES = "--direct_num_workers=2 --direct_running_mode=multi_processing"
FILES = ("predictions.csv", "predictions.geojson", "errors.csv")


def _config(model, out, **kw):
    return PredictConfig(
        model=str(model), output=str(out), **{"chunk_size": 5, "batch_size": 4, **kw}
    )


def _same(a: Path, b: Path):
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.fixture
def area(tiny_model, sample_records, tmp_path):
    root = tmp_path / "xyz"
    tiles, missing, corrupt = _bbox_tiles(root, _sample_tiles_folder(sample_records))
    return root, tiles


def test_beam_over_a_tile_service_equals_local(tiny_model, area, tmp_path):
    root, tiles = area
    with TileServer(root) as server:
        source = SourceConfig(tiles=server.template)
        kw = dict(bbox=BBOX, zoom=18, source=source)
        local = predict(_config(tiny_model["export"], tmp_path / "local", **kw))
        beam = predict_beam(_config(tiny_model["export"], tmp_path / "beam", engine="beam", **kw))
    _same(tmp_path / "local", tmp_path / "beam")
    for key in ("tiles", "scored", "errors", "missing", "kept"):
        assert getattr(local, key) == getattr(beam, key), key
    assert beam.errors == 2 and beam.missing == 1 and beam.tiles == len(tiles)


@pytest.mark.slow
def test_beam_with_two_worker_processes_reads_and_writes_gcs(tiny_model, area, tmp_path, gcs):
    root, _ = area
    upload_tree(root, f"gs://{GCS_BUCKET}/beam-pred/tiles")
    predict(_config(tiny_model["export"], tmp_path / "local", input=str(root)))
    url = f"gs://{GCS_BUCKET}/beam-pred/out"
    config = _config(
        tiny_model["export"],
        url,
        input=f"gs://{GCS_BUCKET}/beam-pred/tiles",
        engine="beam",
        beam_options=TWO_PROCESSES,
    )
    summary = predict_beam(config)
    assert summary.files["csv"] == f"{url}/predictions.csv"
    download_tree(url, tmp_path / "from_gcs")
    _same(tmp_path / "local", tmp_path / "from_gcs")


@pytest.mark.slow
def test_kill_9_of_the_driver_then_rerun_scores_each_tile_once(tiny_model, area, tmp_path):
    root, tiles = area
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
        _config(
            tiny_model["export"],
            tmp_path / "local",
            bbox=BBOX,
            zoom=18,
            source=SourceConfig(tiles=str(root)),
            chunk_size=3,
        )
    )
    _same(tmp_path / "local", out)
    assert local.tiles == len(tiles)
