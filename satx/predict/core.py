"""Predict's engine-free core: what every engine does with a chunk, and the run around it.

    setup (devices, model, input, classes) -> begin (claim or resume the output, the chunks
    still to do) -> per chunk: score_chunk (decode, score; undecodable tiles found one by one)
    -> write_chunk (parts + done marker) -> summarise (merge, predict_run.json)

The local engine (`run.py`) and the Beam engine (`beam.py`) are loops over these; a third
engine is another loop. Tiles that are missing or do not decode go to `errors.csv` with the
reason; no tile is ever replaced by a blank one.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from satx import geo
from satx.artifact.artifact import open_artifact, report_threshold
from satx.artifact.scorer import Scorer
from satx.config import PredictConfig, PredictOutputs, PredictScoring
from satx.errors import InputError
from satx.io.progress import Progress, format_duration
from satx.io.run_record import json_bytes, run_record
from satx.predict import windows
from satx.predict.decode import decode_all, decoded_batches, failure_reason
from satx.predict.formats import FORMATS, LARGE_ROWS, ChunkRows, chunk_parts
from satx.predict.inputs import ChunkData, TileInput, open_input, readable
from satx.predict.localize import COLUMNS as LOCALIZE_COLUMNS
from satx.predict.localize import Localizer, localize_chunk
from satx.predict.outputs import Labeller, PredictionOutput, format_errors
from satx.predict.result import (
    RUN_NAME,
    PredictRun,
    Projection,
    ThisRun,
)
from satx.tiles.refs import TileRef
from satx.train.distribute import make_strategy, set_precision, split_cpu

log = logging.getLogger(__name__)


def score_chunk(
    scorer: Scorer,
    chunk: ChunkData,
    num_classes: int,
    batch_size: int,
    progress: Progress,
    labeller: Labeller | None = None,
) -> np.ndarray:
    """Probabilities [n, K] for a chunk (NaN rows for tiles that failed; errors added to chunk).

    Tiles that fail to decode are dropped by tf.data and found again by index, so one bad tile
    never stops a batch and never becomes a zero-filled image. A chunk with windows
    (`--context`) scores them, and each tile gets the max of its windows' probabilities.
    With the scorer's `localizer` (`--localize`), the `labeller`'s hits then get their points.
    """
    if chunk.windows is not None:
        probs = _score_windows(scorer, chunk, num_classes, batch_size, progress)
    else:
        probs = _score_tiles(scorer, chunk, num_classes, batch_size, progress)
    if scorer.localizer is not None and labeller is not None:
        localize_chunk(scorer.localizer, chunk, probs, labeller, batch_size)
    if chunk.windows is not None:
        chunk.windows.pixels = None  # the decoded cells are done with
    return probs


def _score_tiles(
    scorer: Scorer, chunk: ChunkData, num_classes: int, batch_size: int, progress: Progress
) -> np.ndarray:
    probs = np.full((len(chunk.tiles), num_classes), np.nan)
    base = progress.done
    ok = readable(chunk)
    if ok:
        ds = decoded_batches(chunk, ok, scorer.image_size, batch_size, serial=scorer.on_cpu)
        for index, p in scorer.score_dataset(ds):
            probs[index] = p
            progress.update(progress.done + len(index))
    lost = [i for i in ok if np.isnan(probs[i, 0])]  # batches that held a bad tile
    if lost:
        ds = decoded_batches(chunk, lost, scorer.image_size, batch_size, per_tile=True)
        for index, p in scorer.score_dataset(ds):
            probs[index] = p
    for i in ok:
        if np.isnan(probs[i, 0]):
            chunk.errors[i] = failure_reason(chunk.encoded[i])
    progress.update(base + len(chunk.tiles))
    return probs


def _score_windows(
    scorer: Scorer, chunk: ChunkData, num_classes: int, batch_size: int, progress: Progress
) -> np.ndarray:
    """Score a chunk's windows (each tile decoded once); per tile, the max over its windows."""
    ws, size = chunk.windows, scorer.image_size
    assert ws is not None
    side = -(-size // ws.size)  # each tile's side in a window; the mosaic is resized if over
    cells = ChunkData([TileRef(geo.tile_key(c), c) for c in ws.cells], ws.encoded, ws.errors)
    ws.pixels = decode_all(cells, side, batch_size, scorer.on_cpu)
    whole = ~np.isin(ws.members, np.fromiter(ws.errors, np.int64)).any(axis=1)
    ws.probs = np.full((len(ws.windows), num_classes), np.nan)
    base, scored = progress.done, 0
    for index, p in scorer.score_arrays(lambda: ws.batches(whole, batch_size, size)):
        ws.probs[index] = p
        scored += len(index)
        progress.update(base + len(chunk.tiles) * scored // max(1, int(whole.sum())))
    for j, c in enumerate(ws.at.tolist()):  # a chunk tile that did not decode
        if c in ws.errors and j not in chunk.errors:
            chunk.errors[j] = ws.errors[c]
    best, count, _ = windows.tile_scores(ws, ws.probs, ws.probs[:, 0])
    for j in np.flatnonzero(count == 0).tolist():
        if j not in chunk.errors:
            chunk.errors[j] = ("no_window", windows.gap_of(ws, j))
    progress.update(base + len(chunk.tiles))
    return best


def _chunk_texts(
    chunk: ChunkData, probs: np.ndarray, labeller: Labeller, outputs: PredictOutputs
) -> tuple[dict[str, str | bytes], int]:
    good = np.array([i not in chunk.errors for i in range(len(chunk.tiles))], dtype=bool)
    labels, scores = labeller.label_score(np.nan_to_num(probs))
    keep = [i for i in np.flatnonzero(good) if scores[i] >= outputs.min_score]
    extra = {} if chunk.coverage is None else {"coverage": np.asarray(chunk.coverage)}
    texts: dict[str, str | bytes] = {}
    if chunk.windows is not None:
        ws = chunk.windows
        window_labels, window_scores = labeller.label_score(np.nan_to_num(ws.probs))
        window_scores = np.where(np.isnan(ws.probs[:, 0]), np.nan, window_scores)
        _, count, mean = windows.tile_scores(ws, ws.probs, window_scores)
        extra.update(zip(windows.COLUMNS, (count, mean), strict=True))
        kept = np.nan_to_num(window_scores, nan=-1.0) >= outputs.min_score
        mine = np.flatnonzero(ws.owned & kept)
        texts[windows.WINDOWS_PART] = windows.rows_text(
            ws, ws.probs, window_labels, window_scores, mine
        )
    extra.update(chunk.extra)
    rows = ChunkRows(
        [chunk.tiles[i] for i in keep],
        [labels[i] for i in keep],
        scores[keep],
        probs[keep],
        labeller.class_names,
        every=(chunk.tiles, scores, good),
        extra={name: values[keep] for name, values in extra.items()},
    )
    return {**chunk_parts(rows, outputs.formats), **texts}, len(keep)


def _class_names(scorer: Scorer, config: PredictScoring) -> list[str]:
    names = list(config.class_names) or scorer.class_names
    if not names:
        raise InputError(
            f"--model={config.model}: no class_names.json beside it; pass --class_names=a,b"
        )
    if scorer.class_names and config.class_names and list(config.class_names) != scorer.class_names:
        raise InputError(
            f"--class_names={','.join(config.class_names)} but the model says {scorer.class_names}"
        )
    if len(names) != scorer.num_classes:
        raise InputError(
            f"--class_names={','.join(names)}: {len(names)} names for a model with "
            f"{scorer.num_classes} outputs ({config.model})"
        )
    return names


def setup(config: PredictConfig) -> tuple[Scorer, TileInput, list[str]]:
    """The run's devices and precision, its model, its input (close it) and class names."""
    # a wrong --model or --runtime is one line, before any device is set up
    scoring = config.scoring
    artifact = open_artifact(scoring.model)
    runtime = artifact.resolve_runtime(scoring.runtime)
    # so is a wrong input or mask (a mask is built here, and kept in the output)
    source = open_input(config.inputs, config.outputs.output, keep_mask=not config.dry_run)
    try:
        split_cpu(scoring.cpu_devices)
        strategy = make_strategy(scoring.strategy)
        policy = set_precision(scoring.mixed_precision)
        scorer = Scorer(artifact, strategy, policy, scoring.tta, runtime)
        if scoring.localize == "cam":
            scorer.localizer = Localizer(artifact, scorer.image_size)
        return scorer, source, _class_names(scorer, scoring)
    except BaseException:
        source.close()
        raise


def write_chunk(
    k: int,
    chunk: ChunkData,
    probs: np.ndarray,
    labeller: Labeller,
    out: PredictionOutput,
    outputs: PredictOutputs,
    seconds: float,
) -> None:
    """Write one scored chunk's parts and its done marker."""
    texts, kept = _chunk_texts(chunk, probs, labeller, outputs)
    stats = {
        "tiles": len(chunk.tiles),
        "scored": len(chunk.tiles) - len(chunk.errors),
        "errors": len(chunk.errors),
        "missing": sum(reason == "missing" for reason, _ in chunk.errors.values()),
        "kept": kept,
        "seconds": round(seconds, 3),
    }
    if chunk.windows is not None:
        stats["windows"] = int(np.count_nonzero(chunk.windows.owned))
    listed = {i: e for i, e in chunk.errors.items() if outputs.list_missing or e[0] != "missing"}
    out.write_chunk(k, texts, format_errors(chunk.tiles, listed), stats)


@dataclass
class Run:
    """A prediction run's output claimed and its remaining chunks known (either engine)."""

    labeller: Labeller
    out: PredictionOutput
    fingerprint: dict[str, Any]
    total: int
    chunk_size: int
    chunks: int
    todo: list[int]
    done: set[int]

    @property
    def remaining(self) -> int:
        """Tiles in the chunks still to do."""
        return sum(min(self.chunk_size, self.total - k * self.chunk_size) for k in self.todo)

    def span(self, k: int) -> tuple[int, int]:
        """The input positions of chunk k."""
        return k * self.chunk_size, min(self.total, (k + 1) * self.chunk_size)


def _threshold_of(config: PredictScoring, class_names: list[str]) -> float:
    """The binary threshold: `--threshold`, or the one an evaluate report chose."""
    if not config.threshold_from:
        return config.threshold
    threshold, report = report_threshold(config.threshold_from, class_names)
    log.info(
        "threshold %.6f (%s, chosen on %s) from %s",
        threshold,
        report.get("threshold_mode"),
        report.get("threshold_chosen_on", report.get("split")),
        config.threshold_from,
    )
    return threshold


def _check_size(config: PredictOutputs, total: int) -> None:
    """Refuse to write every tile of a large run into files nobody can open."""
    merged = [f for f in config.formats if FORMATS[f].one_file]
    if merged and total > LARGE_ROWS and config.min_score <= 0:
        raise InputError(
            f"{total:,} tiles: a predictions.{merged[0]} of every one would be too large to open; "
            "use --formats=parquet (a GeoParquet file per chunk) and raster (a score COG), or "
            "keep hits only with --min_score"
        )


def begin(config: PredictConfig, scorer: Scorer, source: TileInput, class_names: list[str]) -> Run:
    """Claim (or resume) the output folder and list the chunks still to do."""
    scoring, outputs = config.scoring, config.outputs
    threshold = _threshold_of(scoring, class_names)
    labeller = Labeller.make(class_names, scoring.positive_class, threshold)
    columns = source.columns + (LOCALIZE_COLUMNS if scoring.localize != "none" else ())
    out = PredictionOutput(outputs.output, outputs.formats, tuple(class_names), columns)
    fingerprint = source.fingerprint()
    identity = {
        **config.identity(),
        "model": str(scorer.path),
        "class_names": class_names,
        "runtime": scorer.runtime,
    }
    total = len(source)
    _check_size(outputs, total)
    out.start({**identity, "input": fingerprint}, outputs.overwrite)
    chunks = math.ceil(total / outputs.chunk_size)
    done = out.done_chunks()
    todo = [k for k in range(chunks) if k not in done]
    if done:
        log.info("resuming: %d of %d chunks already done, %d to go", len(done), chunks, len(todo))
    log.info(
        "predicting %d tiles (%s) in %d chunks of %d with %s (%s) on %d device(s)",
        total,
        fingerprint["kind"],
        chunks,
        outputs.chunk_size,
        scorer.path,
        scorer.runtime,
        scorer.replicas,
    )
    return Run(labeller, out, fingerprint, total, outputs.chunk_size, chunks, todo, done)


def summarise(
    config: PredictConfig, run: Run, progress: Progress, scorer: Scorer, command: str | None
) -> PredictRun:
    """Merge the parts, write predict_run.json and return the run."""
    out, fingerprint = run.out, run.fingerprint
    per_chunk = out.chunk_stats(run.chunks)
    keys = ("tiles", "scored", "errors", "missing", "kept")
    totals = {k: sum(s[k] for s in per_chunk) for k in keys}
    files = out.merge(run.chunks, totals["kept"])
    rate = progress.rate
    projection = config.project_tiles / rate if rate > 0 else None
    result = PredictRun(
        **totals,
        files=files,
        this_run=ThisRun(progress.done, round(progress.elapsed, 2), round(rate, 2)),
        projection=Projection(
            tiles=config.project_tiles,
            devices=scorer.replicas,
            seconds=round(projection, 1) if projection else None,
            human=format_duration(projection) if projection else None,
        ),
        model=str(scorer.path),
        class_names=run.labeller.class_names,
        positive_class=run.labeller.positive_name,
        threshold=run.labeller.threshold,
        dtype_policy=scorer.policy,
        runtime=scorer.runtime,
        input=fingerprint,
        **run_record(command, config),
    )
    out.store.write_bytes(RUN_NAME, json_bytes(result))
    return result
