"""PyTorch and safetensors checkpoints read as numpy arrays, without torch.

    read_state_dict(path) -> {"features.0.0.weight": np.ndarray, ...}

Three serialisations:
- PyTorch's legacy format (before 1.6, and `_use_new_zipfile_serialization=False`): five
  pickles in a row (magic number, protocol version, system info, the object, the storage keys),
  then each storage's element count (int64) and raw bytes, in the order of the keys.
- PyTorch's zip format (1.6 and later): `<name>/data.pkl` and one `<name>/data/<key>` entry per
  storage.
- safetensors: an 8-byte header length, a JSON header of dtype, shape and byte offsets, the bytes.

The pickles are read by an unpickler that knows only the names a state dict uses (tensors,
storages, OrderedDict); any other global is refused, so a hostile file cannot run code. A
checkpoint that wraps its weights (`{"state_dict": ...}`, `{"model": ...}`) is unwrapped.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from satx.errors import SatxError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": np.uint16,  # widened to float32 below
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_SAFETENSORS_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "BF16": np.uint16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}
_WRAPPERS = ("state_dict", "model", "model_state", "model_state_dict", "net", "params")
MAX_HEADER_BYTES = 100 << 20


class CheckpointError(SatxError):
    """A checkpoint that cannot be read: truncated, not a state dict, or not a checkpoint."""


class _Storage:
    """A storage named in the pickle; its bytes are known at once (zip) or later (legacy)."""

    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key, self.dtype, self.numel = key, np.dtype(dtype), numel
        self.array: np.ndarray | None = None


class _Tensor:
    """A view of a storage, resolved to an array once every storage has its bytes."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def resolve(self, where: str) -> np.ndarray:
        data = self.storage.array
        if data is None:
            raise CheckpointError(f"{where}: storage {self.storage.key} has no data (truncated?)")
        size, stride = tuple(int(n) for n in self.size), tuple(int(s) for s in self.stride)
        if len(size) != len(stride) or min(size + stride + (self.offset,), default=0) < 0:
            raise CheckpointError(f"{where}: a tensor has an invalid shape or stride")
        last = self.offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True) if n)
        if all(size) and last >= data.size:
            raise CheckpointError(f"{where}: a tensor reaches past its storage")
        itemsize = data.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], size, tuple(s * itemsize for s in stride), writeable=False
        )
        return _widen(np.array(view), self.storage.dtype)


def _widen(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.uint16 and array.dtype == np.uint16:  # bfloat16: the high half of a float32
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _rebuild_tensor(storage: _Storage, offset: int, size: tuple, stride: tuple, *_: Any):
    return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data: Any, *_: Any) -> Any:
    return data


class _Unpickler(pickle.Unpickler):
    """Only what a state dict needs; storages come from `load_storage`."""

    def __init__(self, file: Any, where: str, load_storage: Any):
        super().__init__(file)
        self.where, self.load_storage = where, load_storage

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return name
        raise CheckpointError(
            f"{self.where}: holds {module}.{name}, which is not part of a state dict; save "
            "`model.state_dict()` (a whole pickled model is not read, for safety)"
        )

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise CheckpointError(f"{self.where}: unknown persistent id {str(pid)[:40]!r}")
        kind, key, numel = pid[1], str(pid[2]), int(pid[4])
        if kind not in _STORAGE_DTYPES:
            raise CheckpointError(f"{self.where}: unsupported storage type {kind!r}")
        return self.load_storage(key, np.dtype(_STORAGE_DTYPES[kind]), numel)


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The named arrays of a `.pth`/`.pt`/`.bin` (PyTorch) or `.safetensors` checkpoint.

    Raises:
        CheckpointError: the file is truncated, not a checkpoint, or not a state dict.
    """
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise CheckpointError(f"{where}: cannot read ({err.strerror or err})") from err
    try:
        if zipfile.is_zipfile(io.BytesIO(data)):
            state = _read_zip(data, where)
        elif data[:2] == b"\x80\x02":
            state = _read_legacy(data, where)
        else:
            state = _read_safetensors(data, where)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError) as err:
        raise CheckpointError(
            f"{where}: not a readable checkpoint ({type(err).__name__}: {err}); is it complete?"
        ) from err
    return _tensors_only(_unwrap(state, where), where)


def _read_legacy(data: bytes, where: str) -> Any:
    storages: dict[str, _Storage] = {}

    def load_storage(key: str, dtype: np.dtype, numel: int) -> _Storage:
        return storages.setdefault(key, _Storage(key, dtype, numel))

    stream = io.BytesIO(data)
    if _Unpickler(stream, where, load_storage).load() != _LEGACY_MAGIC:
        raise CheckpointError(f"{where}: not a PyTorch checkpoint (no magic number)")
    for _ in range(2):  # protocol version, system info
        _Unpickler(stream, where, load_storage).load()
    state = _Unpickler(stream, where, load_storage).load()
    keys = _Unpickler(stream, where, load_storage).load()
    for key in keys:
        storage = storages.get(str(key))
        header = stream.read(8)
        if storage is None or len(header) < 8:
            raise CheckpointError(f"{where}: truncated or damaged at storage {key}")
        (numel,) = struct.unpack("<q", header)
        raw = stream.read(numel * storage.dtype.itemsize)
        if numel != storage.numel or len(raw) < numel * storage.dtype.itemsize:
            raise CheckpointError(f"{where}: truncated at storage {key} ({len(raw)} bytes read)")
        storage.array = np.frombuffer(raw, storage.dtype)
    return _resolve(state, where)


def _read_zip(data: bytes, where: str) -> Any:
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pickles) != 1:
        raise CheckpointError(f"{where}: a zip without one data.pkl is not a PyTorch checkpoint")
    prefix = pickles[0][: -len("data.pkl")]

    def load_storage(key: str, dtype: np.dtype, numel: int) -> _Storage:
        storage = _Storage(key, dtype, numel)
        raw = archive.read(f"{prefix}data/{key}")
        if len(raw) < numel * storage.dtype.itemsize:
            raise CheckpointError(f"{where}: storage {key} is truncated")
        storage.array = np.frombuffer(raw, storage.dtype, count=numel)
        return storage

    with archive.open(pickles[0]) as stream:
        state = _Unpickler(stream, where, load_storage).load()
    return _resolve(state, where)


def _read_safetensors(data: bytes, where: str) -> dict[str, np.ndarray]:
    if len(data) < 8:
        raise CheckpointError(f"{where}: not a PyTorch or safetensors checkpoint (too short)")
    (length,) = struct.unpack("<Q", data[:8])
    if length > min(MAX_HEADER_BYTES, len(data) - 8):
        raise CheckpointError(
            f"{where}: not a PyTorch (.pth) or safetensors checkpoint, or it is truncated"
        )
    header = json.loads(data[8 : 8 + length])
    body = memoryview(data)[8 + length :]
    state = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = np.dtype(_SAFETENSORS_DTYPES[entry["dtype"]])
        begin, end = (int(n) for n in entry["data_offsets"])
        shape = tuple(int(n) for n in entry["shape"])
        if not 0 <= begin <= end <= len(body) or end - begin != dtype.itemsize * _count(shape):
            raise CheckpointError(f"{where}: tensor {name} lies outside the file (truncated?)")
        array = np.frombuffer(body[begin:end], dtype).reshape(shape).copy()
        state[name] = _widen(array, dtype) if entry["dtype"] == "BF16" else array
    return state


def _count(shape: tuple) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


def _resolve(obj: Any, where: str) -> Any:
    if isinstance(obj, _Tensor):
        return obj.resolve(where)
    if isinstance(obj, Mapping):
        return {key: _resolve(value, where) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_resolve(value, where) for value in obj)
    return obj


def _unwrap(state: Any, where: str) -> Any:
    while isinstance(state, Mapping) and not _has_arrays(state):
        inner = [state[key] for key in _WRAPPERS if isinstance(state.get(key), Mapping)]
        if not inner:
            break
        state = inner[0]
    return state


def _has_arrays(state: Mapping) -> bool:
    return any(isinstance(value, np.ndarray) for value in state.values())


def _tensors_only(state: Any, where: str) -> dict[str, np.ndarray]:
    if not isinstance(state, Mapping) or not _has_arrays(state):
        raise CheckpointError(f"{where}: holds no state dict (no named tensors)")
    return {str(k): v for k, v in state.items() if isinstance(v, np.ndarray)}
