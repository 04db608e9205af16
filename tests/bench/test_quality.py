"""The quality benchmark end to end on tiny sizes, and the recipe files it reads."""

import json

import pytest

from satx.bench.quality import bench_quality, format_quality, make_view
from satx.errors import InputError
from satx.records.sample import write_sample_tiles
from satx.train.recipe import read_recipe, recipe_config
from tests.support.helpers import REPO


def test_shipped_recipes_are_valid_training_configs():
    for path in sorted((REPO / "configs").glob("*.json")):
        recipe = read_recipe(path)
        assert recipe["about"]["command"], path
        config = recipe_config(path, records="r", workdir="w")
        assert config.lr_schedule == "cosine" and config.optimizer == "adamw", path


def test_a_recipe_with_unknown_keys_is_refused(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"train": {}, "trian": {}}))
    with pytest.raises(InputError, match="unknown recipe keys"):
        read_recipe(tmp_path / "bad.json")


def test_quality_bench_on_a_tiny_make_view(tmp_path):
    data = tmp_path / "tiles"
    write_sample_tiles(data, count=60, school_fraction=0.3, seed=5, size=32)
    recipe = tmp_path / "tiny.json"
    train = {
        "model": {"backbone": "tiny", "weights": "none", "image_size": 32, "dense_units": 8},
        "n_epo_phase1": 0,
        "n_epo_phase2": 2,
        "per_replica_batch_size": 8,
        "lr_phase2": 0.003,
        "optimizer": "adamw",
        "weight_decay": 0.01,
        "lr_schedule": "cosine",
        "warmup_epochs": 0.5,
        "label_smoothing": 0.05,
        "mixed_precision": "off",
    }
    view = {"positive": "school", "negatives_per_positive": 2}
    recipe.write_text(json.dumps({"about": {"command": "pytest"}, "view": view, "train": train}))
    r = bench_quality(str(data), str(recipe), str(tmp_path / "work"))
    assert 0 <= r["accuracy"] <= 1 and r["roc_auc"] is not None
    assert r["temperature"] > 0 and r["ece_calibrated"] >= 0
    assert r["tta_cost"] > 0 and r["epochs_run"] == 2  # the cost is measured, not asserted
    assert "TTA (dihedral)" in format_quality(r)
    positives = len(list((tmp_path / "work" / "view" / "positive").iterdir()))
    negatives = len(list((tmp_path / "work" / "view" / "negative").iterdir()))
    assert negatives == min(60 - positives, 2 * positives)
    with pytest.raises(InputError, match="no such class folder"):
        make_view(data, {"positive": "lake"}, tmp_path / "v", 1)


def test_a_per_class_view_keeps_n_tiles_of_each_class(tmp_path):
    data = tmp_path / "tiles"
    for name, count in (("a", 5), ("b", 3)):
        (data / name).mkdir(parents=True)
        for i in range(count):
            (data / name / f"{i}.png").write_bytes(b"png")
    view = make_view(data, {"per_class": 4}, tmp_path / "v", 1)
    counts = {d.name: len(list(d.iterdir())) for d in view.iterdir()}
    assert counts == {"a": 4, "b": 3}
    again = make_view(data, {"per_class": 4}, tmp_path / "w", 1)
    assert sorted(p.name for p in (again / "a").iterdir()) == sorted(
        p.name for p in (view / "a").iterdir()
    )


def test_a_train_share_keeps_validation_and_test_and_trains_on_a_subset():
    from satx.bench.quality import split_for
    from satx.config.base import parse_split_spec
    from satx.records.splits import SplitItem, assign_splits

    items = [SplitItem(None, f"{i:08x}", i % 10) for i in range(4000)]  # untiled, like EuroSAT
    full = assign_splits(items, parse_split_spec(split_for(1.0)), seed=42)
    fifth = assign_splits(items, parse_split_spec(split_for(0.2)), seed=42)
    for name in ("val", "test"):
        assert [i for i, s in enumerate(full) if s == name] == [
            i for i, s in enumerate(fifth) if s == name
        ]
    train = {i for i, s in enumerate(fifth) if s == "train"}
    assert train < {i for i, s in enumerate(full) if s == "train"}
    assert 0.15 < len(train) / full.count("train") < 0.25
