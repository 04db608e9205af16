"""Validate one encoded tile: detect its format by content, decode it once, fix what can be fixed.

A tile is kept byte-for-byte when it is already an RGB JPEG/PNG of the target size (no lossy
re-encode). Grayscale, palette, RGBA or CMYK tiles are converted to RGB; tiles of another size
are resized or rejected; everything else that cannot be used raises `ImageRejected` with a
reason code that lands in the quarantine list.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import simplejpeg
from PIL import Image, UnidentifiedImageError

from satx.errors import SatxError
from satx.tiles.formats import SUPPORTED, extension_format, format_name, pixel_size, too_large

JPEG_QUALITY = 95


class ImageRejected(SatxError):
    """A tile that cannot go into the records; `reason` is a short code for the quarantine list."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class PreparedImage:
    """An image ready to store, and what was done to it."""

    encoded: bytes
    image_format: str
    height: int
    width: int
    changes: tuple[str, ...]  # e.g. ("extension_mismatch", "converted_rgba", "resized")


def _decode(data: bytes, keep_size: int | None = None) -> tuple[Image.Image, bool]:
    """Decode fully, so that truncation and corruption surface here.

    With `keep_size`, an RGB JPEG of exactly that size will be stored as it is, so its pixels
    are not needed: libjpeg then decodes at 1/8 scale, which still reads and entropy-decodes
    every block (truncation and corrupt data fail the same way) but skips the full inverse DCT
    and colour conversion. Returns the image and whether it was decoded that way (its size is
    then the reduced one).
    """
    scaled = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format == "JPEG" and image.mode == "RGB" and image.size == (keep_size,) * 2:
                side = max(1, keep_size // 8)
                scaled = image.draft("RGB", (side, side)) is not None
            image.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        raise ImageRejected("too_large", f"{err}; tiles should be a few hundred pixels") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ImageRejected(
            "corrupt", f"decode failed ({err}); re-download or re-export it"
        ) from err
    return image, scaled


def kept_jpeg(data: bytes, size: int) -> bool:
    """Whether `data` is a colour JPEG of `size` x `size` that decodes without a single warning.

    The fast path of validation: libjpeg-turbo (through simplejpeg) decodes at 1/8 scale with
    `strict`, so any recoverable error raises too. Every block is still entropy-decoded, as in
    `_decode`, but without Pillow's header parsing in Python. False is no verdict: the tile
    then goes through Pillow as before, which decides (it accepts some files libjpeg warns
    about, as TensorFlow's decoder does).
    """
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        if (height, width) != (size, size) or colorspace not in ("YCbCr", "RGB"):
            return False
        side = max(1, size // 8)
        simplejpeg.decode_jpeg(data, min_height=side, min_width=side, strict=True)
    except ValueError:
        return False
    return True


def _to_rgb(image: Image.Image) -> tuple[Image.Image, str | None]:
    if image.mode == "RGB":
        return image, None
    change = f"converted_{image.mode.lower().replace(';', '')}"
    if image.mode == "P":  # palette with transparency must go through RGBA to keep colours
        image = image.convert("RGBA")
    return image.convert("RGB"), change


def _encode(image: Image.Image, image_format: str) -> bytes:
    out = io.BytesIO()
    if image_format == "jpeg":
        image.save(out, format="JPEG", quality=JPEG_QUALITY)
    else:
        image.save(out, format="PNG", compress_level=6)
    return out.getvalue()


def check_format(data: bytes) -> str:
    """The tile's format (`jpeg` or `png`) from its content.

    Raises:
        ImageRejected: with reason `empty_file`, `not_an_image` or `unsupported_format`.
    """
    if not data:
        raise ImageRejected("empty_file", "zero bytes; the download or copy probably failed")
    fmt = format_name(data)
    if fmt is None:
        raise ImageRejected("not_an_image", "content is not JPEG or PNG (magic bytes unknown)")
    if fmt not in SUPPORTED:
        raise ImageRejected(
            "unsupported_format", f"{fmt.upper()} content; convert it to JPEG or PNG"
        )
    return fmt


def prepare_image(
    data: bytes, path: str, image_size: int, on_size_mismatch: str = "reject"
) -> PreparedImage:
    """Validate and normalise one tile's bytes.

    Args:
        data: the file's bytes.
        path: its name (only the extension is used, to report when it lies about the format).
        image_size: the side in pixels every stored tile must have.
        on_size_mismatch: `resize` (to image_size x image_size) or `reject`.

    Returns:
        The bytes to store, untouched when already valid RGB JPEG/PNG of the right size.

    Raises:
        ImageRejected: with reason `empty_file`, `not_an_image`, `unsupported_format`, `corrupt`
            or `size_mismatch`.
    """
    fmt = check_format(data)
    if (why := too_large(data)) is not None:
        raise ImageRejected("too_large", why)
    changes: list[str] = []
    claimed = extension_format(path)
    if claimed is not None and claimed != fmt:
        changes.append("extension_mismatch")
    if fmt == "jpeg" and kept_jpeg(data, image_size):
        return PreparedImage(data, fmt, image_size, image_size, tuple(changes))
    image, scaled = _decode(data, keep_size=image_size)
    if scaled:  # valid RGB JPEG of the right size: kept byte for byte
        return PreparedImage(data, fmt, image_size, image_size, tuple(changes))
    image, converted = _to_rgb(image)
    if converted:
        changes.append(converted)
    if image.size != (image_size, image_size):
        found = f"{image.size[0]}x{image.size[1]}"
        if on_size_mismatch != "resize":
            raise ImageRejected(
                "size_mismatch",
                f"{found}, expected {image_size}x{image_size}; "
                "pass --on_size_mismatch=resize or --image_size to match",
            )
        image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
        changes.append(f"resized_from_{found}")
    encoded = data if not changes or changes == ["extension_mismatch"] else _encode(image, fmt)
    return PreparedImage(encoded, fmt, image_size, image_size, tuple(changes))


def peek_size(data: bytes) -> tuple[int, int] | None:
    """Image (width, height) from the header only, or None when it cannot be read.

    A header claiming more pixels than Pillow allows is a size like any other here (the tile
    is refused as `too_large` when it is written), never an error that stops the run.
    """
    if (size := pixel_size(data)) is not None:
        return size
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def mosaic(tiles: Sequence[bytes], side: int, size: int) -> PreparedImage:
    """`side` x `side` tiles (row by row), each `size` px, as one image (a context window).

    Each tile is checked as make_records checks a tile (format, pixel limit, full decode); a
    tile of another size is resized. The window is JPEG when every tile is, else PNG.

    Raises:
        ImageRejected: naming the first tile (by its position) that cannot be used.
    """
    canvas = Image.new("RGB", (side * size, side * size))
    formats = set()
    for k, data in enumerate(tiles):
        try:
            formats.add(check_format(data))
            if (why := too_large(data)) is not None:
                raise ImageRejected("too_large", why)
            image, _ = _decode(data)
        except ImageRejected as err:
            raise ImageRejected(err.reason, f"tile {k + 1} of the window: {err.detail}") from err
        image, _ = _to_rgb(image)
        if image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.BILINEAR)
        row, col = divmod(k, side)
        canvas.paste(image, (col * size, row * size))
    image_format = "jpeg" if formats == {"jpeg"} else "png"
    return PreparedImage(_encode(canvas, image_format), image_format, side * size, side * size, ())
