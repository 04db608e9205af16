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


def is_image_name(name: str) -> bool:
    """Whether a file name has a tile extension (.jpg, .jpeg, .png, any case)."""
    return PurePosixPath(name).suffix.lower() in EXTENSIONS


def extension_format(name: str) -> str | None:
    """The format a file name claims (`.jpg` -> jpeg), or None for other extensions."""
    return EXTENSIONS.get(PurePosixPath(name).suffix.lower())
