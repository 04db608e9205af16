"""Checkpoints written by hand, in each serialisation PyTorch and safetensors use, without torch.

`write_legacy`, `write_zip` and `write_safetensors` take `{name: np.ndarray}`. The pickles name
torch's own globals (`torch._utils._rebuild_tensor_v2`, `torch.FloatStorage`), as torch writes
them: a stand-in `torch` module is put in `sys.modules` while pickling.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import struct
import sys
import types
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_NAMES = {
    np.dtype(np.float32): "FloatStorage",
    np.dtype(np.float16): "HalfStorage",
    np.dtype(np.float64): "DoubleStorage",
    np.dtype(np.int64): "LongStorage",
}


class _Storage:
    def __init__(self, key: str, array: np.ndarray):
        self.key, self.array = key, np.array(array, order="C").reshape(-1)


class _Tensor:
    """A tensor as torch pickles it: a storage, an offset, a size and strides (in elements)."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self):
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return rebuild, (self.storage, self.offset, self.size, self.stride, False, OrderedDict())


@contextlib.contextmanager
def _fake_torch():
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # never called: only its name is pickled
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in _STORAGE_NAMES.values():
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils
    saved = {key: sys.modules.get(key) for key in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        yield torch
    finally:
        for key, module in saved.items():
            if module is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = module


def _tensors(state: dict[str, np.ndarray], transpose: set[str]) -> tuple[OrderedDict, list]:
    """Each array as a tensor on its own storage; names in `transpose` as a transposed view."""
    tensors, storages = OrderedDict(), []
    for i, (name, array) in enumerate(state.items()):
        array = np.asarray(array)
        if name in transpose and array.ndim == 2:  # stored as the transpose, viewed back
            storage = _Storage(str(i), array.T)
            tensor = _Tensor(storage, 0, array.shape, (1, array.shape[0]))
        else:
            storage = _Storage(str(i), array)
            strides = tuple(s // array.itemsize for s in np.array(array, order="C").strides)
            tensor = _Tensor(storage, 0, array.shape, strides)
        tensors[name] = tensor
        storages.append(storage)
    return tensors, storages


class _Pickler(pickle.Pickler):
    def __init__(self, file, torch, legacy: bool):
        super().__init__(file, protocol=2)
        self.torch, self.legacy = torch, legacy

    def persistent_id(self, obj):
        if not isinstance(obj, _Storage):
            return None
        kind = getattr(self.torch, _STORAGE_NAMES[obj.array.dtype])
        if self.legacy:
            return ("storage", kind, obj.key, "cpu", obj.array.size, None)
        return ("storage", kind, obj.key, "cpu", obj.array.size)


def write_legacy(
    path: Path, state: dict, transpose: set[str] = frozenset(), wrap: str = ""
) -> None:
    """PyTorch's legacy serialisation (`_use_new_zipfile_serialization=False`)."""
    tensors, storages = _tensors(state, transpose)
    out = io.BytesIO()
    with _fake_torch() as torch:
        for header in (MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, out, protocol=2)
        _Pickler(out, torch, legacy=True).dump({wrap: tensors} if wrap else tensors)
    pickle.dump([s.key for s in storages], out, protocol=2)
    for storage in storages:
        out.write(struct.pack("<q", storage.array.size) + storage.array.tobytes())
    Path(path).write_bytes(out.getvalue())


def write_zip(path: Path, state: dict) -> None:
    """PyTorch's zip serialisation (torch.save since 1.6)."""
    tensors, storages = _tensors(state, set())
    data = io.BytesIO()
    with _fake_torch() as torch:
        _Pickler(data, torch, legacy=False).dump(tensors)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data.getvalue())
        for storage in storages:
            archive.writestr(f"archive/data/{storage.key}", storage.array.tobytes())
        archive.writestr("archive/version", "3\n")


def write_safetensors(path: Path, state: dict) -> None:
    """The safetensors format: header length, JSON header, the bytes."""
    names = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.int64): "I64"}
    header, body, offset = {"__metadata__": {"format": "pt"}}, b"", 0
    for name, array in state.items():
        raw = np.array(array, order="C").tobytes()
        header[name] = {
            "dtype": names[np.asarray(array).dtype],
            "shape": list(np.shape(array)),
            "data_offsets": [offset, offset + len(raw)],
        }
        body += raw
        offset += len(raw)
    text = json.dumps(header).encode()
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + body)
