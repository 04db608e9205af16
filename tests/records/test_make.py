"""make_records end to end on generated fixtures."""

import json
from collections import Counter, defaultdict

import mercantile
import pytest

from satx import geo
from satx.errors import InputError, OutputExistsError
from satx.records import verify
from satx.records.make import make_records
from tests.support.helpers import encode, noise, read_all, shard_digests, write, write_bad_tiles


def test_folder_to_records_with_geolocation(sample_tiles, records_config, tmp_path):
    manifest = make_records(records_config(sample_tiles))
    out = tmp_path / "records"
    assert manifest.class_names == ("not_school", "school")
    assert manifest.records == 48 and manifest.quarantine.count == 0
    assert manifest.geolocation == {"with": 48, "without": 0}
    assert sum(s.records for s in manifest.splits.values()) == 48
    assert sorted(p.name for p in out.glob("*.tfrecord")) == sorted(s.name for s in manifest.shards)
    for split, entry in manifest.splits.items():
        assert entry.shards == 2
        assert f"{split}-00001-of-00002.tfrecord" in {s.name for s in manifest.shards}
    _, examples = read_all(out)
    assert sorted(ex.source_id for _, ex in examples) == sorted(
        p.relative_to(sample_tiles).as_posix() for p in sample_tiles.rglob("*.jpg")
    )
    for _, ex in examples:
        tile = geo.parse_tile_path(ex.source_id)
        assert ex.tile == tile and ex.label_text in ("school", "not_school")
        assert ex.geolocation.bbox == tuple(mercantile.bounds(tile))
        assert ex.encoded == (sample_tiles / ex.source_id).read_bytes()  # no re-encode
    assert all(c.problem is None for c in verify.verify(str(out)))
    assert (out / "manifest.json").exists() and not (out / "_progress").exists()
    run = manifest.run
    assert run["config"]["seed"] == 42 and run["versions"]["tensorflow"]
    assert len(manifest.inputs.listing_sha256) == 64


def test_spatial_split_keeps_blocks_together(sample_tiles, records_config):
    _, examples = read_all_after(make_records(records_config(sample_tiles, split_zoom=14)))
    blocks = defaultdict(set)
    for split, ex in examples:
        blocks[geo.parent_at_zoom(ex.tile, 14)].add(split)
    assert all(len(v) == 1 for v in blocks.values())
    assert len({s for v in blocks.values() for s in v}) == 3


def test_identical_images_in_distant_blocks_share_a_split(sample_tiles, records_config):
    tiles = sorted(sample_tiles.rglob("*.jpg"))
    copies = {}
    for k, src in enumerate(tiles[:6]):  # copy each to a far-away (other zoom-12 block) address
        name = f"{100000 + 5000 * k}-{100000 + 5000 * k}-18.jpg"
        copies[name] = src.relative_to(sample_tiles).as_posix()
        (src.parent / name).write_bytes(src.read_bytes())
    _, examples = read_all_after(make_records(records_config(sample_tiles, split_zoom=14)))
    split_of = {ex.source_id: split for split, ex in examples}
    assert len(split_of) == 48 + 6
    for name, original in copies.items():
        copy_id = f"{original.split('/')[0]}/{name}"
        assert split_of[copy_id] == split_of[original]


def read_all_after(manifest):
    from pathlib import Path

    folder = Path(manifest.run["config"]["output"])
    return read_all(folder)


def test_byte_identical_across_reruns_and_worker_counts(sample_tiles, records_config, tmp_path):
    make_records(records_config(sample_tiles, tmp_path / "a", workers=1))
    make_records(records_config(sample_tiles, tmp_path / "b", workers=2))
    a, b = shard_digests(tmp_path / "a"), shard_digests(tmp_path / "b")
    assert a == b and len(a) == 6


def test_refuses_complete_output_without_overwrite(sample_tiles, records_config, tmp_path):
    make_records(records_config(sample_tiles))
    with pytest.raises(OutputExistsError, match="--overwrite"):
        make_records(records_config(sample_tiles))
    (tmp_path / "records" / "keep-me.txt").write_text("user file")
    manifest = make_records(records_config(sample_tiles, overwrite=True, split="train:0.5,val:0.5"))
    assert set(manifest.splits) == {"train", "val"}
    assert not list((tmp_path / "records").glob("test-*"))
    assert (tmp_path / "records" / "keep-me.txt").exists()


def test_resume_after_simulated_interruption(sample_tiles, records_config, tmp_path):
    make_records(records_config(sample_tiles, tmp_path / "clean"))
    config = records_config(sample_tiles, tmp_path / "out")
    make_records(config)
    out = tmp_path / "out"
    # what a kill -9 leaves: no manifest, some shards done, one half-written temp file,
    # progress files for finished shards
    from satx.records.make import PROGRESS_DIR

    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").unlink()
    (out / PROGRESS_DIR).mkdir()
    (out / PROGRESS_DIR / "plan.json").write_text(json.dumps({"digest": "x"}))
    with pytest.raises(OutputExistsError, match="different inputs"):
        make_records(config)
    from satx.records.inputs import list_input
    from satx.records.plan import make_plan

    plan = make_plan(list_input(config), config)
    (out / PROGRESS_DIR / "plan.json").write_text(json.dumps({"digest": plan.digest}))
    done = manifest["shards"][:3]
    for shard in done:
        (out / PROGRESS_DIR / f"{shard['name']}.json").write_text(
            json.dumps({**shard, "classes": {}, "changes": {}, "formats": {}, "quarantined": []})
        )
    for shard in manifest["shards"][3:]:
        (out / shard["name"]).unlink()
    (out / f".{manifest['shards'][3]['name']}.tmp-123").write_bytes(b"half")
    before = {s["name"]: (out / s["name"]).stat().st_mtime_ns for s in done}
    resumed = make_records(config)
    assert {s["name"]: (out / s["name"]).stat().st_mtime_ns for s in done} == before  # not redone
    assert shard_digests(out) == shard_digests(tmp_path / "clean")
    assert resumed.records == 48
    assert not list(out.glob(".*tmp*"))


@pytest.mark.parametrize("mode", ["reject", "resize"])
def test_quarantine_lists_every_bad_file_and_keeps_every_good_one(tmp_path, records_config, mode):
    good, bad = write_bad_tiles(tmp_path / "in")
    manifest = make_records(records_config(tmp_path / "in", on_size_mismatch=mode))
    out = tmp_path / "records"
    quarantined = {
        q["source_id"]: q["reason"]
        for q in map(json.loads, (out / "quarantine.jsonl").read_text().splitlines())
    }
    expected = {
        "school/75005-120000-18.jpg": "corrupt",
        "school/75006-120000-18.jpg": "empty_file",
        "school/75007-120000-18.jpg": "not_an_image",
    }
    if mode == "reject":
        expected["not_school/75004-120000-18.jpg"] = "size_mismatch"
    assert quarantined == expected
    assert manifest.quarantine.count == len(expected)
    _, examples = read_all(out)
    stored = {ex.source_id for _, ex in examples}
    assert stored == (
        set(good) | {f"not_school/{75100 + k}-120001-18.jpg" for k in range(12)}
    ) - set(expected)
    changes = manifest.image_changes
    assert changes["extension_mismatch"] == 1 and changes["converted_rgba"] == 1
    assert changes["converted_l"] == 1
    assert changes.get("resized_from_40x48", 0) == (1 if mode == "resize" else 0)


def test_mostly_wrong_size_aborts_with_a_suggestion(sample_tiles, records_config):
    with pytest.raises(InputError, match="--image_size=32"):
        make_records(records_config(sample_tiles, image_size=64))


def test_presplit_folders_and_duplicates_across_them(tmp_path, records_config):
    root = tmp_path / "in"
    for k in range(6):
        write(root / "train" / ("school" if k % 2 else "not_school") / f"{k}.jpg", encode(noise(k)))
        write(
            root / "test" / ("school" if k % 2 else "not_school") / f"t{k}.jpg",
            encode(noise(50 + k)),
        )
    write(root / "test" / "school" / "copy.jpg", encode(noise(1)))  # same image as train/school/1
    manifest = make_records(records_config(root))
    assert manifest.split_method.method == "input"
    assert {k: v.records for k, v in manifest.splits.items()} == {"train": 6, "test": 6}
    assert manifest.quarantine.reasons == {"duplicate_across_splits": 1}


def test_conflicting_labels_are_quarantined(tmp_path, records_config):
    root = tmp_path / "in"
    for k in range(8):
        write(root / ("school" if k % 2 else "not_school") / f"{k}.jpg", encode(noise(k)))
    write(root / "school" / "dup.jpg", encode(noise(0)))  # same image as not_school/0.jpg
    manifest = make_records(records_config(root))
    assert manifest.quarantine.reasons == {"conflicting_labels": 2}
    assert manifest.records == 7


def test_csv_with_partial_geolocation_and_gzip(tmp_path, records_config):
    root = tmp_path / "in"
    lines = ["path,label"]
    for k in range(20):
        name = f"{75000 + k}-{120000 + k}-18.jpg" if k < 12 else f"img{k}.jpg"
        write(root / "tiles" / name, encode(noise(k)))
        lines.append(f"tiles/{name},{'school' if k % 3 == 0 else 'not_school'}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    manifest = make_records(records_config(root / "labels.csv", compression="gzip"))
    assert manifest.geolocation == {"with": 12, "without": 8}
    assert manifest.split_method.method == "spatial+hashed"
    assert all(s.name.endswith(".tfrecord.gz") for s in manifest.shards)
    _, examples = read_all(tmp_path / "records")
    assert len(examples) == 20
    assert Counter(ex.label_text for _, ex in examples) == {"school": 7, "not_school": 13}
    checks = verify.verify(str(tmp_path / "records"))  # compressed shards, streamed and hashed
    assert checks and all(c.problem is None and c.records == c.expected_records for c in checks)
    shard = tmp_path / "records" / manifest.shards[0].name
    shard.write_bytes(shard.read_bytes()[:-5])
    assert "damaged" in verify.verify(str(tmp_path / "records"))[0].problem


def test_classes_flag_fixes_label_order_and_quarantines_unknown(sample_tiles, records_config):
    manifest = make_records(records_config(sample_tiles, classes=("school",)))
    assert manifest.class_names == ("school",)
    assert manifest.quarantine.reasons == {"unknown_label": 48 - manifest.records}


def test_scratch_of_a_killed_run_is_removed_by_the_next(
    sample_tiles, records_config, tmp_path, monkeypatch
):
    # A SIGKILLed run leaves its scratch folder (possibly a mirrored gs:// input) in the temp
    # dir; the next run removes it once its process is gone and it is an hour old.
    import os
    import subprocess
    import sys
    import time

    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    old = time.time() - 2 * 3600
    orphan = tmp_path / "tmp" / f"satx-records-{dead_pid}-abc"
    (orphan / "input").mkdir(parents=True)
    (orphan / "input" / "tile.jpg").write_bytes(b"x")
    recent = tmp_path / "tmp" / f"satx-records-{dead_pid}-new"  # maybe another host's run
    recent.mkdir()
    alive = tmp_path / "tmp" / f"satx-records-{os.getpid()}-live"
    alive.mkdir()
    for folder in (orphan, alive):
        os.utime(folder, (old, old))
    make_records(records_config(sample_tiles, output=tmp_path / "out"))
    assert not orphan.exists()
    assert recent.exists() and alive.exists()
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == sorted([recent.name, alive.name])
