"""make_records on the real imagery in ../shared/data (skipped when it is absent)."""

import json
from pathlib import Path

import mercantile
import numpy as np
import pytest

from satx import geo, inspect
from satx.writer import make_records
from tests.conftest import read_all, shared_data

EUROSAT_COUNTS = {  # ../shared/data/README.md
    "AnnualCrop": 3000,
    "Forest": 3000,
    "HerbaceousVegetation": 3000,
    "Highway": 2500,
    "Industrial": 2500,
    "Pasture": 2000,
    "PermanentCrop": 2500,
    "Residential": 3000,
    "River": 2500,
    "SeaLake": 3000,
}


@pytest.mark.slow
@pytest.mark.realdata
def test_eurosat_all_27000_tiles(records_config, tmp_path):
    root = shared_data("eurosat")
    config = records_config(
        root, image_size=64, workers=2, min_shards=8, split="train:0.8,val:0.1,test:0.1"
    )
    manifest = make_records(config)
    assert manifest["records"] == 27000 and manifest["quarantine"]["count"] == 0
    assert manifest["class_names"] == sorted(EUROSAT_COUNTS)
    totals = {
        c: sum(s["classes"].get(c, 0) for s in manifest["splits"].values()) for c in EUROSAT_COUNTS
    }
    assert totals == EUROSAT_COUNTS
    assert manifest["geolocation"] == {"with": 0, "without": 27000}
    assert manifest["split_method"]["method"] == "hashed"
    for split, fraction in [("train", 0.8), ("val", 0.1), ("test", 0.1)]:
        assert abs(manifest["splits"][split]["records"] / 27000 - fraction) < 0.01
    assert manifest["image_changes"] == {}  # 64x64 RGB JPEGs are stored as they are
    assert all(c.problem is None for c in inspect.verify(config.output))


@pytest.mark.realdata
def test_xyz_tiles_real_names_and_lying_extensions(records_config, tmp_path):
    root = shared_data("xyz-tiles")
    labels = np.load(root / "labels-cl.npz")
    rows = ["path,label"]
    for tile_id in sorted(labels.files):  # z17, labelled; one id has no image file
        rows.append(f"{root / (tile_id + '.jpg')},{'building' if labels[tile_id][2] else 'other'}")
    rows += [f"{p},unlabelled" for p in sorted((root / "png-z12").glob("*.png"))]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    manifest = make_records(records_config(tmp_path / "labels.csv", image_size=256))
    assert manifest["records"] == 8 + 12
    quarantine = (tmp_path / "records" / "quarantine.jsonl").read_text().splitlines()
    assert [
        (q["reason"], q["source_id"].endswith("62092-50162-17.jpg"))
        for q in map(json.loads, quarantine)
    ] == [("missing_file", True)]
    assert manifest["image_changes"] == {"extension_mismatch": 12}  # .png files hold JPEG
    assert manifest["formats"] == {"jpeg": 20}
    assert manifest["geolocation"] == {"with": 20, "without": 0}
    _, examples = read_all(tmp_path / "records")
    zooms = sorted(ex.tile.z for _, ex in examples)
    assert zooms == [12] * 12 + [17] * 8
    for _, ex in examples:
        tile = geo.parse_tile_path(ex.source_id)
        assert ex.tile == tile
        assert ex.geolocation.bbox == tuple(mercantile.bounds(tile))
        if tile.z == 17:  # the README places the zoom-17 tiles in Portugal
            assert -10 < ex.geolocation.lon < -6 and 36 < ex.geolocation.lat < 43
        assert ex.encoded == Path(ex.source_id).read_bytes()
