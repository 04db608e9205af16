"""gs:// input and output through google-cloud-storage, against the fake-gcs-server emulator."""

import json

import pytest

from satx.errors import OutputExistsError
from satx.io import storage
from satx.records import verify
from satx.records.make import make_records
from tests.support.helpers import GCS_BUCKET as BUCKET
from tests.support.helpers import download_tree, shard_digests, upload_tree


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
    with store.open("c.bin") as f:  # streamed reads (prediction reads gs:// shards so)
        assert f.read(2) == b"xy" and f.read() == b"z"
    with pytest.raises(FileNotFoundError):
        store.open("nope")


def test_gcs_input_and_output_match_a_local_run(gcs, sample_tiles, records_config, tmp_path):
    make_records(records_config(sample_tiles, tmp_path / "local"))
    upload_tree(sample_tiles, f"gs://{BUCKET}/tiles")
    out = f"gs://{BUCKET}/records"
    manifest = make_records(records_config(f"gs://{BUCKET}/tiles", out, workers=2))
    assert manifest.records == 48
    assert all(c.problem is None for c in verify.verify(out))
    examples = verify.first_examples(out, 3)
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
    assert manifest.records == 48 and manifest.geolocation["with"] == 48
