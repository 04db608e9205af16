"""Claiming an output folder: what a stage may write over, and what it deletes (satx.io.claim)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from satx.errors import InputError, OutputExistsError, StorageError
from satx.io import claim, storage

LAYOUT = claim.Layout(
    "demo",
    owned=("manifest.json", "*-[0-9][0-9].tfrecord", "_progress/", "parts/*.csv"),
    legacy=("manifest.json",),
)


def tree(root: Path) -> dict[str, str]:
    """Every file below `root` with its sha256."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def put(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"{name}\n")


def test_owned_names_match_at_their_own_depth_only():
    owns = LAYOUT.owns
    assert owns("manifest.json") and owns("train-01.tfrecord") and owns("parts/00000001.csv")
    assert owns("_progress/tiles/18/1/2.jpg")  # a folder pattern owns everything below it
    assert not owns("notes/manifest.json")  # make_records deleted this one (issue 35, 3)
    assert not owns("sub/train-01.tfrecord") and not owns("parts/deep/1.csv")
    assert not owns("thesis.txt") and not owns("_progress")
    # temp files of the stage's own writers, and of nothing else
    assert owns(".manifest.json.tmp-1a2b3c4d") and owns("parts/.00000001.csv.ab_9xk2q.tmp")
    assert not owns(".thesis.txt.tmp-1a2b3c4d") and not owns(".hidden")


def test_a_new_or_empty_folder_is_claimed_and_marked(tmp_path):
    for root in (tmp_path / "new", tmp_path / "empty"):
        if root.name == "empty":
            root.mkdir()
        claim.check(str(root), LAYOUT)
        claim.mark(storage.open_store(str(root)), LAYOUT)
        assert claim.stage_of(storage.open_store(str(root))) == "demo"
        claim.check(str(root), LAYOUT)  # marked: ours from now on


def test_a_marker_being_written_by_a_concurrent_run_is_not_a_foreign_file(tmp_path):
    # The full suite once caught the second of two make_records refusing the folder the first
    # had just locked: it saw the first one's marker temp, not the lock.
    root = tmp_path / "racing"
    put(root, claim.LOCK_NAME, f".{claim.MARKER_NAME}.tmp-7d3a5e5c")
    claim.check(str(root), LAYOUT)
    put(root, ".thesis.txt.tmp-7d3a5e5c")
    with pytest.raises(OutputExistsError, match="thesis"):
        claim.check(str(root), LAYOUT)


def test_foreign_files_are_refused_naming_them_and_left_intact(tmp_path):
    root = tmp_path / "x"
    put(root, "thesis.txt", "sub/s.csv", "manifest.json")
    before = tree(root)
    with pytest.raises(OutputExistsError, match=r"did not write \(sub/s\.csv, thesis\.txt\)"):
        claim.check(str(root), LAYOUT)
    only_ours = tmp_path / "y"
    put(only_ours, "train-01.tfrecord")  # our name, but no marker and no legacy file
    with pytest.raises(OutputExistsError, match="train-01.tfrecord"):
        claim.check(str(only_ours), LAYOUT)
    assert tree(root) == before


def test_another_stages_output_is_refused(tmp_path):
    root = tmp_path / "x"
    claim.mark(storage.open_store(str(root)), claim.Layout("predict", ()))
    put(root, "manifest.json")
    with pytest.raises(OutputExistsError, match="output of satx predict, not of demo"):
        claim.check(str(root), LAYOUT)


def test_an_older_satx_output_without_a_marker_is_taken_when_all_of_it_is_ours(tmp_path):
    root = tmp_path / "x"
    put(root, "manifest.json", "train-01.tfrecord", "_progress/plan.json")
    claim.check(str(root), LAYOUT)


def test_overwrite_removes_only_owned_names(tmp_path):
    root = tmp_path / "x"
    claim.mark(storage.open_store(str(root)), LAYOUT)
    put(root, "manifest.json", "train-01.tfrecord", "_progress/a/b.json", "parts/1.csv")
    put(root, "notes/manifest.json", "sub/train-01.tfrecord", "parts/keep.txt", ".satx.lock")
    foreign = {k: v for k, v in tree(root).items() if k.startswith(("notes", "sub", "parts/keep"))}
    removed = claim.remove_owned(storage.open_store(str(root)), LAYOUT)
    assert sorted(removed) == [
        "_progress/a/b.json",
        "manifest.json",
        "parts/1.csv",
        "train-01.tfrecord",
    ]
    left = tree(root)
    assert {k: left[k] for k in foreign} == foreign
    assert not (root / "_progress").exists()  # emptied folders go, non-empty ones stay
    assert (root / "parts").is_dir() and (root / ".satx.lock").exists()
    assert claim.stage_of(storage.open_store(str(root))) == "demo"


def test_overwrite_keeps_what_the_stage_asks_to_keep(tmp_path):
    root = tmp_path / "x"
    put(root, "_progress/mask.npy", "_progress/plan.json")
    claim.remove_owned(storage.open_store(str(root)), LAYOUT, keep=("_progress/mask.npy",))
    assert sorted(tree(root)) == ["_progress/mask.npy"]


@pytest.mark.parametrize(
    "output, relation",
    [("in", "is"), ("in/out", "lies in"), (".", "contains")],
)
def test_an_output_overlapping_an_input_is_refused(tmp_path, output, relation):
    (tmp_path / "in").mkdir()
    inputs = (("--input", str(tmp_path / "in")), ("--known", ""))
    with pytest.raises(InputError, match=f"{relation} the run's input --input="):
        claim.check(str(tmp_path / output), LAYOUT, inputs)
    claim.check(str(tmp_path / "elsewhere"), LAYOUT, inputs)
    linked = tmp_path / "link"
    linked.symlink_to(tmp_path / "in")
    with pytest.raises(InputError, match="is the run's input"):  # the same folder by a link
        claim.check(str(linked), LAYOUT, inputs)


def test_an_output_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("mine\n")
    with pytest.raises(InputError, match="exists and is not a folder"):
        claim.check(str(tmp_path / "f"), LAYOUT)


def test_template_roots():
    assert claim.template_root("/data/tiles/{z}/{x}/{y}.png") == "/data/tiles"
    assert claim.template_root("/data/t_{z}_{x}_{y}.png") == "/data"
    assert claim.template_root("/data/a.mbtiles") == "/data/a.mbtiles"
    assert claim.template_root("https://h/{z}/{x}/{y}.png") == ""
    assert claim.template_root("gs://b/t/{z}/{x}/{y}.png") == "gs://b/t"


def test_an_atomic_write_never_replaces_a_special_file(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere.csv")
    for target in (fifo, tmp_path / "dir", tmp_path / "link"):
        with pytest.raises(StorageError, match="satx writes only regular files"):
            storage.atomic_write_local(target, b"a,b\n")
    assert fifo.is_fifo() and (tmp_path / "link").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "fifo", "link"]  # no temps


def test_a_failed_atomic_write_leaves_no_temp(tmp_path, monkeypatch):
    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)  # fails where a full disk shows it: at the flush
    with pytest.raises(StorageError, match="could not write .*a.csv: No space left on device"):
        storage.atomic_write_local(tmp_path / "sub" / "a.csv", b"a,b\n")
    assert list((tmp_path / "sub").iterdir()) == []
