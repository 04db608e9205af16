"""One listing for every input kind: folders, CSVs of paths / z,x,y / lon,lat; one format table."""

import mercantile
import pytest

from satx import geo
from satx.config import RecordsConfig
from satx.errors import InputError
from satx.records.inputs import list_input
from satx.tiles import formats
from satx.tiles.folders import read_folder
from satx.tiles.refs import Rejection, TileRef
from satx.tiles.tables import read_rows
from tests.support.helpers import encode, noise, write

JPG = encode(noise(0))


def listing_of(path):
    return list_input(RecordsConfig(input=str(path), output="unused"))


def test_class_folders_with_every_tile_name_pattern(tmp_path):
    write(tmp_path / "school" / "75000-120000-18.jpg", JPG)
    write(tmp_path / "school" / "18" / "75001" / "120000.jpeg", JPG)
    write(tmp_path / "not_school" / "18_75002_120001.png", JPG)
    write(tmp_path / "not_school" / "deep" / "er" / "plain.jpg", JPG)
    write(tmp_path / "not_school" / "notes.txt", b"x")
    write(tmp_path / "loose.jpg", JPG)
    write(tmp_path / ".cache" / "school" / "x.jpg", JPG)
    found = listing_of(tmp_path)
    assert found.layout == "folder"
    by_id = {t.source_id: t for t in found.refs}
    assert set(by_id) == {
        "school/75000-120000-18.jpg",
        "school/18/75001/120000.jpeg",
        "not_school/18_75002_120001.png",
        "not_school/deep/er/plain.jpg",
    }
    assert by_id["school/18/75001/120000.jpeg"].tile == mercantile.Tile(75001, 120000, 18)
    assert by_id["not_school/18_75002_120001.png"].tile == mercantile.Tile(75002, 120001, 18)
    assert by_id["not_school/deep/er/plain.jpg"].tile is None
    assert by_id["not_school/deep/er/plain.jpg"].label == "not_school"
    assert set(found.ignored) == {"not_school/notes.txt", "loose.jpg"}


def test_presplit_folders_keep_their_split(tmp_path):
    write(tmp_path / "train" / "school" / "a.jpg", JPG)
    write(tmp_path / "train" / "not_school" / "b.jpg", JPG)
    write(tmp_path / "test" / "school" / "c.jpg", JPG)
    found = listing_of(tmp_path)
    assert found.layout == "folder_presplit"
    assert {(t.source_id, t.split, t.label) for t in found.refs} == {
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
    found = listing_of(tmp_path / "labels.csv")
    assert found.layout == "csv"
    tiles = {t.source_id: t for t in found.refs}
    assert tiles["imgs/a.jpg"].tile == mercantile.Tile(75000, 120000, 18)
    assert tiles["imgs/62092-50163-17.jpg"].tile == mercantile.Tile(62092, 50163, 17)
    assert {(m.source_id, m.reason) for m in found.rejected} == {
        ("imgs/missing.jpg", "missing_file"),
        ("imgs/c.jpg", "missing_label"),
    }


def test_csv_errors_name_the_file_and_line(tmp_path):
    (tmp_path / "l.csv").write_text("file,class\na.jpg,x\n")
    with pytest.raises(InputError, match="l.csv: needs a header"):
        listing_of(tmp_path / "l.csv")
    write(tmp_path / "a.jpg", JPG)
    (tmp_path / "m.csv").write_text("path,label,z,x,y\na.jpg,x,3,99,0\nb.jpg,y,,,\n")
    bad, missing = listing_of(tmp_path / "m.csv").rejected  # refused rows, then missing files
    assert (missing.source_id, missing.reason) == ("b.jpg", "missing_file")
    assert (bad.source_id, bad.reason) == (f"{tmp_path / 'm.csv'}:2", "bad_row")
    assert bad.detail.endswith("m.csv:2: z,x,y = 3,99,0 is not a valid tile address")
    (tmp_path / "s.csv").write_text("path,label,split\na.jpg,x,Train!\n")
    with pytest.raises(InputError, match=r"s.csv:2: split name 'Train!' must match"):
        listing_of(tmp_path / "s.csv")


def test_missing_or_empty_input(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        listing_of(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no class folders"):
        listing_of(tmp_path / "empty")
    with pytest.raises(InputError, match="no .jpg/.jpeg/.png tiles in this folder"):
        read_folder(str(tmp_path / "empty"), labelled=False)


def test_one_csv_parser_for_paths_zxy_and_lonlat_rows(tmp_path):
    tile = mercantile.Tile(77128, 127700, 18)
    lon, lat = geo.geolocate(tile)[1:3]
    (tmp_path / "t.csv").write_text(
        "Path,Z,X,Y,Lon,Lat\n"  # any case
        "a/18/1/2.jpg,,,,,\n"  # a path naming its tile
        "b.jpg,18,3,4,,\n"  # a path and an address
        f",,,,{lon},{lat}\n"  # a point at --zoom
        ",18,5,6,,\n"  # an address, read from the source
        ",18,x,6,,\n"  # not integers
        ",,,,10,89\n"  # off the web-mercator map
        ",,,,,\n"  # nothing
    )
    rows = read_rows(str(tmp_path / "t.csv"), zoom=18)
    refs = [r for r in rows if isinstance(r, TileRef)]
    assert [(r.source_id, r.tile) for r in refs] == [
        ("a/18/1/2.jpg", mercantile.Tile(1, 2, 18)),
        ("b.jpg", mercantile.Tile(3, 4, 18)),
        ("18/77128/127700", tile),
        ("18/5/6", mercantile.Tile(5, 6, 18)),
    ]
    assert refs[0].location == f"{tmp_path}/a/18/1/2.jpg" and refs[2].location is None
    bad = [r for r in rows if isinstance(r, Rejection)]
    assert [(r.reason, r.detail.split(": ", 1)[1]) for r in bad] == [
        ("bad_row", "z,x,y must be integers, got 18,x,6"),
        ("bad_row", "lon,lat = 10.0,89.0 is off the web-mercator map"),
        ("bad_row", "no path, z,x,y or lon,lat"),
    ]
    assert bad[0].source_id == f"{tmp_path / 't.csv'}:6"
    with pytest.raises(InputError, match=r"t.csv:4: a CSV of lon,lat needs --zoom"):
        read_rows(str(tmp_path / "t.csv"))
    with pytest.raises(InputError, match="needs a header with 'path', 'z,x,y' or 'lon,lat'"):
        (tmp_path / "h.csv").write_text("file\na.jpg\n")
        read_rows(str(tmp_path / "h.csv"))


def test_one_table_of_magic_bytes():
    png = encode(noise(1), "PNG")
    assert formats.format_name(JPG) == "jpeg" and formats.mime_type(png) == "image/png"
    assert formats.format_name(b"RIFF\0\0\0\0WEBPVP8 ") == "webp"
    assert formats.format_name(b"RIFF\0\0\0\0WAVEfmt ") is None  # RIFF, but not an image
    assert formats.format_name(b"<!doctype html>") is None
    assert formats.mime_type(b"<html>") == "application/octet-stream"
    assert formats.is_image_name("a/B.JPEG") and not formats.is_image_name("notes.txt")


def test_a_folder_and_a_csv_of_its_paths_give_the_same_records(tmp_path):
    from satx.records.make import make_records
    from tests.support.helpers import shard_digests

    root = tmp_path / "tiles"
    rows = []
    for i in range(24):
        label = "school" if i % 3 else "not_school"
        name = f"{label}/{75000 + i}-120000-18.jpg"
        write(root / name, encode(noise(40 + i)))
        rows.append(f"{name},{label}")
    (root / "labels.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    settings = dict(image_size=32, min_shards=2, workers=1, split="train:0.5,val:0.5")
    folder = make_records(RecordsConfig(input=str(root), output=str(tmp_path / "a"), **settings))
    table = make_records(
        RecordsConfig(input=str(root / "labels.csv"), output=str(tmp_path / "b"), **settings)
    )
    assert shard_digests(tmp_path / "a") == shard_digests(tmp_path / "b")
    assert folder.inputs.listing_sha256 == table.inputs.listing_sha256
    assert (folder.inputs.layout, table.inputs.layout) == ("folder", "csv")


def test_places_keep_their_split_and_a_tile_in_two_splits_is_refused():
    """A CSV of lon,lat rows with a `split` column: each place's tile keeps the row's split."""
    import mercantile

    from satx.tiles.places import merge_places
    from satx.tiles.refs import TileRef

    a, b = mercantile.Tile(10, 20, 18), mercantile.Tile(11, 20, 18)
    refs = [
        TileRef("r1", a, None, "school", "test", "p.csv:2"),
        TileRef("r2", a, None, "school", "test", "p.csv:3"),
        TileRef("r3", b, None, "school", "train", "p.csv:4"),
        TileRef("r4", b, None, "school", "val", "p.csv:5"),
    ]
    merged, refused = merge_places(refs)
    assert [(r.tile, r.split) for r in merged] == [(a, "test")]
    assert [r.reason for r in refused] == ["conflicting_splits"]
    assert "splits train, val by p.csv:4; p.csv:5" in refused[0].detail
