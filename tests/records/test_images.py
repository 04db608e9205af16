import numpy as np
import pytest
from PIL import Image

from satx.records import images
from satx.records.images import ImageRejected
from tests.support.helpers import encode, noise

SIZE = 32


def decode(data):
    import io

    return Image.open(io.BytesIO(data))


def test_valid_jpeg_is_kept_byte_for_byte():
    data = encode(noise(0), "JPEG", quality=80)
    out = images.prepare_image(data, "a/b.jpg", SIZE)
    assert out.encoded == data and out.image_format == "jpeg" and out.changes == ()


def test_png_named_jpeg_is_kept_as_jpeg_and_flagged():
    data = encode(noise(0), "JPEG")
    out = images.prepare_image(data, "tile.png", SIZE)
    assert out.encoded == data and out.image_format == "jpeg"
    assert out.changes == ("extension_mismatch",)


@pytest.mark.parametrize(
    "array, fmt, change",
    [
        (noise(1, (SIZE, SIZE, 4)), "PNG", "converted_rgba"),
        (noise(2, (SIZE, SIZE)), "PNG", "converted_l"),
        (noise(3, (SIZE, SIZE)), "JPEG", "converted_l"),
    ],
)
def test_non_rgb_is_converted_to_rgb(array, fmt, change):
    out = images.prepare_image(encode(array, fmt), f"t.{fmt.lower()}", SIZE)
    assert change in out.changes
    assert decode(out.encoded).mode == "RGB"
    assert out.image_format == fmt.lower()


def test_cmyk_jpeg_is_converted_to_rgb():
    import io

    buf = io.BytesIO()
    Image.fromarray(noise(9)).convert("CMYK").save(buf, format="JPEG")
    out = images.prepare_image(buf.getvalue(), "c.jpg", SIZE)
    assert out.changes == ("converted_cmyk",) and decode(out.encoded).mode == "RGB"


def test_palette_png_converted_with_its_colours():
    rgb = np.zeros((SIZE, SIZE, 3), np.uint8)
    rgb[:, : SIZE // 2] = (200, 10, 10)
    palette = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    import io

    buf = io.BytesIO()
    palette.save(buf, format="PNG")
    out = images.prepare_image(buf.getvalue(), "p.png", SIZE)
    assert "converted_p" in out.changes
    assert np.asarray(decode(out.encoded))[0, 0].tolist() == [200, 10, 10]  # PNG stays lossless


def test_wrong_size_rejected_or_resized():
    data = encode(noise(4, (64, 48, 3)))
    with pytest.raises(ImageRejected) as err:
        images.prepare_image(data, "t.jpg", SIZE, "reject")
    assert err.value.reason == "size_mismatch" and "48x64" in err.value.detail
    out = images.prepare_image(data, "t.jpg", SIZE, "resize")
    assert decode(out.encoded).size == (SIZE, SIZE)
    assert out.changes == ("resized_from_48x64",)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty_file"),
        (b"this is not an image, it is a text file\n", "not_an_image"),
        (encode(noise(5))[:200], "corrupt"),  # truncated JPEG
        (encode(noise(6))[:-2], "corrupt"),  # JPEG without its end marker
        (encode(noise(7), "PNG")[:150], "corrupt"),  # truncated PNG
        (encode(noise(8), "GIF"), "unsupported_format"),
        (b"\xff\xd8\xff" + b"\x00" * 100, "corrupt"),  # JPEG magic, garbage body
    ],
)
def test_bad_files_are_rejected_with_a_reason(data, reason):
    with pytest.raises(ImageRejected) as err:
        images.prepare_image(data, "bad.jpg", SIZE)
    assert err.value.reason == reason


def test_what_pillow_accepts_tensorflow_decodes():
    import tensorflow as tf

    for seed in range(5):
        out = images.prepare_image(encode(noise(seed, (SIZE, SIZE, 4)), "PNG"), "x.png", SIZE)
        assert tf.io.decode_image(out.encoded, channels=3).shape == (SIZE, SIZE, 3)


def test_scaled_validation_rejects_exactly_what_a_full_decode_rejects():
    # Kept JPEGs are validated at 1/8 scale (every block is still entropy-decoded): truncating or
    # overwriting bytes must be caught exactly when a full decode fails.
    import io
    import random

    rng = random.Random(0)
    original = encode(noise(11, (64, 64, 3)), "JPEG", quality=90)
    damaged = [original[:cut] for cut in range(300, len(original), 97)]
    for _ in range(150):
        data = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(200, len(data) - 2)] = rng.randrange(256)
        damaged.append(bytes(data))
    outcomes = []
    for data in damaged:
        try:
            Image.open(io.BytesIO(data)).load()
            full_ok = True
        except (OSError, SyntaxError, ValueError):
            full_ok = False
        try:
            images.prepare_image(data, "d.jpg", 64)
            ours_ok = True
        except ImageRejected:
            ours_ok = False
        assert ours_ok == full_ok
        if images.kept_jpeg(data, 64):  # the fast path only says yes to what decodes cleanly
            assert full_ok
        outcomes.append(full_ok)
    assert 10 < outcomes.count(False) < len(outcomes)  # both kinds of damage were exercised
    assert images.kept_jpeg(original, 64) and not images.kept_jpeg(original, 32)


def test_a_jpeg_libjpeg_warns_about_is_decided_by_pillow():
    # Bytes between the image and its end marker make libjpeg warn ("extraneous bytes"): the
    # fast path refuses to judge, and Pillow keeps the tile as before (TensorFlow decodes it).
    import tensorflow as tf

    original = encode(noise(12))
    warned = original[:-2] + b"\x00\x00\x00" + original[-2:]
    assert images.kept_jpeg(original, SIZE) and not images.kept_jpeg(warned, SIZE)
    prepared = images.prepare_image(warned, "w.jpg", SIZE)
    assert prepared.encoded == warned and prepared.changes == ()
    assert tf.io.decode_jpeg(warned).shape == (SIZE, SIZE, 3)
