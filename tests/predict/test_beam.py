"""`satx.predict --engine=beam` equals the local engine: the same predictions, errors and
missing list; over a tile service, gs:// in and out, 2 worker processes, and after a kill -9
of the driver."""

import pytest

from satx.bench.tileserver import TileServer
from satx.config import SourceConfig
from satx.predict.run import predict
from tests.support.helpers import GCS_BUCKET, download_tree, upload_tree
from tests.support.predict import BBOX, beam_config, same_outputs

pytest.importorskip("apache_beam", reason="the Beam engine needs the satx[beam] extra")
from satx.predict.beam import predict_beam

TWO_PROCESSES = "--direct_num_workers=2 --direct_running_mode=multi_processing"


def test_beam_over_a_tile_service_equals_local(tiny_model, xyz_area, tmp_path):
    root, tiles = xyz_area
    with TileServer(root) as server:
        source = SourceConfig(tiles=server.template)
        kw = dict(bbox=BBOX, zoom=18, source=source)
        local = predict(beam_config(tiny_model["export"], tmp_path / "local", **kw))
        beam = predict_beam(
            beam_config(tiny_model["export"], tmp_path / "beam", engine="beam", **kw)
        )
    same_outputs(tmp_path / "local", tmp_path / "beam")
    for key in ("tiles", "scored", "errors", "missing", "kept"):
        assert getattr(local, key) == getattr(beam, key), key
    assert beam.errors == 2 and beam.missing == 1 and beam.tiles == len(tiles)


@pytest.mark.slow
def test_beam_with_two_worker_processes_reads_and_writes_gcs(tiny_model, xyz_area, tmp_path, gcs):
    root, _ = xyz_area
    upload_tree(root, f"gs://{GCS_BUCKET}/beam-pred/tiles")
    formats = ("geojson", "csv", "parquet")
    predict(beam_config(tiny_model["export"], tmp_path / "local", input=str(root), formats=formats))
    url = f"gs://{GCS_BUCKET}/beam-pred/out"
    config = beam_config(
        tiny_model["export"],
        url,
        input=f"gs://{GCS_BUCKET}/beam-pred/tiles",
        engine="beam",
        beam_options=TWO_PROCESSES,
        formats=formats,
    )
    summary = predict_beam(config)
    assert summary.files["csv"] == f"{url}/predictions.csv"
    assert summary.files["parquet"] == f"{url}/predictions.parquet"
    download_tree(url, tmp_path / "from_gcs")
    same_outputs(tmp_path / "local", tmp_path / "from_gcs")
