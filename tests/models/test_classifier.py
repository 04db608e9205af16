"""The classifier: uint8 in, float32 probabilities out; freeze, unfreeze, save and reload."""

import keras
import numpy as np
import pytest

from satx.config import NO_AUGMENT as NO_AUG
from satx.config import AugmentConfig, ModelConfig
from satx.models import backbones
from satx.models import classifier as models
from satx.models.backbones import BackboneError


def _tiny(num_classes=2, **kw):
    config = ModelConfig(backbone="tiny", weights="none", **kw)
    return models.build_classifier(config, num_classes, seed=1)


def _images(n=4, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_classifier_outputs_float32_probabilities_from_uint8():
    model = _tiny()
    assert model.input.dtype == "uint8"
    probs = model.predict(_images(), verbose=0)
    assert probs.shape == (4, 2) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert _tiny(5).output.shape == (None, 5)


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


def test_saved_model_reloads_in_safe_mode(tmp_path):
    model = _tiny(augment=AugmentConfig(rotation_deg=5.0))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    x = _images()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)
