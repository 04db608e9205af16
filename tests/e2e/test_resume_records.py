"""Records runs killed with SIGKILL at their failpoints resume to the same shards, byte for byte."""

import json
import os
import signal

import pytest

from satx.io import storage
from tests.support.helpers import GCS_BUCKET as BUCKET
from tests.support.helpers import (
    cli,
    download_tree,
    records_cmd,
    shard_digests,
)
from tests.support.places import write_places


@pytest.mark.slow
@pytest.mark.parametrize(
    "failpoint, workers",
    [
        ("make_records.mid_shard:3", "1"),  # the whole process dies with a half-written shard
        ("make_records.after_shard:2", "2"),
    ],  # the parent dies while workers are writing
)
def test_resume_after_kill_9(sample_tiles, tmp_path, failpoint, workers):
    cli(*records_cmd(sample_tiles, tmp_path / "clean", "--workers=1"), check=True)
    out = tmp_path / "out"
    killed = cli(
        *records_cmd(sample_tiles, out, f"--workers={workers}"), env={"SATX_FAILPOINTS": failpoint}
    )
    assert killed.returncode == -signal.SIGKILL
    assert not (out / "manifest.json").exists()
    assert list(out.glob("_progress/*.json"))  # some work was done before the kill
    cli(*records_cmd(sample_tiles, out, f"--workers={workers}"), check=True)
    assert shard_digests(out) == shard_digests(tmp_path / "clean")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["records"] == 48
    assert not list(out.glob(".*tmp*")) and not (out / "_progress").exists()


def _whole_run(places_server, tmp_path, *extra):
    """A places run into `whole` (token-protected server): its arguments and its requests."""
    places = write_places(tmp_path)
    source = f"--tiles={places_server.template}?access_token=rec-s3cr3t-991"
    args = (
        *records_cmd(places, tmp_path / "whole", "--zoom=18", source, *extra),
        "--split=train:0.5,val:0.5",
    )
    before = sum(places_server.requests.values())
    cli(*args, check=True)
    return args, sum(places_server.requests.values()) - before


def test_kill_9_while_fetching_then_rerun_gives_the_same_records(places_server, tmp_path):
    args, per_run = _whole_run(places_server, tmp_path)  # one request per distinct tile
    killed_args = [a.replace("whole", "killed") for a in args]
    killed = cli(*killed_args, "--fetch_threads=2", env={"SATX_FAILPOINTS": "fetch.request:9"})
    assert killed.returncode == -9
    cached = [p for p in (tmp_path / "killed" / "_progress" / "tiles").rglob("*") if p.is_file()]
    assert 0 < len(cached) < per_run
    before = sum(places_server.requests.values())
    again = cli(*killed_args, check=True)
    assert sum(places_server.requests.values()) - before == per_run - len(cached)  # nothing twice
    assert shard_digests(tmp_path / "killed") == shard_digests(tmp_path / "whole")
    assert not (tmp_path / "killed" / "_progress").exists()
    for proc in (killed, again):
        assert "rec-s3cr3t-991" not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_kill_9_of_the_driver_then_rerun(sample_tiles, tmp_path):
    cli(*records_cmd(sample_tiles, tmp_path / "local"), check=True)
    out = tmp_path / "beam"
    args = records_cmd(sample_tiles, out, "--engine=beam")
    killed = cli(*args, env={"SATX_FAILPOINTS": "make_records.after_shard:3"})
    assert killed.returncode == -signal.SIGKILL
    assert (
        len(list(out.glob("_progress/*.tfrecord.json"))) >= 2
        and not (out / "manifest.json").exists()
    )
    cli(*args, check=True)
    assert shard_digests(out) == shard_digests(tmp_path / "local")
    assert not list(out.glob(".*tmp*"))


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


def test_context_windows_resume_after_kill_9_while_fetching(places_server, tmp_path):
    """--context=2: a killed run's cached tiles are not fetched again; the same shards."""
    args, per_run = _whole_run(places_server, tmp_path, "--context=2")
    whole = json.loads((tmp_path / "whole" / "manifest.json").read_text())
    assert whole["context"] == 2 and whole["image_size"] == 64 and whole["records"] > 0
    assert whole["quarantine"]["reasons"].get("no_imagery")  # windows reaching past the block
    killed_args = [a.replace("whole", "killed") for a in args]
    killed = cli(*killed_args, "--fetch_threads=2", env={"SATX_FAILPOINTS": "fetch.request:9"})
    assert killed.returncode == -9
    before = sum(places_server.requests.values())
    cli(*killed_args, check=True)
    assert sum(places_server.requests.values()) - before < per_run  # the cache was kept
    assert shard_digests(tmp_path / "killed") == shard_digests(tmp_path / "whole")
