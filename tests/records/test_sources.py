import mercantile
import pytest

from satx.errors import InputError
from satx.records import sources
from tests.helpers import encode, noise, write

JPG = encode(noise(0))


def test_class_folders_with_every_tile_name_pattern(tmp_path):
    write(tmp_path / "school" / "75000-120000-18.jpg", JPG)
    write(tmp_path / "school" / "18" / "75001" / "120000.jpeg", JPG)
    write(tmp_path / "not_school" / "18_75002_120001.png", JPG)
    write(tmp_path / "not_school" / "deep" / "er" / "plain.jpg", JPG)
    write(tmp_path / "not_school" / "notes.txt", b"x")
    write(tmp_path / "loose.jpg", JPG)
    write(tmp_path / ".cache" / "school" / "x.jpg", JPG)
    found = sources.discover(str(tmp_path))
    assert found.layout == "folder"
    by_id = {t.source_id: t for t in found.tiles}
    assert set(by_id) == {
        "school/75000-120000-18.jpg",
        "school/18/75001/120000.jpeg",
        "not_school/18_75002_120001.png",
        "not_school/deep/er/plain.jpg",
    }
    assert by_id["school/18/75001/120000.jpeg"].tile == mercantile.Tile(75001, 120000, 18)
    assert by_id["not_school/18_75002_120001.png"].tile == mercantile.Tile(75002, 120001, 18)
    assert by_id["not_school/deep/er/plain.jpg"].tile is None
    assert by_id["not_school/deep/er/plain.jpg"].label_text == "not_school"
    assert set(found.ignored) == {"not_school/notes.txt", "loose.jpg"}


def test_presplit_folders_keep_their_split(tmp_path):
    write(tmp_path / "train" / "school" / "a.jpg", JPG)
    write(tmp_path / "train" / "not_school" / "b.jpg", JPG)
    write(tmp_path / "test" / "school" / "c.jpg", JPG)
    found = sources.discover(str(tmp_path))
    assert found.layout == "folder_presplit"
    assert {(t.source_id, t.split, t.label_text) for t in found.tiles} == {
        ("train/school/a.jpg", "train", "school"),
        ("train/not_school/b.jpg", "train", "not_school"),
        ("test/school/c.jpg", "test", "school"),
    }


def test_csv_with_relative_paths_zxy_columns_and_problems(tmp_path):
    write(tmp_path / "imgs" / "a.jpg", JPG)
    write(tmp_path / "imgs" / "62092-50163-17.jpg", JPG)
    write(tmp_path / "imgs" / "c.jpg", JPG)
    (tmp_path / "labels.csv").write_text(
        "path,label,z,x,y\n"
        "imgs/a.jpg,school,18,75000,120000\n"
        "imgs/62092-50163-17.jpg,not_school,,,\n"
        "imgs/missing.jpg,school,,,\n"
        "imgs/c.jpg,,,,\n"
    )
    found = sources.discover(str(tmp_path / "labels.csv"))
    assert found.layout == "csv"
    tiles = {t.source_id: t for t in found.tiles}
    assert tiles["imgs/a.jpg"].tile == mercantile.Tile(75000, 120000, 18)
    assert tiles["imgs/62092-50163-17.jpg"].tile == mercantile.Tile(62092, 50163, 17)
    assert {(m.source_id, m.reason) for m in found.missing} == {
        ("imgs/missing.jpg", "missing_file"),
        ("imgs/c.jpg", "missing_label"),
    }


def test_csv_errors_name_the_file_and_line(tmp_path):
    (tmp_path / "l.csv").write_text("file,class\na.jpg,x\n")
    with pytest.raises(InputError, match="l.csv: needs a header"):
        sources.discover(str(tmp_path / "l.csv"))
    write(tmp_path / "a.jpg", JPG)
    (tmp_path / "m.csv").write_text("path,label,z,x,y\na.jpg,x,3,99,0\n")
    with pytest.raises(InputError, match=r"m.csv:2: .* not a valid tile"):
        sources.discover(str(tmp_path / "m.csv"))


def test_missing_or_empty_input(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        sources.discover(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no class folders"):
        sources.discover(str(tmp_path / "empty"))
