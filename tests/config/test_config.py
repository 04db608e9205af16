"""One config tree: JSON round trips, flat overrides, defaults, validation, and one seed."""

import keras
import numpy as np
import pytest

from satx.config import (
    NO_AUGMENT,
    BenchConfig,
    Config,
    DataConfig,
    EvaluateConfig,
    PredictConfig,
    RecordsConfig,
    SearchSpace,
    SourceConfig,
    TrainConfig,
    TuneConfig,
    default_of,
)
from satx.errors import InputError


def test_round_trip_and_flat_overrides():
    config = TrainConfig().with_overrides({"records": "r", "workdir": "w"})
    assert config.data.records == "r" and config.workdir == "w"
    assert TrainConfig.from_dict(config.to_dict()) == config
    tuned = config.with_overrides(
        {
            "dropout": 0.5,
            "lr_phase1": 1e-4,
            "zoom_max": 1.1,
            "backbone": "xception",
            "freeze_cutoff": "0.75",
            "class_weight": [2, 1],
            "seed": 7,
        }
    )
    assert tuned.model.dropout == 0.5 and tuned.model.backbone == "xception"
    assert tuned.lr_phase1 == 1e-4 and tuned.freeze_cutoff == "0.75" and tuned.seed == 7
    assert tuned.model.augment.zoom_max == 1.1 and tuned.data.class_weight == (2, 1)
    assert tuned.model.augment.dihedral and config.model.dropout == 0.25  # nothing else moved
    with pytest.raises(InputError, match="unknown config keys"):
        config.with_overrides({"learning_rate": 1.0})
    with pytest.raises(InputError, match="unknown keys"):
        TrainConfig.from_dict({"model": {"droput": 0.1}})


def test_partial_nested_dicts_fill_in_defaults():
    config = TrainConfig.from_dict({"model": {"augment": {"dihedral": False}}, "seed": 3})
    assert not config.model.augment.dihedral and config.model.augment.zoom_max == 1.2
    assert config.seed == 3 and config.data == DataConfig()


def test_predict_config_in_parts_keeps_its_flat_flags_and_names():
    """Issue 37 split PredictConfig into inputs, scoring and outputs: no flag changed."""
    before = "model output input bbox aoi zoom mask mask_buffer_m mask_threshold split formats "
    before += "min_score list_missing threshold threshold_from positive_class class_names "
    before += "batch_size chunk_size read_threads strategy cpu_devices mixed_precision "
    before += "project_tiles overwrite dry_run tta runtime engine beam_options"
    source = set(SourceConfig.leaves())
    added = {"context", "localize"}  # issue 39's windows and points
    assert set(PredictConfig.leaves()) == set(before.split()) | source | added
    config = PredictConfig.make(
        model="m", output="o", zoom=18, chunk_size=8, source=SourceConfig(tiles="t/{z}/{x}/{y}")
    )
    assert config.scoring.model == "m" and config.outputs.output == "o"
    assert config.inputs.zoom == 18 and config.outputs.chunk_size == 8
    assert config.inputs.source.tiles == "t/{z}/{x}/{y}"
    assert config == PredictConfig.from_dict(config.to_dict())
    assert config.with_overrides({"fetch_threads": 3}).inputs.source.fetch_threads == 3
    with pytest.raises(InputError, match=r"unknown config keys \['modle'\]"):
        PredictConfig.make(modle="m")
    with pytest.raises(InputError, match="--mask keeps tiles of an area"):
        PredictConfig.make(model="m", output="o", input="i", mask="m.geojson")


@pytest.mark.parametrize(
    "cls", [TrainConfig, TuneConfig, RecordsConfig, EvaluateConfig, PredictConfig, BenchConfig]
)
def test_every_flat_name_names_one_field(cls):
    paths = cls.field_paths()  # raises when a name appears twice in the tree
    assert all(path[-1] == name for name, path in paths.items())


def test_a_field_name_repeated_in_a_tree_is_caught():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Inner(Config):
        seed: int = 1

    @dataclasses.dataclass(frozen=True)
    class Outer(Config):
        inner: Inner = dataclasses.field(default_factory=Inner)
        seed: int = 2

    with pytest.raises(TypeError, match="'seed' appears twice"):
        Outer.field_paths()


def test_one_seed_and_one_batch_meaning():
    names = TrainConfig.field_paths()
    assert [n for n in names if "seed" in n] == ["seed"]
    assert "batch_size" not in names and "per_replica_batch_size" in names
    assert default_of(TrainConfig, "dropout") == 0.25
    assert default_of(TuneConfig, "zoom_max") == 1.2  # through train -> model -> augment
    assert default_of(TuneConfig, "max_epochs") == 6


def test_tune_config_round_trips_with_its_search_space():
    config = TuneConfig(
        train=TrainConfig(seed=5),
        backbones=("tiny",),
        search_space=SearchSpace(dropout=(0.1,), freeze_cutoffs={"tiny": ("top",)}),
        max_trials=3,
    )
    again = TuneConfig.from_dict(config.to_dict())
    assert again == config and again.search_space.freeze_cutoffs == {"tiny": ("top",)}
    assert TuneConfig(train=TrainConfig()).backbone_names == ("mobilenetv2",)


def test_invalid_values_are_clear():
    with pytest.raises(InputError, match="optimizer"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(InputError, match="profile_batches"):
        TrainConfig(profile_batches="5")
    with pytest.raises(InputError, match="cache"):
        DataConfig(cache="disk")
    with pytest.raises(InputError, match="formats"):
        PredictConfig.make(model="m", output="o", formats=("shp",))
    with pytest.raises(InputError, match="--input is required"):
        RecordsConfig(output="o")
    with pytest.raises(InputError, match="export_best_on"):
        TuneConfig(export_best_on="val")


def _augmented(config: TrainConfig, images: np.ndarray) -> np.ndarray:
    from satx.train.phases import build_model

    model = build_model(config, 2)
    return np.asarray(model.get_layer("augment")(images, training=True))


def test_the_run_seed_reaches_the_augmentation():
    """Two seeds draw different augmentations, the same seed the same (it used to stop short)."""
    images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    base = TrainConfig().with_overrides({"backbone": "tiny", "weights": "none"})
    a = _augmented(base.with_overrides({"seed": 1}), images)
    again = _augmented(base.with_overrides({"seed": 1}), images)
    b = _augmented(base.with_overrides({"seed": 2}), images)
    np.testing.assert_array_equal(a, again)
    assert not np.allclose(a, b)
    keras.utils.set_random_seed(0)  # and Keras' global seed does not decide it
    np.testing.assert_array_equal(_augmented(base.with_overrides({"seed": 1}), images), a)
    off = base.with_overrides({"seed": 1, **NO_AUGMENT.to_dict()})
    from satx.train.phases import build_model

    assert [layer.name for layer in build_model(off, 2).layers].count("augment") == 0
