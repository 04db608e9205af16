"""Score every tile of an area with a trained model: `predict(config)`.

    python -m satx.predict --model=EXPORT --input=RECORDS|TILE_FOLDER|LIST.csv --output=OUT
    python -m satx.predict --model=EXPORT --bbox=W,S,E,N --zoom=18 \
        --tiles='gs://bucket/tiles/{z}/{x}/{y}.jpg' --output=gs://bucket/predictions --min_score=0.5

The input is cut into chunks of `--chunk_size` tiles. Reading a chunk (threads; local or gs://)
overlaps with scoring the previous one; decoding runs in parallel in tf.data and the model
takes large batches (split over all devices by MirroredStrategy). Each finished chunk is written
atomically with a done marker, so a killed run continues where it stopped and every tile ends
up in the output exactly once. Tiles that are missing or do not decode go to `errors.csv` with
the reason; no tile is ever replaced by a blank one. The summary gives tiles/s and the time a
country-sized run (Colombia by default) would take at that rate. This is the local engine:
one process, a loop over `core`'s steps (`beam.py` is the other engine).
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

from satx.artifact.scorer import Scorer
from satx.config import PredictConfig
from satx.io import failpoints
from satx.io.progress import Progress, format_duration
from satx.predict.core import begin, score_chunk, setup, summarise, write_chunk
from satx.predict.inputs import TileInput
from satx.predict.outputs import locked_output
from satx.predict.result import DryRun, PredictRun


def predict(config: PredictConfig, command: str | None = None) -> PredictRun:
    """Run (or resume) a prediction; returns the run (also written to predict_run.json)."""
    with locked_output(config):
        scorer, source, class_names = setup(config)
        try:
            return _predict(config, command, scorer, source, class_names)
        finally:
            source.close()


def _predict(
    config: PredictConfig,
    command: str | None,
    scorer: Scorer,
    source: TileInput,
    class_names: list[str],
) -> PredictRun:
    run = begin(config, scorer, source, class_names)
    todo, num_classes = run.todo, len(class_names)
    progress = Progress("predict", run.remaining)
    with ThreadPoolExecutor(max_workers=1) as reader:

        def read(k: int) -> Future:
            return reader.submit(source.read, *run.span(k))

        pending = read(todo[0]) if todo else None
        for n, k in enumerate(todo):
            chunk = pending.result()
            if n + 1 < len(todo):  # read the next chunk while this one is scored
                pending = read(todo[n + 1])
            started = time.monotonic()
            probs = score_chunk(
                scorer, chunk, num_classes, config.scoring.batch_size, progress, run.labeller
            )
            write_chunk(
                k, chunk, probs, run.labeller, run.out, config.outputs, time.monotonic() - started
            )
            failpoints.hit("predict.chunk_done")
            run.out.write_progress(
                {
                    "chunks": run.chunks,
                    "chunks_done": len(run.done) + n + 1,
                    "tiles": run.total,
                    "line": progress.line(),
                }
            )
    progress.finish()
    return summarise(config, run, progress, scorer, command)


def dry_run(config: PredictConfig) -> DryRun:
    """The exact tile count, the input, and the time this machine would take; fetches nothing.

    The projection uses the model's own rate measured here on random tiles: reading and
    decoding on the same cores make a real run slower (`satx.bench predict` measures both).
    """
    scorer, source, _ = setup(config)
    source.close()
    rate = scorer.measure_rate(config.scoring.batch_size)
    seconds = len(source) / rate
    return DryRun(
        tiles=len(source),
        input=source.fingerprint(),
        model=str(scorer.path),
        runtime=scorer.runtime,
        devices=scorer.replicas,
        model_tiles_per_s=round(rate, 1),
        projected_seconds=round(seconds, 1),
        projected_human=format_duration(seconds),
    )
