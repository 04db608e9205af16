"""`satx.predict --engine=beam`: chunks read, scored and written by Beam workers.

    driver: open the input (a listing or an area: no tile bytes), claim the output, list the
            chunks not yet done
      -> spread the chunk numbers over workers (Reshuffle)
      -> read: each worker opens the input once and reads a chunk's tiles from the source
      -> score with `SatxModelHandler`: one model per worker process, shared across bundles
         (Beam's `Shared`); a chunk's tiles are decoded and scored in batches
      -> write: the chunk's parts, then its done marker (the same files as the local engine)
    driver: merge the parts, write predict_run.json.

The handler is Beam's `ModelHandler` interface, but the pipeline calls it from its own DoFn
rather than through `RunInference`: RunInference batches with `BatchElements`, which emits a
bundle's last batch from `finish_bundle`, and Beam 2.77's Dask runner drops whatever a DoFn
emits there (with one chunk a partition, every chunk), so on Dask nothing was scored.

Read, score and write fuse into one stage, so a chunk's bytes never cross a shuffle and a chunk
is written as soon as it is scored: a run killed at any point (driver included) resumes from its
done markers, as the local engine does. Beam's stock TensorFlow handlers are not used: they
import `tensorflow_hub` (broken on TF >= 2.16, or it pulls Keras 2 and a second TensorFlow) and
cannot load a Keras 3 export. The Scorer keeps the loaded SavedModel object alive (only its
`serving_default` would free the variables).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult
from apache_beam.utils.shared import Shared

from satx.artifact.scorer import Scorer
from satx.config import PredictConfig, PredictOutputs
from satx.io import beam as beam_io
from satx.io import failpoints
from satx.io.progress import Progress
from satx.predict.core import (
    Run,
    begin,
    score_chunk,
    setup,
    summarise,
    write_chunk,
)
from satx.predict.inputs import ChunkData, TileInput, open_input
from satx.predict.localize import Localizer
from satx.predict.outputs import Labeller, PredictionOutput, locked_output
from satx.predict.result import PredictRun

log = logging.getLogger(__name__)


class SatxModelHandler(ModelHandler[tuple[int, ChunkData], PredictionResult, Scorer]):
    """Whole chunks as a Beam model handler: decode and score each chunk's tiles in batches."""

    def __init__(
        self,
        model: str,
        num_classes: int,
        batch_size: int,
        tta: str = "none",
        runtime: str = "tf",
        labeller: Labeller | None = None,
        localize: str = "none",
    ):
        super().__init__()
        self.model, self.num_classes, self.batch_size = model, num_classes, batch_size
        self.tta, self.runtime = tta, runtime
        self.labeller, self.localize = labeller, localize

    def load_model(self) -> Scorer:
        """Load the export (once per worker process: the pipeline shares it across bundles).

        The runtime is the one the driver resolved, so every worker scores the same way.
        """
        scorer = Scorer(self.model, tta=self.tta, runtime=self.runtime)
        if self.localize == "cam":
            scorer.localizer = Localizer(scorer.artifact, scorer.image_size)
        return scorer

    def run_inference(
        self,
        batch: Sequence[tuple[int, ChunkData]],
        model: Scorer,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        """Probabilities [n, K] per chunk (NaN rows, with a reason, for undecodable tiles)."""
        for k, chunk in batch:
            started = time.monotonic()
            progress = Progress(f"predict chunk {k}", len(chunk.tiles))
            probs = score_chunk(
                model, chunk, self.num_classes, self.batch_size, progress, self.labeller
            )
            yield PredictionResult((k, chunk, time.monotonic() - started), probs)

    def batch_elements_kwargs(self) -> dict[str, int]:
        """One chunk per call: a chunk is already a few thousand tiles."""
        return {"min_batch_size": 1, "max_batch_size": 1}

    def get_metrics_namespace(self) -> str:
        """Where Beam files this handler's metrics."""
        return "satx_predict"


class _ScoreChunks(beam.DoFn):
    """Each chunk through the handler, with one model per worker process (Beam's `Shared`)."""

    def __init__(self, handler: SatxModelHandler):
        self.handler = handler
        self._shared = Shared()

    def setup(self) -> None:
        """Load the model, or take the one this process already holds."""
        self.model = self._shared.acquire(self.handler.load_model, tag=self.handler.model)

    def process(self, chunk: tuple[int, ChunkData]) -> Iterable[PredictionResult]:
        """The chunk's probabilities."""
        yield from self.handler.run_inference([chunk], self.model)


def _worker_input(config: PredictConfig) -> TileInput:
    """The run's input in a worker (a mask's tiles are the driver's, kept in the output)."""
    return open_input(config.inputs, config.outputs.output)


def _read(k: int, config: PredictConfig, spans: dict[int, tuple[int, int]]) -> tuple[int, Any]:
    return k, beam_io.once_per_process(_worker_input, config).read(*spans[k])


def _write(result: PredictionResult, outputs: PredictOutputs, labeller: Labeller) -> int:
    k, chunk, seconds = result.example
    out = PredictionOutput(outputs.output, outputs.formats, labeller.class_names)
    write_chunk(k, chunk, np.asarray(result.inference), labeller, out, outputs, seconds)
    failpoints.hit("predict.chunk_done")
    return k


def predict_beam(config: PredictConfig, command: str | None = None) -> PredictRun:
    """Run (or resume) a prediction on Beam; returns the run (predict_run.json)."""
    with locked_output(config):  # the driver holds it for the pipeline
        return _predict_beam(config, command)


def _predict_beam(config: PredictConfig, command: str | None) -> PredictRun:
    scorer, source, class_names = setup(config)  # the model's path and classes; the listing
    try:
        run: Run = begin(config, scorer, source, class_names)
    finally:
        source.close()
    progress = Progress("predict", run.remaining)
    spans = {k: run.span(k) for k in run.todo}
    handler = SatxModelHandler(
        str(scorer.path),
        len(class_names),
        config.scoring.batch_size,
        config.scoring.tta,
        scorer.runtime,
        run.labeller,
        config.scoring.localize,
    )
    if run.todo:
        with beam_io.pipeline(config.beam_options) as p:
            _ = (
                p
                | "chunks" >> beam.Create(run.todo)
                | "spread" >> beam.Reshuffle()
                | "read" >> beam.Map(_read, config, spans)
                | "score" >> beam.ParDo(_ScoreChunks(handler))
                | "write" >> beam.Map(_write, config.outputs, run.labeller)
            )
    progress.update(run.remaining)
    progress.finish()
    return summarise(config, run, progress, scorer, command)
