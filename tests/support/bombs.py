"""Images whose headers claim far more pixels than any tile (decompression bombs), made here."""

from __future__ import annotations

import struct
import zlib

from tests.support.helpers import encode, noise


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real 32 px JPEG whose frame header is rewritten to claim `width` x `height`."""
    data = bytearray(encode(noise(1)))
    i = 2
    while data[i + 1] not in (0xC0, 0xC1, 0xC2):
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    data[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def png_bomb(side: int) -> bytes:
    """A valid black RGB PNG of `side` x `side` pixels: a few hundred KB that decode to GBs."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    packer = zlib.compressobj(9)
    row = bytes(1 + 3 * side)  # filter byte 0, then black pixels
    compressed = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", compressed)
        + chunk(b"IEND", b"")
    )
