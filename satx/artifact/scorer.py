"""A trained classifier as a function of uint8 tile batches -> class probabilities.

Loads an artifact (`satx.artifact.artifact`: an export's newest SavedModel version or a `.keras`
file), optionally under a distribution strategy (MirroredStrategy splits every batch over the
devices) and, for `.keras` models, with a mixed-precision policy; or the same export converted
for another inference runtime (`satx.artifact.runtimes`: ONNX Runtime, OpenVINO, LiteRT, which
use the CPU cores their own way). Used by evaluate, predict, export and bench.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from satx.artifact import runtimes
from satx.artifact.artifact import CLASS_NAMES_FILE, EXPECTED_MODEL, Artifact, open_artifact
from satx.data.decode import dihedral_mean
from satx.errors import InputError

log = logging.getLogger(__name__)

# Layers satx keeps in float32 under mixed precision (input cast and softmax): classifier.py.
FLOAT32_LAYERS = ("to_float", "probabilities")


def _with_dtype_policy(model: Any, policy: str) -> Any:
    """A copy of a Keras model whose layers compute under `policy` (float32 layers kept).

    A `.keras` file stores every layer's dtype policy, so setting the global policy before
    loading changes nothing; the config is rewritten instead and the weights copied over.
    """
    import keras

    # Importing these registers satx's serialisable layers (augmentation, Preprocess).
    import satx.models.augment
    import satx.models.backbones  # noqa: F401

    config = keras.saving.serialize_keras_object(model)

    def rewrite(node: Any) -> None:
        if isinstance(node, dict):
            inner = node.get("config")
            dtype = inner.get("dtype") if isinstance(inner, dict) else None
            if (
                isinstance(dtype, dict)
                and dtype.get("class_name") == "DTypePolicy"
                and inner.get("name") not in FLOAT32_LAYERS
            ):
                dtype["config"]["name"] = policy
            for value in node.values():
                rewrite(value)
        elif isinstance(node, list):
            for value in node:
                rewrite(value)

    rewrite(config)
    copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy


class Scorer:
    """Load a model once; score uint8 batches or a whole `(index, image)` dataset.

    `tta="dihedral"` averages the probabilities over the tile's 8 symmetries (test-time
    augmentation: 8x the model's work). `runtime` is `tf`, `auto` or a name from
    `runtimes.RUNTIMES`; `self.runtime` says which one runs. `model` is a path or an opened
    `Artifact` (opened once: a run that resolved its runtime early does not repeat it).
    """

    def __init__(
        self,
        model: str | Path | Artifact,
        strategy: tf.distribute.Strategy | None = None,
        policy: str = "float32",
        tta: str = "none",
        runtime: str = "tf",
    ):
        artifact = open_artifact(model)
        path = artifact.path
        self.artifact = artifact
        self.strategy = strategy or tf.distribute.get_strategy()
        self.policy = "float32"
        self.calibration = artifact.calibration  # what the probabilities are calibrated by
        self.class_names = artifact.class_names
        self.runtime = artifact.resolve_runtime(runtime)
        if self.runtime != "tf" and self.strategy.num_replicas_in_sync > 1:
            log.info(
                "runtime %s uses every core itself: one device, not %d",
                self.runtime,
                self.strategy.num_replicas_in_sync,
            )
            self.strategy = tf.distribute.get_strategy()
        with self.strategy.scope():
            if self.runtime != "tf":
                self._load_runtime(path)
            elif artifact.is_keras:
                self._load_keras(path, policy)
            else:
                self._load_saved_model(path, policy)
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise InputError(
                f"--model={path}: {CLASS_NAMES_FILE} lists {len(self.class_names)} classes but "
                f"the model has {self.num_classes} outputs"
            )
        self.path = path
        self._step = None
        self.localizer: Any = None  # predict --localize: a predict.localize.Localizer
        self.tta = tta
        if tta == "dihedral":
            single = self._fn
            self._fn = lambda images: dihedral_mean(single, images)
        elif tta != "none":
            raise InputError(f"--tta={tta}: choose none or dihedral")

    def _load_keras(self, path: Path, policy: str) -> None:
        import keras

        # Importing these registers satx's serialisable layers (augmentation, Preprocess).
        import satx.models.augment
        import satx.models.backbones  # noqa: F401

        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as err:  # Keras raises ValueError, KeyError, OSError, TypeError...
            raise InputError(
                f"--model={path}: Keras cannot load it ({type(err).__name__}: {err}); "
                f"{EXPECTED_MODEL}"
            ) from err
        if len(model.inputs) != 1 or len(model.input.shape) != 4 or len(model.output.shape) != 2:
            shapes = [tuple(i.shape) for i in model.inputs]
            raise InputError(
                f"--model={path}: not an image classifier (inputs {shapes}, output "
                f"{tuple(model.output.shape)}); expected images [N, S, S, 3] -> [N, classes]"
            )
        self.num_classes = int(model.output.shape[-1])
        if policy != "float32":
            model = _with_dtype_policy(model, policy)
            self.policy = policy
        self.image_size = int(model.input.shape[1])
        self._fn = tf.function(
            lambda images: model(images, training=False),
            input_signature=[tf.TensorSpec([None, self.image_size, self.image_size, 3], tf.uint8)],
        )

    def _load_saved_model(self, path: Path, policy: str) -> None:
        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as err:  # a damaged saved_model.pb or variables/ folder
            raise InputError(
                f"--model={path}: TensorFlow cannot load this SavedModel ({type(err).__name__}); "
                f"{EXPECTED_MODEL}"
            ) from err
        serve = loaded.signatures.get("serving_default")
        inputs = serve.structured_input_signature[1] if serve is not None else {}
        outputs = serve.structured_outputs if serve is not None else {}
        if "images" not in inputs or "probabilities" not in outputs:
            raise InputError(
                f"--model={path}: a SavedModel without satx's signatures (it has "
                f"{sorted(loaded.signatures.keys())}); expected serving_default(images uint8 "
                "[N, S, S, 3]) -> probabilities, as satx.train exports"
            )
        self.image_size = int(inputs["images"].shape[1])
        self.num_classes = int(outputs["probabilities"].shape[-1])
        self._loaded = loaded  # keeps the variables alive
        self._fn = lambda images: loaded.serving_default(images)["probabilities"]
        if policy != "float32":
            log.warning(
                "%s: a SavedModel computes in the precision it was exported with; "
                "the %s policy applies to .keras models only",
                path,
                policy,
            )

    def _load_runtime(self, path: Path) -> None:
        record = self.artifact.runtimes
        self.image_size, self.num_classes = record.image_size, record.num_classes
        try:
            predict = runtimes.load(path, self.runtime)
        except Exception as err:  # each runtime raises its own types for a damaged file
            file = runtimes.model_file(path, self.runtime)
            raise InputError(
                f"--runtime={self.runtime}: cannot load {file} ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''}); re-run satx.export"
            ) from err
        self._fn = lambda images: predict(np.asarray(images, dtype=np.uint8))

    def __call__(self, images: tf.Tensor) -> np.ndarray:
        """Probabilities [B, K] for uint8 images [B, S, S, 3] (on the default device)."""
        return np.asarray(self._fn(images), dtype=np.float64)

    def measure_rate(self, batch_size: int, batches: int = 3, min_seconds: float = 0.0) -> float:
        """Tiles/s of the model alone on random uint8 batches (after two warm-up batches).

        Times at least `batches` batches and at least `min_seconds`.
        """
        images = np.random.default_rng(0).integers(
            0, 256, (batch_size, self.image_size, self.image_size, 3), dtype=np.uint8
        )
        self(images)  # trace and warm up (some runtimes settle on their second call)
        self(images)
        done, start = 0, time.perf_counter()
        while done < batches or time.perf_counter() - start < min_seconds:
            self(images)
            done += 1
        return done * batch_size / (time.perf_counter() - start)

    @property
    def on_cpu(self) -> bool:
        """Whether the model computes on the CPU cores (another runtime, or TF without a GPU)."""
        return self.runtime != "tf" or not tf.config.list_physical_devices("GPU")

    @property
    def replicas(self) -> int:
        """Devices each batch is split over."""
        return self.strategy.num_replicas_in_sync

    def score_arrays(
        self, batches: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """`score_dataset` for `(indices, uint8 images)` batches made in numpy (windows).

        On one device each batch goes straight to the model: a `from_generator` dataset in
        between cost 1-3 s a chunk here, varying run to run. Over several devices it is the
        dataset, split over the replicas.
        """
        if self.replicas == 1:
            for index, images in batches():
                yield index, self(images)
            return
        size = self.image_size
        ds = tf.data.Dataset.from_generator(
            batches,
            output_signature=(
                tf.TensorSpec([None], tf.int64),
                tf.TensorSpec([None, size, size, 3], tf.uint8),
            ),
        )
        yield from self.score_dataset(ds)

    def score_dataset(self, ds: tf.data.Dataset) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield `(indices [b], probabilities [b, K])` for a dataset of `(index, image)` batches.

        Under a multi-device strategy each batch is split over the replicas and gathered back;
        indices travel with their images, so the result never depends on device order.
        """
        if self.replicas == 1:
            for index, images in ds:
                yield index.numpy(), self(images)
            return
        if self._step is None:
            strategy, fn = self.strategy, self._fn

            @tf.function
            def step(index: tf.Tensor, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
                out = strategy.run(lambda i, x: (i, fn(x)), args=(index, images))
                return strategy.gather(out[0], axis=0), strategy.gather(out[1], axis=0)

            self._step = step
        for index, images in self.strategy.experimental_distribute_dataset(ds):
            idx, probs = self._step(index, images)
            yield idx.numpy(), np.asarray(probs, dtype=np.float64)
