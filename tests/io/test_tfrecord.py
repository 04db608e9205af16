"""The pure-Python TFRecord writer, reader and Example codec against TensorFlow's own."""

import math

import numpy as np
import pytest
import tensorflow as tf

from satx.errors import RecordsError
from satx.io import tfrecord as tfrecord_io

FEATURES = {
    "image/encoded": [bytes(range(256)) * 300],  # long enough for a multi-byte length
    "b/empty": [b""],
    "c/many": [b"x", b"", b"zz"],
    "d/int": [-1],
    "e/ints": [0, 1, 127, 128, 300, 2**40, -(2**63)],
    "f/floats": [1.5, -2.25, math.nan, 3.0e-8],
    "g/nan": [math.nan],
}


def _tf_example(features):
    feature = {}
    for key, values in features.items():
        if isinstance(values[0], bytes):
            feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
        elif isinstance(values[0], float):
            feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
        else:
            feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)


def test_example_bytes_equal_tensorflows_deterministic_serialisation():
    assert tfrecord_io.example_bytes(FEATURES) == _tf_example(FEATURES)
    assert tfrecord_io.example_bytes(dict(reversed(FEATURES.items()))) == _tf_example(FEATURES)


def test_example_bytes_rejects_features_without_a_type():
    with pytest.raises(ValueError, match="at least one value"):
        tfrecord_io.example_bytes({"a": []})
    with pytest.raises(TypeError, match="bytes, float or int"):
        tfrecord_io.example_bytes({"a": ["text"]})


def test_uncompressed_file_equals_tensorflows_byte_for_byte(tmp_path):
    payloads = [tfrecord_io.example_bytes(FEATURES), b"", b"\x00" * 70_000, b"last"]
    with tf.io.TFRecordWriter(str(tmp_path / "tf.tfrecord")) as writer:
        for p in payloads:
            writer.write(p)
    with tfrecord_io.RecordFileWriter(str(tmp_path / "ours.tfrecord")) as writer:
        for p in payloads:
            writer.write(p)
    assert (tmp_path / "ours.tfrecord").read_bytes() == (tmp_path / "tf.tfrecord").read_bytes()


def test_gzip_file_reads_back_in_tensorflow(tmp_path):
    payloads = [bytes([i]) * (i * 997) for i in range(40)]
    path = str(tmp_path / "ours.tfrecord.gz")
    with tfrecord_io.RecordFileWriter(path, "gzip") as writer:
        for p in payloads:
            writer.write(p)
    back = [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]
    assert back == payloads


def _write_tf(path, payloads, compression=""):
    options = tf.io.TFRecordOptions(compression_type=compression)
    with tf.io.TFRecordWriter(str(path), options) as writer:
        for p in payloads:
            writer.write(p)


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_reader_returns_what_tensorflow_wrote(tmp_path, compression):
    payloads = [tfrecord_io.example_bytes(FEATURES), b"", b"\x07" * 70_000, b"last"]
    path = tmp_path / "tf.tfrecord"
    _write_tf(path, payloads, "GZIP" if compression == "gzip" else "")
    assert list(tfrecord_io.read_records(str(path), compression)) == payloads
    with open(path, "rb") as f:  # an open file works too (gs:// objects are streamed so)
        assert list(tfrecord_io.read_records(f, compression)) == payloads


@pytest.mark.parametrize(
    "damage, record, why",
    [
        (lambda b: b[:-7], 2, "truncated"),  # cut inside the last record
        (lambda b: b[:20] + bytes([b[20] ^ 1]) + b[21:], 0, "data checksum"),
        (lambda b: b[:9] + bytes([b[9] ^ 1]) + b[10:], 0, "length checksum"),
    ],
)
def test_reader_names_the_damaged_record(tmp_path, damage, record, why):
    path = tmp_path / "shard.tfrecord"
    _write_tf(path, [b"a" * 30, b"b" * 30, b"c" * 30])
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(RecordsError, match=f"record {record} .*{why}"):
        list(tfrecord_io.read_records(str(path)))
    # TensorFlow agrees that the file is damaged
    with pytest.raises(tf.errors.DataLossError):
        list(tf.data.TFRecordDataset(str(path)))


def test_parse_example_equals_tensorflows_parser():
    ours = tfrecord_io.parse_example(_tf_example(FEATURES))
    theirs = tf.train.Example.FromString(_tf_example(FEATURES)).features.feature
    assert set(ours) == set(FEATURES)
    for key in FEATURES:
        kind = theirs[key].WhichOneof("kind")
        expected = list(getattr(theirs[key], kind).value)
        np.testing.assert_array_equal(np.array(ours[key]), np.array(expected), err_msg=key)


def test_a_tile_example_round_trips_and_parses_with_tensorflow(tmp_path):
    import mercantile

    from satx.data.read import parse_examples
    from satx.records import schema

    example = schema.TileExample(
        b"\xff\xd8jpeg",
        "jpeg",
        256,
        256,
        1,
        "school",
        "s/1.jpg",
        "ab" * 32,
        mercantile.Tile(75000, 120000, 18),
    )
    data = schema.encode_example(example)
    assert schema.decode_example(data) == example  # pure Python both ways
    parsed = parse_examples(tf.constant([data]))  # and TensorFlow's parser agrees
    assert schema.example_from_features({k: v.numpy()[0] for k, v in parsed.items()}) == example
