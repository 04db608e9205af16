"""Test-time augmentation: the dihedral mean equals the mean of the 8 transformed predictions."""

import numpy as np
import pytest

from satx.artifact.scorer import Scorer
from satx.errors import InputError


def _symmetries(images: np.ndarray) -> list[np.ndarray]:
    out = []
    for k in range(4):
        turned = np.rot90(images, k, axes=(1, 2))
        out += [turned, turned[:, :, ::-1]]
    return out


def test_dihedral_tta_is_the_mean_over_the_eight_symmetries(tiny_model):
    plain = Scorer(tiny_model["export"])
    tta = Scorer(tiny_model["export"], tta="dihedral")
    images = np.random.default_rng(3).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    expected = np.mean([plain(np.ascontiguousarray(x)) for x in _symmetries(images)], axis=0)
    np.testing.assert_allclose(tta(images), expected, atol=1e-6)
    assert not np.allclose(tta(images), plain(images))  # the symmetries do change the scores
    with pytest.raises(InputError, match="--tta=flips"):
        Scorer(tiny_model["export"], tta="flips")


def test_the_tta_export_signature_equals_the_scorers_tta(tiny_model, tmp_path):
    import keras
    import tensorflow as tf

    from satx.artifact.calibration import Calibration
    from satx.artifact.saved_model import write_saved_model

    model = keras.saving.load_model(tiny_model["root"] / "model.keras", compile=False)
    names = list(tiny_model["records"].manifest.class_names)
    fitted = Calibration(temperature=1.5, bias=(0.0, 0.4))
    export = write_saved_model(model, tmp_path / "export", names, calibration=fitted, tta=True)
    images = np.random.default_rng(4).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    served = tf.saved_model.load(str(export)).signatures["serving_tta"]
    got = served(images=tf.constant(images))["probabilities"].numpy()
    np.testing.assert_allclose(got, Scorer(export, tta="dihedral")(images), atol=1e-6)
