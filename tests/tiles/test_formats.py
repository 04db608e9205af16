"""Image sizes read from headers alone, and the one pixel limit (satx.tiles.formats)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from satx.tiles.formats import MAX_PIXELS, pixel_size, too_large
from tests.support.bombs import jpeg_claiming
from tests.support.helpers import encode, noise


def test_header_sizes_match_pillow_for_every_jpeg_and_png_kind():
    rng = np.random.default_rng(0)
    for w, h in [(32, 32), (256, 256), (300, 17), (1, 4000)]:
        pixels = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        for fmt, kwargs in [("JPEG", {}), ("JPEG", {"progressive": True}), ("PNG", {})]:
            data = encode(pixels, fmt, **kwargs)
            assert pixel_size(data) == Image.open(io.BytesIO(data)).size == (w, h)
    grey = io.BytesIO()
    Image.fromarray(pixels[..., 0]).save(grey, "JPEG")
    assert pixel_size(grey.getvalue()) == (1, 4000)


def test_only_headers_over_the_limit_are_too_large():
    assert too_large(encode(noise(0))) is None
    assert pixel_size(jpeg_claiming(60000, 60000)) == (60000, 60000)
    assert "60000x60000" in too_large(jpeg_claiming(60000, 60000))
    assert too_large(jpeg_claiming(4096, 4096)) is None and MAX_PIXELS == 4096 * 4096
    assert too_large(jpeg_claiming(4097, 4096)) is not None
    for junk in (b"", b"\xff\xd8\xff", b"\xff\xd8\xff\xe0\x00", b"<html>", b"\x89PNG\r\n\x1a\n"):
        assert pixel_size(junk) is None and too_large(junk) is None
