"""Input kinds: one spec each, asked by make_records and predict alike."""

from pathlib import Path

import mercantile
import pytest

from satx.errors import InputError
from satx.tiles import kinds
from satx.tiles.kinds import InputKind, ReadOptions, input_rows, kind_of, labelled_input
from satx.tiles.refs import Listing, Rejection, TileRef


def test_a_path_is_the_first_kind_that_matches():
    assert kind_of("a/places.geojson").name == "places"
    assert kind_of("gs://b/list.CSV").name == "csv"
    assert kind_of("tiles/").name == "folder"


def test_what_a_stage_cannot_use_is_one_line(tmp_path):
    places = tmp_path / "p.geojson"
    places.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(InputError, match="predict does not score labelled places"):
        input_rows(str(places), 18)
    with pytest.raises(InputError, match="no such folder or CSV file"):
        input_rows(str(tmp_path / "nothing"), 18)
    with pytest.raises(InputError, match="labelled places need --zoom"):
        labelled_input(str(places), ReadOptions(labelled=True))


def test_one_spec_adds_a_kind_for_both_stages(tmp_path, monkeypatch):
    """A text file of `z/x/y label` lines, added as one spec."""

    def rows(path, options):
        found = []
        for n, line in enumerate(Path(path).read_text().splitlines(), 1):
            address, _, label = line.partition(" ")
            try:
                z, x, y = map(int, address.split("/"))
            except ValueError:
                found.append(Rejection(f"{path}:{n}", label, "bad_row", f"line {n}: {address}"))
                continue
            found.append(TileRef(address, mercantile.Tile(x, y, z), None, label or None))
        return found

    def labelled(path, options):
        found = rows(path, options)
        refs = tuple(r for r in found if isinstance(r, TileRef))
        return Listing("lines", refs, tuple(r for r in found if isinstance(r, Rejection)))

    spec = InputKind("lines", "a tile list", lambda p: p.endswith(".tiles"), labelled, rows)
    monkeypatch.setattr(kinds, "KINDS", (spec, *kinds.KINDS))
    listed = tmp_path / "a.tiles"
    listed.write_text("18/10/20 school\nnonsense other\n18/11/20 other\n")
    kind, listing = labelled_input(str(listed), ReadOptions(labelled=True))
    assert kind is spec and [r.label for r in listing.refs] == ["school", "other"]
    assert [r.reason for r in listing.rejected] == ["bad_row"]
    kind, rows = input_rows(str(listed), 0)
    assert [type(r).__name__ for r in rows] == ["TileRef", "Rejection", "TileRef"]
