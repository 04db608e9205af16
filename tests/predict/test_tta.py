"""Test-time augmentation: the dihedral mean equals the mean of the 8 transformed predictions."""

import numpy as np
import pytest

from satx.errors import InputError
from satx.predict.scorer import Scorer


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
