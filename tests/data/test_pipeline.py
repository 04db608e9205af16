"""The tf.data pipelines against records written by make_records from generated fixtures."""

import dataclasses
import hashlib
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from satx.config import DataConfig
from satx.data import pipeline as data
from satx.data.read import CorruptionCounter
from satx.errors import RecordsError
from satx.records import schema as records
from satx.records.make import make_records
from satx.records.manifest import Records, ShardEntry, load_records


@pytest.fixture
def built(sample_tiles, records_config, tmp_path):
    make_records(records_config(sample_tiles, min_shards=3, split="train:0.6,val:0.4"))
    return load_records(str(tmp_path / "records"))


def _records_in_order(folder, split):
    out = []
    for path in folder.shard_paths(split):
        out += list(records.iter_shard(path, folder.manifest.compression))
    return out


def _train(folder, config=None, *, size=0, batch=4, seed=42, **kwargs):
    config = config or DataConfig(records=folder.root)
    return data.make_train_dataset(
        folder,
        "train" if "split" not in kwargs else kwargs.pop("split"),
        config,
        image_size=size,
        batch_size=batch,
        seed=seed,
        **kwargs,
    )


def _pixels(encoded):
    return np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"))


def test_eval_stream_is_ordered_decoded_and_carries_geolocation(built):
    expected = _records_in_order(built, "val")
    batches = list(data.make_eval_dataset(built, "val", batch_size=5).as_numpy_iterator())
    got_ids = [s.decode() for b in batches for s in b["source_id"]]
    assert got_ids == [e.source_id for e in expected]
    images = np.concatenate([b["image"] for b in batches])
    assert images.dtype == np.uint8 and images.shape == (len(expected), 32, 32, 3)
    for image, ex in zip(images, expected, strict=True):
        np.testing.assert_array_equal(image, _pixels(ex.encoded))
    labels = np.concatenate([b["label"] for b in batches])
    assert labels.tolist() == [e.label for e in expected]
    first = batches[0]
    loc = expected[0].geolocation
    assert (first["tile_z"][0], first["tile_x"][0], first["tile_y"][0]) == tuple(
        expected[0].tile[i] for i in (2, 0, 1)
    )
    assert first["quadkey"][0].decode() == loc.quadkey
    np.testing.assert_allclose(first["bbox"][0], loc.bbox, atol=1e-5)
    again = [
        b["source_id"].tolist()
        for b in data.make_eval_dataset(built, "val", batch_size=5).as_numpy_iterator()
    ]
    assert [s for b in again for s in b] == [s.encode() for s in got_ids]


def test_train_stream_batches_match_the_records(built):
    config = DataConfig(records=built.root, shuffle_buffer=64)
    label_of = {
        hashlib.sha256(_pixels(e.encoded).tobytes()).hexdigest(): e.label
        for e in _records_in_order(built, "train")
    }
    n = built.manifest.count("train")
    ds = _train(built, config, cache=False)
    seen = []
    for images, onehot in ds.take(n // 4).as_numpy_iterator():
        assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8
        assert onehot.shape == (4, 2) and onehot.dtype == np.float32
        for image, y in zip(images, onehot, strict=True):
            key = hashlib.sha256(image.tobytes()).hexdigest()
            assert label_of[key] == int(np.argmax(y))
            seen.append(key)
    assert len(set(seen)) == len(seen) == (n // 4) * 4  # one pass: no record twice


@pytest.mark.parametrize("resample_to", [(), (0.5, 0.5)])
def test_cache_and_stream_give_identical_batches(built, resample_to):
    # The stream shuffles (and resamples) encoded tiles and decodes after; the cache decodes
    # first. Same seed, same batches.
    config = DataConfig(
        records=built.root, shuffle_buffer=16, deterministic=True, resample_to=resample_to
    )
    steps = 3 * (built.manifest.count("train") // 4)  # three passes: the cache fills, replays
    cached = list(_train(built, config, cache=True).take(steps))
    streamed = list(_train(built, config, cache=False).take(steps))
    for (a, ya), (b, yb) in zip(cached, streamed, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ya, yb)
    first, second = cached[: steps // 3], cached[steps // 3 : 2 * steps // 3]
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(first, second, strict=True))


def test_resize_only_when_sizes_differ(built):
    images, _ = next(iter(_train(built, size=16, batch=2, cache=False)))
    assert images.shape == (2, 16, 16, 3) and images.dtype == tf.uint8
    batch = next(iter(data.make_eval_dataset(built, "val", image_size=16, batch_size=2)))
    assert batch["image"].shape[1:] == (16, 16, 3)


def test_class_weights_from_counts_and_override(built):
    assert data.class_weights([30, 10]) == {0: 40 / 60, 1: 2.0}
    assert data.class_weights([5, 0]) == {0: 0.5, 1: 0.0}
    counts = built.manifest.class_counts("train")
    derived = data.resolve_class_weights(built, "train", DataConfig(records=built.root))
    assert derived == data.class_weights(counts)
    config = DataConfig(records=built.root, class_weight=(2.0, 1.0))  # the predecessor's
    assert data.resolve_class_weights(built, "train", config) == {0: 2.0, 1: 1.0}


def test_resampling_moves_the_class_mix(built):
    counts = built.manifest.class_counts("train")
    config = DataConfig(records=built.root, resample_to=(0.5, 0.5))
    ds = _train(built, config, batch=8, cache=True)
    labels = np.concatenate([np.argmax(y, -1) for _, y in ds.take(60).as_numpy_iterator()])
    assert counts[1] / sum(counts) < 0.4
    assert 0.4 < labels.mean() < 0.6


def test_acceptance_probabilities_reach_the_target_mix():
    keep = data.acceptance((0.5, 0.5), (30, 10))  # 75 % / 25 % -> 50 / 50
    np.testing.assert_allclose(keep, [1 / 3, 1.0])
    kept = np.array([30, 10]) * keep
    np.testing.assert_allclose(kept / kept.sum(), [0.5, 0.5])
    np.testing.assert_allclose(data.acceptance((0.2, 0.3, 0.5), (10, 0, 10)), [0.4, 0.0, 1.0])
    with pytest.raises(RecordsError, match="none of its classes has records"):
        data.acceptance((0.0, 1.0), (10, 0))


def test_cache_choice_follows_the_budget(built, caplog):
    caplog.set_level("INFO", logger="satx.data")
    size = built.manifest.image_size
    assert data.choose_cache(built, "train", size, DataConfig(records=built.root))
    assert not data.choose_cache(built, "train", size, DataConfig(records=built.root, cache="none"))
    assert data.choose_cache(built, "train", 4096 * 16, DataConfig(records=built.root)) is False
    assert "off (streaming)" in caplog.text


def test_manifest_and_shards_must_agree(built, tmp_path):
    shard = tmp_path / "records" / built.manifest.shards[0].name
    shard.write_bytes(shard.read_bytes() + b"x")
    with pytest.raises(RecordsError, match="manifest lists"):
        load_records(built.root)
    shard.unlink()
    with pytest.raises(RecordsError, match="found missing"):
        load_records(built.root)
    with pytest.raises(RecordsError, match="no split 'test'"):
        built.shard_paths("test")


def _single_shard_info(built, path, records_listed):
    shard = ShardEntry(path.name, "val", records_listed, 0, "")
    manifest = dataclasses.replace(built.manifest, shards=(shard,))
    return Records(str(path.parent), manifest, "")


def test_damaged_shards_are_counted_not_fatal(built, tmp_path):
    path = tmp_path / "val-00000-of-00001.tfrecord"
    good = _records_in_order(built, "val")
    with tf.io.TFRecordWriter(str(path)) as writer:
        for ex in good:
            writer.write(records.encode_example(ex))
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # flip a bit mid-shard: the CRC catches it
    path.write_bytes(bytes(raw))
    info = _single_shard_info(built, path, len(good))
    counter = CorruptionCounter()
    batches = data.make_eval_dataset(info, "val", batch_size=4, counter=counter)
    got = sum(len(b["label"]) for b in batches)
    assert 0 < got < len(good)  # the records before the damage still arrive
    assert counter.expected == len(good) and counter.lost == len(good) - got
    assert counter.short_shards == {str(path): len(good) - got}
    counter.check(max_fraction=0.9)
    with pytest.raises(RecordsError, match=f"{len(good) - got} of {len(good)} records"):
        counter.check(max_fraction=0.01)
    train_counter = CorruptionCounter()  # the training stream survives it too
    stream = _train(info, split="val", counter=train_counter, cache=False)
    assert len(list(stream.take(3 * len(good) // 4))) == 3 * len(good) // 4
    assert train_counter.lost >= len(good) - got


def test_undecodable_image_fails_loudly(built, tmp_path):
    """make_records decoded every image: a bad one behind a valid CRC is a bug, not noise."""
    path = tmp_path / "val-00000-of-00001.tfrecord"
    good = _records_in_order(built, "val")
    with tf.io.TFRecordWriter(str(path)) as writer:
        for k, ex in enumerate(good):
            if k == 2:
                ex = records.TileExample(**{**ex.__dict__, "encoded": b"\xff\xd8\xffbroken"})
            writer.write(records.encode_example(ex))
    info = _single_shard_info(built, path, len(good))
    with pytest.raises(tf.errors.InvalidArgumentError):
        list(data.make_eval_dataset(info, "val", batch_size=32))
