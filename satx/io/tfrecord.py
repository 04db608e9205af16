"""TFRecord files and `tf.train.Example` bytes, written and read in pure Python (no TensorFlow).

make_records' worker processes only serialise examples and frame them; importing TensorFlow
for that cost each worker seconds of start-up and a protobuf object per tile, and checking
or dumping a shard (`tools.inspect_records`) needs no TensorFlow either. The formats are
small and fixed (Apache Beam's TFRecordIO writes them the same way):
- a TFRecord is `uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)`,
  little-endian; a GZIP file is that stream gzip-compressed;
- `Example{features: Features{feature: map<string, Feature>}}`, where a `Feature` holds one of
  `bytes_list` (1), `float_list` (2, packed) or `int64_list` (3, packed).
`example_bytes` emits map entries in sorted key order, which is what
`tf.train.Example.SerializeToString(deterministic=True)` produces; tests pin both formats
byte-for-byte against TensorFlow's own writer and serialiser, and the reader against its parser.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import BinaryIO

import google_crc32c

from satx.errors import RecordsError

FeatureValue = Sequence[bytes] | Sequence[int] | Sequence[float]
_MASK_DELTA = 0xA282EAD8
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib's gzip container, what TensorFlow's GZIP reader expects
_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C of `data`."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(record: bytes) -> bytes:
    """One record with its TFRecord length, checksums and payload."""
    length = _LENGTH.pack(len(record))
    return b"".join(
        (length, _CRC.pack(masked_crc32c(length)), record, _CRC.pack(masked_crc32c(record)))
    )


_ONE_BYTE = tuple(bytes((i,)) for i in range(0x80))


def _varint(value: int) -> bytes:
    if 0 <= value < 0x80:  # nearly every tag, length and label: skip the loop
        return _ONE_BYTE[value]
    value &= 0xFFFFFFFFFFFFFFFF  # negative int64 are ten-byte two's complement varints
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2); field numbers here are all below 16."""
    return _ONE_BYTE[number << 3 | 2] + _varint(len(payload)) + payload


def _feature(values: FeatureValue) -> bytes:
    if not values:
        raise ValueError("a feature needs at least one value (its type comes from the values)")
    first = values[0]
    if isinstance(first, bytes):
        return _field(1, b"".join(_field(1, v) for v in values))  # type: ignore[arg-type]
    if isinstance(first, float):
        packed = struct.pack(f"<{len(values)}f", *values)
        return _field(2, _field(1, packed))
    if isinstance(first, int):
        packed = b"".join(_varint(v) for v in values)  # type: ignore[arg-type]
        return _field(3, _field(1, packed))
    raise TypeError(f"feature values must be bytes, float or int, not {type(first).__name__}")


_FLOAT = struct.Struct("<f")


def _single_feature(value: bytes | int | float) -> bytes | None:
    """`_feature([value])` for the usual one-value feature, with fewer calls; None otherwise.

    make_records spends its Python time per tile here (15 features a record).
    """
    kind = type(value)
    if kind is bytes:
        inner = b"\x0a" + _varint(len(value)) + value  # type: ignore[arg-type]
        return b"\x0a" + _varint(len(inner)) + inner  # Feature.bytes_list
    if kind is int:
        packed = _varint(value)  # type: ignore[arg-type]
        inner = b"\x0a" + _varint(len(packed)) + packed
        return b"\x1a" + _varint(len(inner)) + inner  # Feature.int64_list
    if kind is float:
        return b"\x12\x06\x0a\x04" + _FLOAT.pack(value)  # type: ignore[arg-type]
    return None


@functools.lru_cache(maxsize=1024)
def _key(key: str) -> bytes:
    return _field(1, key.encode())


@functools.lru_cache(maxsize=64)
def _sorted_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(keys))


def _entry(key: str, values: FeatureValue) -> bytes:
    """One `map<string, Feature>` entry."""
    feature = _single_feature(values[0]) if len(values) == 1 else None
    body = _key(key) + _field(2, feature if feature is not None else _feature(values))
    return b"\x0a" + _varint(len(body)) + body


def example_bytes(features: Mapping[str, FeatureValue]) -> bytes:
    """Serialised `tf.train.Example` with these features, map keys in sorted order."""
    entries = b"".join([_entry(key, features[key]) for key in _sorted_keys(tuple(features))])
    return _field(1, entries)


class RecordFileWriter:
    """Writes TFRecords to a local file, optionally GZIP-compressed; use as a context manager."""

    def __init__(self, path: str, compression: str = "none"):
        if compression not in ("none", "gzip"):
            raise ValueError(f"compression must be 'none' or 'gzip', not {compression!r}")
        self._file: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._zlib = None
        if compression == "gzip":
            self._zlib = zlib.compressobj(6, zlib.DEFLATED, _GZIP_WBITS)

    def write(self, record: bytes) -> None:
        """Append one record."""
        data = frame(record)
        self._file.write(self._zlib.compress(data) if self._zlib else data)

    def close(self) -> None:
        """Flush and close the file."""
        if self._zlib is not None:
            self._file.write(self._zlib.flush())
            self._zlib = None
        self._file.close()

    def __enter__(self) -> RecordFileWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_records(
    source: str | BinaryIO, compression: str = "none", name: str = ""
) -> Iterator[bytes]:
    """Yield the records of a TFRecord file (a path or an open binary file), checksums checked.

    Raises:
        RecordsError: the file is truncated or a checksum does not match (naming the record).
    """
    name = name or str(getattr(source, "name", source))
    index = 0
    with contextlib.ExitStack() as stack:
        f = stack.enter_context(open(source, "rb")) if isinstance(source, str) else source
        if compression == "gzip":
            f = stack.enter_context(gzip.GzipFile(fileobj=f, mode="rb"))
        try:
            while header := f.read(_HEADER):
                yield _checked_record(f, header, name, index)
                index += 1
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:  # a damaged GZIP stream
            raise _damaged(name, index, str(err)) from err


_HEADER = _LENGTH.size + _CRC.size


def _checked_record(f: BinaryIO, header: bytes, path: str, index: int) -> bytes:
    if len(header) < _HEADER:
        raise _damaged(path, index, "truncated")
    length = header[: _LENGTH.size]
    if _CRC.unpack_from(header, _LENGTH.size)[0] != masked_crc32c(length):
        raise _damaged(path, index, "length checksum does not match")
    (size,) = _LENGTH.unpack(length)
    data, crc = f.read(size), f.read(_CRC.size)
    if len(data) < size or len(crc) < _CRC.size:
        raise _damaged(path, index, "truncated")
    if _CRC.unpack(crc)[0] != masked_crc32c(data):
        raise _damaged(path, index, "data checksum does not match")
    return data


def _damaged(path: str, index: int, why: str) -> RecordsError:
    return RecordsError(f"{path}: damaged TFRecord shard at record {index} ({why})")


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of a protobuf message: ints for varints, else bytes."""
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = _read_varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 2:
            size, pos = _read_varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, pos = buf[pos : pos + width], pos + width
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _feature_values(feature: bytes) -> list[bytes] | list[float] | list[int]:
    for kind, _, payload in _fields(feature):
        values: list = []
        for _, wire, item in _fields(payload):  # type: ignore[arg-type]
            if kind == 1:
                values.append(bytes(item))  # type: ignore[arg-type]
            elif kind == 2 and wire == 2:  # packed floats
                values += struct.unpack(f"<{len(item) // 4}f", item)  # type: ignore[arg-type]
            elif kind == 2:
                values += struct.unpack("<f", item)  # type: ignore[arg-type]
            elif wire == 2:  # packed int64 varints
                pos = 0
                while pos < len(item):  # type: ignore[arg-type]
                    value, pos = _read_varint(item, pos)  # type: ignore[arg-type]
                    values.append(_signed(value))
            else:
                values.append(_signed(item))  # type: ignore[arg-type]
        return values
    return []


def parse_example(data: bytes) -> dict[str, list[bytes] | list[float] | list[int]]:
    """The features of serialised `tf.train.Example` bytes, as lists of values by key."""
    features: dict[str, list[bytes] | list[float] | list[int]] = {}
    for _, _, body in _fields(data):
        for _, _, entry in _fields(body):  # type: ignore[arg-type]
            key, value = "", b""
            for number, _, part in _fields(entry):  # type: ignore[arg-type]
                if number == 1:
                    key = bytes(part).decode()  # type: ignore[arg-type]
                else:
                    value = part  # type: ignore[assignment]
            features[key] = _feature_values(value)
    return features
