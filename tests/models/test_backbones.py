"""The backbone registry: specs, preprocessing, weights, plugins, and every real backbone once."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from satx.config import NO_AUGMENT
from satx.models import backbones
from satx.models.backbones import BackboneError, Preprocess
from satx.models.classifier import BACKBONE_LAYER, unfreeze_from
from tests.helpers import tiny_train_config

REAL = ("efficientnetv2b0", "mobilenetv2", "xception")
SMALL = {"efficientnetv2b0": 32, "mobilenetv2": 32, "xception": 71}  # sizes that train fast


def test_registry():
    assert backbones.list_backbones(listed_only=True) == list(REAL)
    assert "tiny" in backbones.list_backbones() and "tiny" not in REAL
    assert backbones.get_spec("xception").image_size == 256
    assert backbones.get_spec("mobilenetv2").preprocess == "tf"
    assert backbones.get_spec("efficientnetv2b0").preprocess == "none"  # takes 0-255 inputs
    with pytest.raises(BackboneError, match="choose one of"):
        backbones.get_spec("resnet9000")


def test_a_name_registered_twice_is_refused():
    with pytest.raises(BackboneError, match="'tiny' is already registered .*tiny_backbone"):
        backbones.register_backbone("tiny", image_size=32)(lambda **kw: None)
    assert backbones.get_spec("tiny").constructor.__module__ == "tests.tiny_backbone"
    with pytest.raises(BackboneError, match="preprocess must be one of"):
        backbones.register_backbone("odd", image_size=32, preprocess="bgr")


@pytest.mark.parametrize("mode", ["tf", "torch", "caffe"])
def test_preprocess_modes_equal_keras_applications(mode):
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    expected = keras.applications.imagenet_utils.preprocess_input(x.copy(), mode=mode)
    np.testing.assert_allclose(np.asarray(Preprocess(mode)(x)), expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(Preprocess("none")(x)), x)
    with pytest.raises(BackboneError, match="choose one of"):
        Preprocess("bgr")


def test_the_classifier_uses_the_specs_preprocessing():
    from satx.models.classifier import build_classifier

    for name in ("tiny", "efficientnetv2b0"):
        config = tiny_train_config("r", "w", backbone=name).model
        layer = build_classifier(config, 2, seed=1).get_layer("preprocess")
        assert layer.mode == backbones.get_spec(name).preprocess


def test_imagenet_download_failure_gives_advice(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("simulated: no route to host")

    monkeypatch.setattr("keras.src.utils.file_utils.get_file", offline)
    with pytest.raises(BackboneError) as err:
        backbones.create_backbone("mobilenetv2", 96, "imagenet")
    message = str(err.value)
    assert "simulated: no route to host" in message
    assert "--weights=PATH" in message and "--weights=none" in message


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # Keras, before it raises
def test_weights_file_errors(tmp_path):
    with pytest.raises(BackboneError, match="no such file"):
        backbones.create_backbone("tiny", 32, str(tmp_path / "missing.weights.h5"))
    backbones.create_backbone("tiny", 16, "none").save_weights(tmp_path / "small.weights.h5")
    with pytest.raises(BackboneError, match="cannot load"):
        backbones.create_backbone("mobilenetv2", 32, str(tmp_path / "small.weights.h5"))


def test_backbone_plugin_modules_register_on_first_miss(monkeypatch):
    monkeypatch.setenv(backbones.PLUGINS_ENV, "tests.tiny_backbone")
    assert backbones.get_spec("tiny").image_size == 32  # already registered: no import needed
    monkeypatch.setenv(backbones.PLUGINS_ENV, "no_such_satx_plugin")
    with pytest.raises(BackboneError, match="cannot import 'no_such_satx_plugin'"):
        backbones.get_spec("not_registered")


@pytest.mark.slow
@pytest.mark.parametrize("name", REAL)
def test_each_real_backbone_trains_both_phases_exports_and_round_trips_weights(
    name, sample_records, tmp_path
):
    """Each real backbone built once: named cuts, `satx.train` both phases, export, weights."""
    from satx.train.fit import Workdir, train

    size = SMALL[name]
    config = tiny_train_config(
        sample_records,
        tmp_path / "run",
        backbone=name,
        image_size=size,
        n_epo_phase1=1,
        n_epo_phase2=1,
        steps_per_epoch=1,
        per_replica_batch_size=4,
        tensorboard_images=0,
    ).with_overrides(NO_AUGMENT.to_dict())
    summary = train(config, command="pytest")
    assert summary["epochs_run"] == [0, 1]
    model = keras.models.load_model(Workdir(tmp_path / "run").model, safe_mode=True)
    assert model.name == f"satx_{name}" and model.input.shape[1] == size
    inner = model.get_layer(BACKBONE_LAYER).layers[-1]
    spec = backbones.get_spec(name)
    for cut in [*spec.cutoffs.values(), spec.default_cutoff]:  # every named cut point exists
        assert 0 < backbones.resolve_cutoff(inner, cut, spec.cutoffs) < len(inner.layers)
    start = unfreeze_from(model, spec.default_cutoff, name)  # pretrained-style phase 2
    trainable = [layer.name for layer in inner.layers if layer.trainable_weights]
    assert trainable and all(inner.layers.index(inner.get_layer(n)) >= start for n in trainable)
    images = np.random.default_rng(0).integers(0, 256, (3, size, size, 3), dtype=np.uint8)
    served = tf.saved_model.load(summary["export"]).signatures["serving_default"]
    np.testing.assert_allclose(
        served(images=tf.constant(images))["probabilities"].numpy(),
        model.predict(images, verbose=0),
        atol=1e-5,
    )
    assert json.loads((tmp_path / "run" / "run.json").read_text())["seed"] == 42
    path = tmp_path / f"{name}.weights.h5"
    inner.save_weights(path)
    again = backbones.create_backbone(name, size, str(path))
    for a, b in zip(inner.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
