"""Training-side benchmarks: images/s from records vs synthetic batches; memory across trials.

`bench_train`: images/s of one training configuration fed (a) from records through the real
input pipeline and (b) from one synthetic batch held in memory, measured in the same process.
The ratio says whether training is input-bound. Also measured without augmentation, to show
what the device-side augmentation costs.
`bench_tune_memory`: resident memory after each trial of an N-trial search in one process.
"""

from __future__ import annotations

import logging
import math
import statistics
import time

import keras
import tensorflow as tf

from satx.bench.table import Column, table
from satx.config import NO_AUGMENT, AugmentConfig, DataConfig, TrainConfig
from satx.data.pipeline import make_train_dataset
from satx.records.manifest import load_records
from satx.train.phases import build_model, compile_phase

log = logging.getLogger(__name__)


class _EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds = time.perf_counter() - self.start


def _images_per_second(
    model: keras.Model, dataset: tf.data.Dataset, steps: int, batch: int
) -> float:
    # One fit, two epochs: the first traces, warms up and fills the shuffle buffer; the second
    # is timed. The iterator lives across epochs of one fit, so its start-up (opening shards,
    # filling a 2,048-tile buffer) is not charged to a few timed steps.
    timer = _EpochTimer()
    model.fit(dataset, steps_per_epoch=steps, epochs=2, verbose=0, callbacks=[timer], shuffle=False)
    return steps * batch / timer.seconds


def timed_steps(rate: float, steps: int, batch: int, min_seconds: float) -> int:
    """At least `steps`, and enough for `min_seconds` at `rate` images/s."""
    return max(steps, math.ceil(min_seconds * rate / batch))


def _interleaved(
    model: keras.Model, sources: dict[str, tf.data.Dataset], steps: int, batch: int, repeats: int
) -> dict[str, list[float]]:
    """Rates of each source measured `repeats` times, alternating, so drift hits all alike."""
    rates: dict[str, list[float]] = {name: [] for name in sources}
    for _ in range(repeats):
        for name, ds in sources.items():
            rates[name].append(_images_per_second(model, ds, steps, batch))
    return rates


def _verdict(result: dict) -> str:
    """`input-bound` only when records are slower by 3 %+ and their ranges do not overlap."""
    if result["augmented_records_over_synthetic"] >= 0.97:
        return "not input-bound"
    if result["augmented_records_spread"][1] >= result["augmented_synthetic_spread"][0]:
        return "not input-bound (within noise)"
    return "input-bound"


def bench_train(
    records: str,
    backbone: str,
    image_size: int,
    batch_size: int,
    steps: int,
    phase: int = 2,
    repeats: int = 3,
    min_seconds: float = 2.0,
) -> dict:
    """Images/s from records vs synthetic batches, with and without augmentation.

    The augmented pair (which gives the verdict) is measured `repeats` times, alternating
    records and synthetic; rates are medians, with the spread (min, max) beside them. This
    machine's speed drifts by tens of percent between measurements a few seconds long. Each
    timed epoch runs at least `steps` steps and at least `min_seconds` (calibrated on
    synthetic batches first): 5 steps of a 64 px MobileNetV2 last 0.2 s, too short to time.
    """
    folder = load_records(records)
    num_classes = folder.manifest.num_classes
    from_records = make_train_dataset(
        folder,
        "train",
        DataConfig(records=records),
        image_size=image_size,
        batch_size=batch_size,
        seed=1,
    )
    images, labels = next(iter(from_records))
    synthetic = tf.data.Dataset.from_tensors((images, labels)).repeat()
    result = {
        "backbone": backbone,
        "image_size": image_size,
        "batch_size": batch_size,
        "steps": steps,
        "phase": phase,
        "repeats": repeats,
        "records": records,
    }
    for name, augment in (("augmented", AugmentConfig()), ("no_augment", NO_AUGMENT)):
        config = TrainConfig().with_overrides(
            {
                "records": records,
                "backbone": backbone,
                "image_size": image_size,
                "weights": "none",
                "freeze_cutoff": "0" if phase == 2 else "",
            }
        )
        config = config.with_overrides(augment.to_dict())
        model = build_model(config, num_classes)
        compile_phase(model, config, phase, num_classes)
        sources = {"records": from_records, "synthetic": synthetic}
        calibration = _images_per_second(model, synthetic, steps, batch_size)
        timed = timed_steps(calibration, steps, batch_size, min_seconds)
        result[f"{name}_timed_steps"] = timed
        rates = _interleaved(
            model, sources, timed, batch_size, repeats if name == "augmented" else 1
        )
        for source, measured in rates.items():
            result[f"{name}_{source}_img_per_s"] = round(statistics.median(measured), 2)
            result[f"{name}_{source}_spread"] = [round(min(measured), 2), round(max(measured), 2)]
            log.info("%s %s %s: images/s %s", backbone, name, source, measured)
        result[f"{name}_records_over_synthetic"] = round(
            result[f"{name}_records_img_per_s"] / result[f"{name}_synthetic_img_per_s"], 3
        )
    result["verdict"] = _verdict(result)
    return result


def bench_tune_memory(
    records: str, backbone: str, image_size: int, batch_size: int, steps: int, trials: int
) -> dict:
    """Resident memory after each trial of a `trials`-trial Hyperband search in this process.

    Keras Tuner clears the Keras session before each build; this checks that memory levels off
    instead of growing with every trial (the first trials trace and cache once).
    """
    import tempfile

    from satx.config import SearchSpace
    from satx.tune.hypermodel import SatxHyperModel
    from satx.tune.search import make_tuner

    base = TrainConfig().with_overrides(
        {
            "records": records,
            "per_replica_batch_size": batch_size,
            "steps_per_epoch": steps,
            "mixed_precision": "off",
            "backbone": backbone,
            "image_size": image_size,
            "weights": "none",
        }
    )
    hypermodel = SatxHyperModel(base, SearchSpace(), [backbone])
    with tempfile.TemporaryDirectory() as tmp:
        tuner = make_tuner(
            hypermodel,
            tmp,
            "memory",
            max_epochs=2,
            factor=2,
            hyperband_iterations=1000,
            max_trials=trials,
        )
        start = time.perf_counter()
        tuner.search(verbose=0)
        seconds = time.perf_counter() - start
    rss = [round(v, 1) for v in tuner.memory_mb]
    settle = min(5, len(rss) - 1)
    tail = rss[settle:]
    slope = (tail[-1] - tail[0]) / max(1, len(tail) - 1)
    return {
        "backbone": backbone,
        "image_size": image_size,
        "trials": len(rss),
        "seconds": round(seconds, 1),
        "rss_mb_per_trial": rss,
        "rss_mb_first": rss[0],
        "rss_mb_last": rss[-1],
        f"growth_mb_after_trial_{settle + 1}": round(rss[-1] - rss[settle], 1),
        "growth_mb_per_trial_after_settling": round(slope, 2),
    }


TRAIN_COLUMNS = (
    Column("backbone", "backbone", 12, left=True),
    Column("px", "image_size", 4),
    Column("batch", "batch_size", 5),
    Column("aug rec/s", "augmented_records_img_per_s", 10, ".1f"),
    Column("aug syn/s", "augmented_synthetic_img_per_s", 10, ".1f"),
    Column("ratio", "augmented_records_over_synthetic", 6, ".3f"),
    Column("noaug rec/s", "no_augment_records_img_per_s", 11, ".1f"),
    Column("noaug syn/s", "no_augment_synthetic_img_per_s", 11, ".1f"),
    Column("verdict", "verdict", left=True),
)


def format_table(rows: list[dict]) -> str:
    """Plain text table of bench_train results."""
    spread = "; ".join(
        f"{r['backbone']} {r['augmented_records_spread']} vs {r['augmented_synthetic_spread']}"
        for r in rows
    )
    return (
        table(rows, TRAIN_COLUMNS)
        + f"\naug rec/s and aug syn/s are medians of alternating runs; [min, max]: {spread}"
    )
