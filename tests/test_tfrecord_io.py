"""The pure-Python TFRecord writer and Example serialiser against TensorFlow's own."""

import math
import subprocess
import sys

import pytest
import tensorflow as tf

from satx import records, tfrecord_io

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


def test_a_tile_example_parses_with_the_schema(tmp_path):
    import mercantile

    example = records.TileExample(
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
    parsed = records.parse_examples(tf.constant([records.encode_example(example)]))
    assert records.example_from_features({k: v.numpy()[0] for k, v in parsed.items()}) == example


def test_make_records_worker_modules_do_not_import_tensorflow():
    code = (
        "import sys, satx.shard_writer, satx.writer, satx.cli.make_records; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
