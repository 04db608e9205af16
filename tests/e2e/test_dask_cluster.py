"""The Beam engine on a real Dask cluster: a scheduler and 2 worker processes on loopback,
started by the test as people start them; gs:// in and out through the emulator; worker and
driver killed with SIGKILL."""

from __future__ import annotations

import pytest

pytest.importorskip("apache_beam", reason="the Beam engine needs the satx[beam] extra")
pytest.importorskip("distributed", reason="the Dask runner needs the satx[dask] extra")

from satx.predict.beam import predict_beam
from satx.predict.run import predict
from tests.support.dask_cluster import DaskCluster
from tests.support.helpers import GCS_BUCKET, download_tree, upload_tree
from tests.support.predict import beam_config, same_outputs, sample_tiles_folder


@pytest.fixture
def cluster(tmp_path):
    running = DaskCluster(tmp_path / "dask")
    yield running
    running.stop()


def test_predict_on_dask_equals_local(tiny_model, xyz_area, tmp_path, gcs, cluster):
    root, _ = xyz_area
    upload_tree(root, f"gs://{GCS_BUCKET}/dask-pred/tiles")
    local = predict(beam_config(tiny_model["export"], tmp_path / "local", input=str(root)))
    url = f"gs://{GCS_BUCKET}/dask-pred/out"
    config = beam_config(
        tiny_model["export"],
        url,
        input=f"gs://{GCS_BUCKET}/dask-pred/tiles",
        engine="beam",
        beam_options=cluster.beam_options,
    )
    run = predict_beam(config)
    download_tree(url, tmp_path / "from_gcs")
    same_outputs(tmp_path / "local", tmp_path / "from_gcs")
    assert run.scored == local.scored


def test_records_on_dask_equal_local(sample_tiles, records_config, tmp_path, gcs, cluster):
    from satx.records.beam import make_records_beam
    from satx.records.make import make_records
    from tests.support.helpers import shard_digests

    upload_tree(sample_tiles, f"gs://{GCS_BUCKET}/dask-rec/in")
    make_records(records_config(sample_tiles, tmp_path / "local"))
    url = f"gs://{GCS_BUCKET}/dask-rec/out"
    config = records_config(
        f"gs://{GCS_BUCKET}/dask-rec/in", url, engine="beam", beam_options=cluster.beam_options
    )
    make_records_beam(config)
    download_tree(url, tmp_path / "dask")
    assert shard_digests(tmp_path / "local") == shard_digests(tmp_path / "dask")
    for name in ("quarantine.jsonl",):
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes()


# -- faults: kill -9 of a worker process, and of the driver ---------------------------------


def doomed(failpoint: str, folder) -> dict:
    """Both workers armed with `failpoint`; only the first to reach it dies."""
    env = {"SATX_FAILPOINTS": failpoint, "SATX_FAILPOINTS_ONCE": str(folder / "fired")}
    return {0: env, 1: env}


@pytest.mark.slow
def test_a_worker_killed_mid_predict_is_survived_with_every_tile_once(
    tiny_model, sample_records, tmp_path
):
    src = str(sample_tiles_folder(sample_records))
    local = predict(beam_config(tiny_model["export"], tmp_path / "local", input=src))
    # The first worker to write a chunk dies right after (SIGKILL, by its own hand).
    cluster = DaskCluster(tmp_path / "dask", worker_env=doomed("predict.chunk_done:1", tmp_path))
    try:
        config = beam_config(
            tiny_model["export"],
            tmp_path / "dask-out",
            input=src,
            engine="beam",
            beam_options=cluster.beam_options,
        )
        run = predict_beam(config)
        assert cluster.exit_codes() == [-9, None], cluster.log("worker-0")  # one survivor
    finally:
        cluster.stop()
    same_outputs(tmp_path / "local", tmp_path / "dask-out")
    assert (run.tiles, run.scored) == (local.tiles, local.scored)
    assert not [p for p in (tmp_path / "dask-out").rglob(".*") if ".tmp" in p.name]


@pytest.mark.slow
def test_a_worker_killed_mid_shard_is_survived_with_the_local_records(tmp_path, records_config):
    from satx.records.beam import make_records_beam
    from satx.records.make import make_records
    from satx.records.sample import write_sample_tiles
    from tests.support.helpers import shard_digests

    write_sample_tiles(tmp_path / "in", count=400, school_fraction=0.4, seed=11, size=32)
    make_records(records_config(tmp_path / "in", tmp_path / "local", min_shards=6))
    cluster = DaskCluster(
        tmp_path / "dask", worker_env=doomed("make_records.mid_shard:1", tmp_path)
    )
    try:
        config = records_config(
            tmp_path / "in",
            tmp_path / "dask-out",
            min_shards=6,
            engine="beam",
            beam_options=cluster.beam_options,
        )
        make_records_beam(config)
        assert cluster.exit_codes() == [-9, None], cluster.log("worker-0")
    finally:
        cluster.stop()
    assert shard_digests(tmp_path / "local") == shard_digests(tmp_path / "dask-out")
    local_q = (tmp_path / "local" / "quarantine.jsonl").read_bytes()
    assert (tmp_path / "dask-out" / "quarantine.jsonl").read_bytes() == local_q


@pytest.mark.slow
def test_the_driver_killed_mid_predict_resumes_on_the_cluster(
    tiny_model, sample_records, tmp_path, cluster
):
    import signal
    import subprocess
    import sys
    import time

    from tests.support.helpers import REPO, cli

    src = str(sample_tiles_folder(sample_records))
    predict(beam_config(tiny_model["export"], tmp_path / "local", input=src, chunk_size=4))
    out = tmp_path / "dask-out"
    args = [
        "satx.predict",
        f"--model={tiny_model['export']}",
        f"--input={src}",
        f"--output={out}",
        "--chunk_size=4",
        "--batch_size=4",
        "--engine=beam",
        f"--beam_options={cluster.beam_options}",
    ]
    driver = subprocess.Popen(
        [sys.executable, "-m", *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300
    while not list((out / "parts").glob("*.done.json")) and time.monotonic() < deadline:
        assert driver.poll() is None, driver.stderr.read().decode()
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)
    assert driver.wait(timeout=30) == -9
    assert not (out / "predict_run.json").exists()  # killed before it finished
    again = cli(*args, check=True)
    assert "resuming:" in again.stderr and "chunks already done" in again.stderr
    same_outputs(tmp_path / "local", out)
