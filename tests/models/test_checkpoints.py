"""The checkpoint reader: each serialisation, written by hand, read back exactly; damaged,
hostile and foreign files refused with one line naming the file."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from satx.models.checkpoints import CheckpointError, read_state_dict
from tests.support.torch_files import MAGIC, write_legacy, write_safetensors, write_zip

STATE = {
    "conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) / 7,
    "fc.weight": np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5,
    "bn.running_var": np.array([0.5, 1e-6], np.float16),
    "bn.num_batches_tracked": np.array(12, np.int64),
}


def _same(state: dict, expected: dict) -> None:
    assert list(state) == list(expected)
    for name, array in expected.items():
        assert state[name].dtype == array.dtype and state[name].shape == array.shape, name
        np.testing.assert_array_equal(state[name], array)


@pytest.mark.parametrize("writer", [write_legacy, write_zip, write_safetensors])
def test_each_serialisation_reads_back_exactly(tmp_path, writer):
    path = tmp_path / "weights.pth"
    writer(path, STATE)
    _same(read_state_dict(path), STATE)


def test_legacy_strided_views_and_wrapped_state_dicts(tmp_path):
    path = tmp_path / "wrapped.pt"
    write_legacy(path, STATE, transpose={"fc.weight"}, wrap="state_dict")
    _same(read_state_dict(path), STATE)


def test_bfloat16_is_widened_to_float32(tmp_path):
    path = tmp_path / "bf16.safetensors"
    values = np.array([1.5, -2.0, 3.140625], np.float32)
    header = b'{"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}'
    raw = (values.view(np.uint32) >> 16).astype(np.uint16).tobytes()
    path.write_bytes(len(header).to_bytes(8, "little") + header + raw)
    np.testing.assert_array_equal(read_state_dict(path)["w"], values)


@pytest.mark.parametrize("writer", [write_legacy, write_zip, write_safetensors])
def test_a_truncated_file_is_one_line_naming_it(tmp_path, writer):
    path = tmp_path / "cut.pth"
    writer(path, STATE)
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    with pytest.raises(CheckpointError) as err:
        read_state_dict(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert "truncated" in str(err.value) or "complete" in str(err.value)


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path.write_bytes(pickle.dumps(MAGIC, protocol=2) + pickle.dumps(Evil(), protocol=2))
    with pytest.raises(CheckpointError, match=r"posix\.system, which is not part of a state"):
        read_state_dict(path)
    path.write_bytes(pickle.dumps(Evil(), protocol=2))  # no magic number first either
    with pytest.raises(CheckpointError, match="not part of a state dict"):
        read_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "too short"),
        (b"<html>not found</html>", "not a PyTorch"),
        (pickle.dumps(MAGIC, protocol=2) + pickle.dumps(1001, protocol=2), "not a readable"),
    ],
)
def test_files_that_are_no_checkpoint(tmp_path, content, message):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        read_state_dict(path)


def test_a_checkpoint_without_tensors_is_refused(tmp_path):
    path = tmp_path / "empty.safetensors"
    write_safetensors(path, {})
    with pytest.raises(CheckpointError, match="no state dict"):
        read_state_dict(path)
