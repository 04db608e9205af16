"""Image formats by content: the one table of magic bytes, and the file names satx lists.

A tile's format is always read from its first bytes, never its extension: services send HTML
error pages with a 200, and files get renamed. satx stores and decodes JPEG and PNG; the other
formats are recognised so that they are named when refused.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import NamedTuple


class ImageFormat(NamedTuple):
    """A format: its name, MIME type, and the bytes a file of it starts with."""

    name: str
    mime: str
    magic: bytes


FORMATS = (
    ImageFormat("jpeg", "image/jpeg", b"\xff\xd8\xff"),
    ImageFormat("png", "image/png", b"\x89PNG\r\n\x1a\n"),
    ImageFormat("gif", "image/gif", b"GIF8"),
    ImageFormat("webp", "image/webp", b"RIFF"),  # and "WEBP" at offset 8
    ImageFormat("bmp", "image/bmp", b"BM"),
    ImageFormat("tiff", "image/tiff", b"II*\x00"),
    ImageFormat("tiff", "image/tiff", b"MM\x00*"),
)
SUPPORTED = ("jpeg", "png")  # what records store and models decode
EXTENSIONS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}  # the files a folder listing takes
PNG_MAGIC = FORMATS[1].magic


def sniff(data: bytes) -> ImageFormat | None:
    """The format `data` starts with, or None when it is no image satx knows."""
    for fmt in FORMATS:
        if data.startswith(fmt.magic) and (fmt.name != "webp" or data[8:12] == b"WEBP"):
            return fmt
    return None


def format_name(data: bytes) -> str | None:
    """`jpeg`, `png`, `gif`, `webp`, `bmp` or `tiff` by content, else None."""
    fmt = sniff(data)
    return fmt.name if fmt else None


def mime_type(data: bytes) -> str:
    """The MIME type to serve `data` with."""
    fmt = sniff(data)
    return fmt.mime if fmt else "application/octet-stream"


MAX_PIXELS = 1 << 24  # 4096 x 4096: a tile is 65,536 (256 x 256), a 2x2 window 262,144
_SOF = {*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC}  # JPEG start-of-frame markers


def pixel_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as a JPEG's or PNG's header states it, read without decoding; else None."""
    if data.startswith(PNG_MAGIC) and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if not data.startswith(FORMATS[0].magic):
        return None
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length field
            i += 2
            continue
        if marker in _SOF:
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(
                data[i + 5 : i + 7], "big"
            )
        if marker == 0xDA:  # image data starts: no frame header before it
            return None
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def too_large(data: bytes) -> str | None:
    """Why an image is refused before decoding (its header claims over `MAX_PIXELS`), or None.

    One limit for every decode path (records, predict, review, export calibration): a 558 KB
    PNG claiming 14000 x 14000 pixels took +600 MB to decode, and a JPEG claiming 60000 x 60000
    stopped a whole make_records run.
    """
    size = pixel_size(data)
    if size is None or size[0] * size[1] <= MAX_PIXELS:
        return None
    w, h = size
    return (
        f"its header claims {w}x{h} pixels, over the limit of {MAX_PIXELS:,}; "
        "tiles are a few hundred pixels"
    )


def is_image_name(name: str) -> bool:
    """Whether a file name has a tile extension (.jpg, .jpeg, .png, any case)."""
    return PurePosixPath(name).suffix.lower() in EXTENSIONS


def extension_format(name: str) -> str | None:
    """The format a file name claims (`.jpg` -> jpeg), or None for other extensions."""
    return EXTENSIONS.get(PurePosixPath(name).suffix.lower())
