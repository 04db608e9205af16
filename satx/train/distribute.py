"""Devices, distribution strategy and mixed precision for training and prediction.

`--cpu_devices=N` splits the CPU into N logical devices (must happen before TensorFlow touches a
device), so MirroredStrategy code paths run and are tested on a CPU-only machine.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import keras
import tensorflow as tf

from satx.config import PRECISIONS, STRATEGIES
from satx.errors import SatxError

log = logging.getLogger(__name__)


def split_cpu(devices: int) -> None:
    """Expose the CPU as `devices` logical devices (call before any TF op runs)."""
    if devices <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)]
        )
    except RuntimeError as err:  # devices already initialised in this process
        raise SatxError(
            f"--cpu_devices={devices} must be set before TensorFlow initialises its devices "
            f"({err}); set it at process start"
        ) from err


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The distribution strategy for `name` (see STRATEGIES); logs what it chose."""
    if name not in STRATEGIES:
        raise SatxError(f"--strategy={name}: choose one of {STRATEGIES}")
    if name == "multiworker":  # before listing devices: that initialises the context
        strategy = tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG
        _mean_scalars_across_workers()
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        devices = [d.name for d in gpus] or [d.name for d in cpus]
        strategy = tf.distribute.MirroredStrategy(devices)
    elif name == "onedevice":
        strategy = tf.distribute.OneDeviceStrategy((gpus or cpus)[0].name)
    elif name != "multiworker":
        strategy = tf.distribute.get_strategy()  # default: one device, no mirroring
    log.info(
        "strategy %s over %d replica(s) (%d GPU, %d CPU logical devices)",
        type(strategy).__name__,
        strategy.num_replicas_in_sync,
        len(gpus),
        len(cpus),
    )
    return strategy


def _mean_scalars_across_workers() -> None:
    """Keras 3.15 averages each step's logs over workers with `reduce("MEAN", v, axis=0)`.

    The logs are scalars, so that fails ("Invalid reduction dimension 0 for input with 0
    dimensions") under MultiWorkerMirroredStrategy. The mean over replicas (axis=None) is what
    it means; every other case goes to Keras' own function.
    """
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica
    if getattr(original, "satx_patched", False):
        return

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(
            strategy
        ):
            return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica.satx_patched = True  # type: ignore[attr-defined]
    tf_trainer.reduce_per_replica = reduce_per_replica


def _gpu_supports_float16() -> bool:
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability and capability >= (7, 0):
            return True
    return False


def set_precision(mode: str) -> str:
    """Set Keras' global dtype policy; returns the policy name.

    `auto` picks mixed_float16 on GPUs with compute capability >= 7.0 (tensor cores), else
    float32. The model's output layer is float32 regardless, and Keras wraps the optimizer in a
    LossScaleOptimizer under mixed_float16.
    """
    if mode not in PRECISIONS:
        raise SatxError(f"--mixed_precision={mode}: choose one of {PRECISIONS}")
    policy = {
        "float16": "mixed_float16",
        "bfloat16": "mixed_bfloat16",
        "off": "float32",
        "auto": "mixed_float16" if _gpu_supports_float16() else "float32",
    }[mode]
    keras.mixed_precision.set_global_policy(policy)
    log.info("dtype policy %s (--mixed_precision=%s)", policy, mode)
    return policy


def is_chief() -> bool:
    """Whether this process writes the run's files: no TF_CONFIG, or its chief (worker 0)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task") or {}
    kind, index = task.get("type", "chief"), int(task.get("index", 0))
    has_chief = "chief" in (config.get("cluster") or {})
    return kind == "chief" or (kind == "worker" and index == 0 and not has_chief)


def build_from_local_batch(model: keras.Model, strategy: Any, batch: Any) -> None:
    """Keras 3.15 under MultiWorkerMirroredStrategy cannot build metrics from a fit's data.

    Its `_maybe_symbolic_build` averages the first distributed batch with `strategy.reduce`,
    which fails for multi-worker PerReplica values. The model's variables already exist; the
    metrics, loss and optimizer are built symbolically from one local batch instead.
    """

    def build(iterator: Any = None, data_batch: Any = None) -> None:
        with strategy.scope():
            model._symbolic_build(data_batch=batch)

    model._maybe_symbolic_build = build
