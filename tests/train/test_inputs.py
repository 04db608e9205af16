"""The streams a training run feeds `model.fit` (satx.train.inputs)."""

import numpy as np


def test_each_validation_pass_is_the_whole_split_and_runs_without_autotuning(sample_records):
    import tests.support.tiny_backbone  # noqa: F401 - registers the `tiny` backbone
    from satx.records.manifest import load_records
    from satx.train.inputs import make_training_data
    from tests.support.helpers import tiny_train_config

    records = load_records(sample_records)
    config = tiny_train_config(sample_records, "unused", per_replica_batch_size=5)
    data = make_training_data(config, records, replicas=1)
    count = records.manifest.count(data.val_split)
    assert data.val_steps == -(-count // 5)

    def one_pass(iterator):
        return np.concatenate([np.asarray(next(iterator)[0]) for _ in range(data.val_steps)])

    # Keras keeps the validation iterator across epochs under tf.distribute: pass after pass
    # on one iterator is the whole split in the same order each time.
    iterator = iter(data.val)
    first, second = one_pass(iterator), one_pass(iterator)
    assert len(first) == count and np.array_equal(first, second)
    # Keras drops it at every validation on one device; dropping one with autotuning stalled
    # up to 60 s in TensorFlow (see satx.train.inputs), so the stream runs without it.
    assert data.val.options().autotune.enabled is False
    assert data.train.options().autotune.enabled is not False
