"""The one schema: the writer, the pure-Python reader and TensorFlow's parser agree."""

import math

import mercantile
import pytest
import tensorflow as tf

from satx import geo
from satx.data.read import feature_spec, parse_examples
from satx.errors import RecordsError
from satx.records import schema as records
from tests.support.helpers import encode, noise


def _example(tile, label=1, fmt="jpeg"):
    data = encode(noise(1), "JPEG" if fmt == "jpeg" else "PNG")
    return records.TileExample(
        encoded=data,
        image_format=fmt,
        height=32,
        width=32,
        label=label,
        label_text="school",
        source_id="school/a.jpg",
        sha256="ab" * 32,
        tile=tile,
    )


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_every_field_round_trips_through_a_shard(tmp_path, compression):
    tiles = [mercantile.Tile(75000, 120000, 18), None, mercantile.Tile(0, 0, 0)]
    originals = [
        _example(t, label=i, fmt=("png" if i == 1 else "jpeg")) for i, t in enumerate(tiles)
    ]
    path = str(tmp_path / records.shard_name("train", 0, 1, compression))
    options = tf.io.TFRecordOptions(compression_type=records.COMPRESSION_TYPES[compression])
    with tf.io.TFRecordWriter(path, options) as writer:
        for ex in originals:
            writer.write(records.encode_example(ex))
    back = list(records.iter_shard(path, compression))
    assert back == originals
    assert records.count_records(path, compression) == 3


def test_geolocation_fields_in_the_raw_features():
    tile = mercantile.Tile(75000, 120000, 18)
    parsed = parse_examples(tf.constant([records.encode_example(_example(tile))]))
    b = mercantile.bounds(tile)
    assert parsed[records.TILE_Z].numpy()[0] == 18
    assert parsed[records.QUADKEY].numpy()[0].decode() == mercantile.quadkey(tile)
    assert parsed[records.BBOX].numpy()[0] == pytest.approx(
        [b.west, b.south, b.east, b.north], abs=1e-5
    )
    assert parsed[records.LON].numpy()[0] == pytest.approx(geo.geolocate(tile).lon, abs=1e-5)


def test_unknown_tile_is_minus_one_and_nan():
    parsed = parse_examples(tf.constant([records.encode_example(_example(None))]))
    assert [parsed[k].numpy()[0] for k in (records.TILE_Z, records.TILE_X, records.TILE_Y)] == [
        -1
    ] * 3
    assert math.isnan(parsed[records.LAT].numpy()[0])
    assert parsed[records.QUADKEY].numpy()[0] == b""


def test_parse_works_inside_tf_data_and_eagerly_alike():
    import numpy as np

    serialized = [
        records.encode_example(_example(None if k == 0 else mercantile.Tile(5, 6, 4), label=k))
        for k in range(4)
    ]
    eager = parse_examples(tf.constant(serialized))
    ds = tf.data.Dataset.from_tensor_slices(serialized).batch(4).map(parse_examples)
    graph = next(iter(ds))
    for key in feature_spec():
        a, b = eager[key].numpy(), graph[key].numpy()
        if a.dtype == np.float32:
            np.testing.assert_array_equal(a, b)  # NaN == NaN here, for tiles without geolocation
        else:
            assert (a == b).all(), key


def test_encoding_is_deterministic():
    ex = _example(mercantile.Tile(75000, 120000, 18))
    assert records.encode_example(ex) == records.encode_example(ex)


def test_uses_the_tensorflow_image_record_keys():
    spec = feature_spec()
    for key in [
        "image/encoded",
        "image/format",
        "image/height",
        "image/width",
        "image/class/label",
        "image/class/text",
        "image/source_id",
        "image/key/sha256",
        "tile/z",
        "tile/x",
        "tile/y",
        "tile/quadkey",
        "geo/lon",
        "geo/lat",
        "geo/bbox",
    ]:
        assert key in spec
    assert list(spec) == list(records.FEATURES)  # the parser is built from the one table


def test_shard_names():
    assert records.shard_name("train", 3, 12) == "train-00003-of-00012.tfrecord"
    assert records.shard_name("val", 0, 1, "gzip") == "val-00000-of-00001.tfrecord.gz"
    assert records.is_shard_name("test-00001-of-00008.tfrecord")
    assert not records.is_shard_name("notes.txt")


def test_damaged_shard_is_reported(tmp_path):
    path = tmp_path / "train-00000-of-00001.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(records.encode_example(_example(None)))
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(RecordsError, match="damaged"):
        records.count_records(str(path))


def test_records_from_other_tools_without_optional_features_read_as_unknown():
    from satx.io.tfrecord import example_bytes

    minimal = example_bytes(
        {
            "image/encoded": [b"x"],
            "image/height": [32],
            "image/width": [32],
            "image/class/label": [1],
        }
    )
    ex = records.decode_example(minimal)
    assert ex.tile is None and ex.image_format == "jpeg" and ex.label == 1
    parsed = parse_examples(tf.constant([minimal]))
    assert parsed[records.TILE_Z].numpy()[0] == -1 and math.isnan(parsed[records.LON].numpy()[0])
    with pytest.raises(ValueError, match="required feature .image/height."):
        records.decode_example(example_bytes({"image/encoded": [b"x"]}))
