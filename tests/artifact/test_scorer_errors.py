"""A --model that is not what satx can score gets one clear error naming the file."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest

from satx.artifact.scorer import Scorer
from satx.errors import InputError
from tests.support.helpers import TINY, cli


def _saved_model_without_satx_signatures(folder):
    import tensorflow as tf

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def double(self, x):
            return {"y": 2 * x}

    module = Doubler()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.double})
    return folder


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "no such file or folder"),
        ("text.keras", "not a zip archive"),
        ("weights.h5", "a .h5 file"),
        ("zip.keras", "Keras cannot load it"),
        ("empty_folder", "a folder without saved_model.pb or numbered versions"),
        ("foreign_saved_model", "a SavedModel without satx's signatures"),
        ("damaged_saved_model", "TensorFlow cannot load this SavedModel"),
        ("other_classes", "lists 3 classes but the model has 2 outputs"),
    ],
)
def test_what_is_not_a_satx_model_is_named_with_what_was_expected(
    case, message, tiny_model, tmp_path
):
    path = tmp_path / case
    if case == "text.keras" or case == "weights.h5":
        path.write_text("not a model\n")
    elif case == "zip.keras":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("hello.txt", "a zip, but not a Keras model")
    elif case == "empty_folder":
        path.mkdir()
    elif case == "foreign_saved_model":
        _saved_model_without_satx_signatures(path)
    elif case in ("damaged_saved_model", "other_classes"):
        shutil.copytree(tiny_model["export"], path)
        if case == "damaged_saved_model":
            (path / "saved_model.pb").write_bytes(b"\x08\x01garbage" * 10)
        else:
            (path / "class_names.json").write_text(json.dumps(["a", "b", "c"]))
    with pytest.raises(InputError) as err:
        Scorer(path)
    assert message in str(err.value) and str(path) in str(err.value)
    if case not in ("other_classes", "foreign_saved_model"):
        assert "expected an export folder" in str(err.value)


@pytest.mark.slow
def test_the_cli_says_it_in_one_line(tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_text("not a model\n")
    (tmp_path / "tiles").mkdir()
    proc = cli(
        "satx.predict",
        f"--model={bad}",
        f"--input={tmp_path / 'tiles'}",
        f"--output={tmp_path / 'o'}",
        env=TINY,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: --model={bad}: not a zip archive; expected an export folder (satx.train's "
        "export/, newest version used), one SavedModel version folder, or a .keras zip "
        "(model.save)"
    ]
