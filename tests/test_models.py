"""Backbone registry and classifier: build, freeze, unfreeze, weights, save/load."""

import keras
import numpy as np
import pytest

from satx import backbones, models
from satx.augment import AugmentConfig
from satx.backbones import BackboneError
from satx.models import ModelConfig

NO_AUG = AugmentConfig(
    dihedral=False, brightness=(1, 1), channel_shift=0, contrast=(1, 1), zoom_max=1.0
)


def _tiny(**kw):
    return models.build_classifier(ModelConfig(backbone="tiny", weights="none", **kw), 2)


def _images(n=4, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_registry():
    assert {"xception", "mobilenetv2", "tiny"} <= set(backbones.list_backbones())
    assert backbones.get_spec("xception").image_size == 256
    assert backbones.get_spec("mobilenetv2").preprocess == "tf"
    with pytest.raises(BackboneError, match="choose one of"):
        backbones.get_spec("resnet9000")


def test_classifier_outputs_float32_probabilities_from_uint8():
    model = _tiny()
    assert model.input.dtype == "uint8"
    probs = model.predict(_images(), verbose=0)
    assert probs.shape == (4, 2) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert models.build_classifier(
        ModelConfig(backbone="tiny", weights="none"), 5
    ).output.shape == (None, 5)


def _weights(layers):
    return [np.array(w) for layer in layers for w in layer.get_weights()]


def _train_step(model, n=8):
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="categorical_crossentropy")
    y = keras.utils.to_categorical(np.arange(n) % 2, 2)
    size = model.input.shape[1]
    model.fit(_images(n, size), y, epochs=1, batch_size=n, verbose=0)


def test_phase1_freezes_the_backbone_and_phase2_unfreezes_from_the_cut():
    model = _tiny(augment=NO_AUG)
    layers = models.backbone_layers(model)
    names = [layer.name for layer in layers]
    models.freeze_backbone(model)
    before = _weights(layers)
    head_before = model.get_layer("dense").get_weights()[0].copy()
    _train_step(model)
    for a, b in zip(before, _weights(layers), strict=True):
        np.testing.assert_array_equal(a, b)  # phase 1: backbone untouched, BN stats included
    assert not np.array_equal(head_before, model.get_layer("dense").get_weights()[0])

    start = models.unfreeze_from(model, "top", "tiny")  # named cut point -> layer conv2
    assert names[start] == "conv2"
    frozen = {layer.name: _weights([layer]) for layer in layers}
    _train_step(model)
    for layer in layers:
        now = _weights([layer])
        changed = any(
            not np.array_equal(a, b) for a, b in zip(frozen[layer.name], now, strict=True)
        )
        expected = layer.name == "conv2"  # bn2 stays frozen: BatchNorm never fine-tunes
        assert changed == expected, layer.name


@pytest.mark.parametrize(
    "cutoff, index", [("conv2", 4), (4, 4), ("4", 4), (0.5, 4), ("0.5", 4), (0.0, 0), (1.0, 7)]
)
def test_cutoff_forms(cutoff, index):
    model = _tiny()
    inner = model.get_layer(models.BACKBONE_LAYER).layers[-1]
    assert len(inner.layers) == 7
    assert backbones.resolve_cutoff(inner, cutoff, {"top": "conv2"}) == index


@pytest.mark.parametrize("cutoff", ["nope", 99, 1.5])
def test_bad_cutoffs_are_clear(cutoff):
    inner = _tiny().get_layer(models.BACKBONE_LAYER).layers[-1]
    with pytest.raises(BackboneError, match="freeze cutoff"):
        backbones.resolve_cutoff(inner, cutoff)


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


def test_saved_model_reloads_in_safe_mode(tmp_path):
    model = _tiny(augment=AugmentConfig(rotation_deg=5.0))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    x = _images()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name, size", [("mobilenetv2", 32), ("xception", 71)])
def test_real_backbones_train_a_step_and_round_trip_local_weights(name, size, tmp_path):
    model = models.build_classifier(
        ModelConfig(backbone=name, image_size=size, weights="none", augment=NO_AUG), 2
    )
    inner = model.get_layer(models.BACKBONE_LAYER).layers[-1]
    spec = backbones.get_spec(name)
    for cut in [*spec.cutoffs, spec.default_cutoff]:  # every named cut point exists
        assert 0 < backbones.resolve_cutoff(inner, cut, spec.cutoffs) < len(inner.layers)
    models.freeze_backbone(model)
    _train_step(model, n=4)
    start = models.unfreeze_from(model, spec.default_cutoff, name)
    trainable = [layer.name for layer in inner.layers if layer.trainable_weights]
    assert trainable and all(inner.layers.index(inner.get_layer(n)) >= start for n in trainable)
    _train_step(model, n=4)
    path = tmp_path / f"{name}.weights.h5"
    inner.save_weights(path)
    again = backbones.create_backbone(name, size, str(path))
    for a, b in zip(inner.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_backbone_plugin_modules_register_on_first_miss(monkeypatch):
    monkeypatch.setenv(backbones.PLUGINS_ENV, "tests.tiny_backbone")
    assert backbones.get_spec("tiny").image_size == 32  # already registered: no import needed
    monkeypatch.setenv(backbones.PLUGINS_ENV, "no_such_satx_plugin")
    with pytest.raises(BackboneError, match="cannot import 'no_such_satx_plugin'"):
        backbones.get_spec("not_registered")
