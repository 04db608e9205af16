"""TFRecord files and `tf.train.Example` bytes, written in pure Python (no TensorFlow import).

make_records' worker processes only serialise examples and frame them; importing TensorFlow
for that cost each worker ~1.7 s of start-up and ~40 us per tile in protobuf objects. The
formats are small and fixed (Apache Beam's TFRecordIO writes them the same way):
- a TFRecord is `uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)`,
  little-endian; a GZIP file is that stream gzip-compressed;
- `Example{features: Features{feature: map<string, Feature>}}`, where a `Feature` holds one of
  `bytes_list` (1), `float_list` (2, packed) or `int64_list` (3, packed).
`example_bytes` emits map entries in sorted key order, which is what
`tf.train.Example.SerializeToString(deterministic=True)` produces; tests pin both formats
byte-for-byte against TensorFlow's own writer and serialiser.
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import BinaryIO

import google_crc32c

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


@functools.lru_cache(maxsize=1024)
def _key(key: str) -> bytes:
    return _field(1, key.encode())


def example_bytes(features: Mapping[str, FeatureValue]) -> bytes:
    """Serialised `tf.train.Example` with these features, map keys in sorted order."""
    entries = b"".join(
        _field(1, _key(key) + _field(2, _feature(features[key]))) for key in sorted(features)
    )
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
