"""The typed manifest: lossless round trip, one loader, two distinct hashes, v1 upgrade."""

import hashlib
import json

import pytest

from satx.errors import RecordsError
from satx.records.manifest import MANIFEST_NAME, Manifest, load_manifest, load_records


@pytest.fixture
def folder(sample_tiles, records_config, tmp_path):
    from satx.records.make import make_records

    make_records(records_config(sample_tiles))
    return tmp_path / "records"


def test_written_manifest_round_trips_byte_for_byte(folder):
    data = (folder / MANIFEST_NAME).read_bytes()
    manifest = Manifest.from_json(data, "m")
    assert manifest.to_json() == data
    assert manifest == load_manifest(str(folder))
    assert manifest.class_names == ("not_school", "school") and manifest.records == 48
    assert sum(s.records for s in manifest.shards) == 48
    assert manifest.count("train+val") == manifest.count("train") + manifest.count("val")
    assert sum(manifest.class_counts("train")) == manifest.count("train")
    assert [s.split for s in manifest.shards_of("val")] == ["val"] * manifest.splits["val"].shards


def test_the_two_hashes_have_two_names(folder):
    records = load_records(str(folder))
    data = (folder / MANIFEST_NAME).read_bytes()
    assert records.manifest_sha256 == hashlib.sha256(data).hexdigest()  # the file itself
    listing = records.manifest.inputs.listing_sha256  # what the records were made from
    assert len(listing) == 64 and listing != records.manifest_sha256
    assert "manifest_sha256" not in json.loads(data)["inputs"]


def test_version_1_manifests_are_read(folder):
    raw = json.loads((folder / MANIFEST_NAME).read_text())
    raw["schema_version"] = 1
    raw["inputs"]["manifest_sha256"] = raw["inputs"].pop("listing_sha256")
    (folder / MANIFEST_NAME).write_text(json.dumps(raw))
    manifest = load_manifest(str(folder))
    assert manifest.inputs.listing_sha256 == raw["inputs"]["manifest_sha256"]


def test_errors_name_the_file_and_the_fix(folder, tmp_path):
    with pytest.raises(RecordsError, match="schema_version 99"):
        Manifest.from_json(json.dumps({"schema_version": 99}).encode(), "x/manifest.json")
    with pytest.raises(RecordsError, match="x/manifest.json: not valid JSON"):
        Manifest.from_json(b"{", "x/manifest.json")
    with pytest.raises(RecordsError, match="missing or bad key 'inputs'"):
        Manifest.from_json(json.dumps({"schema_version": 2}).encode(), "x/manifest.json")
    with pytest.raises(RecordsError, match="not found: not a records folder"):
        load_records(str(tmp_path / "nowhere"))
    with pytest.raises(RecordsError, match="no split 'dev'"):
        load_manifest(str(folder)).count("dev")
    shard = sorted(folder.glob("train-*.tfrecord"))[0]
    shard.write_bytes(shard.read_bytes()[:-1])
    with pytest.raises(RecordsError, match=f"{shard.name}: manifest lists .* bytes"):
        load_records(str(folder))
