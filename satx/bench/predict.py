"""Prediction throughput per backbone: `python -m satx.bench predict [--backbone=a,b]`.

For each backbone: build it (random weights, so no download), export it as the SavedModel
`satx.predict` loads, and run the real `satx.predict` over the bench's tiles (the first
`--predict_tiles` of the generated tiles or of `--data`). Reported per backbone:
- end-to-end tiles/s of the whole run (reading, decoding, model, writing; includes tracing);
- steady tiles/s over the chunks after the first (what a country run sees);
- the model alone on uint8 batches already in memory, and the ratio steady / model-only
  (near 1: the model is the limit, not reading or decoding);
- reading + decoding + resizing alone, and the rate both allow when they share the same CPU
  cores one after the other (on a GPU machine the model leaves the cores to decoding);
- the projected time for Colombia (`COUNTRY_TILES`) at the steady rate on the devices used.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from satx.bench.table import Column, table
from satx.config import COUNTRY_TILES
from satx.io.progress import format_duration

log = logging.getLogger(__name__)


def _input_only_rate(folder: str, size: int, batch_size: int) -> float:
    """Tiles/s of predict's read + decode + resize, without the model."""
    from satx.config import PredictInputs
    from satx.predict.decode import decoded_batches
    from satx.predict.inputs import open_input, readable

    source = open_input(PredictInputs(input=folder))
    start = time.perf_counter()
    chunk = source.read(0, len(source))
    source.close()
    for _ in decoded_batches(chunk, readable(chunk), size, batch_size):
        pass
    return len(source) / (time.perf_counter() - start)


def _spread_batchnorm(model, image_size: int) -> None:
    """Set every BatchNormalization's statistics from one batch of random tiles.

    With its initial statistics (mean 0, variance 1) a deep untrained network's outputs are all
    but constant, which would make comparing runtimes on it meaningless; with statistics of
    real activations they spread like a trained model's.
    """
    import keras
    import numpy as np

    def walk(layer):
        yield layer
        for inner in getattr(layer, "layers", []):
            yield from walk(inner)

    norms = [lay for lay in walk(model) if isinstance(lay, keras.layers.BatchNormalization)]
    for norm in norms:
        norm.momentum = 0.0  # the next training-mode call sets the batch's statistics
    tiles = np.random.default_rng(2).integers(0, 256, (16, image_size, image_size, 3), np.uint8)
    model(tiles, training=True)
    for norm in norms:
        norm.momentum = 0.99


def export_untrained(backbone: str, image_size: int, root: Path) -> str:
    """Build a backbone with random weights (no download) and export it as predict loads it.

    Its normalisation statistics come from random tiles, so its scores spread.
    """
    from satx.artifact.saved_model import write_saved_model
    from satx.config import ModelConfig
    from satx.models.classifier import build_classifier

    config = ModelConfig(backbone=backbone, image_size=image_size, weights="none")
    model = build_classifier(config, 2, seed=1)
    _spread_batchnorm(model, int(model.input.shape[1]))
    return str(write_saved_model(model, root / "export", ["not_school", "school"]))


def bench_predict(
    backbone: str,
    data: str,
    image_size: int = 0,
    batch_size: int = 32,
    chunk_size: int = 512,
    project_tiles: int = COUNTRY_TILES,
    export: str = "",
    runtime: str = "tf",
) -> dict:
    """Measure `satx.predict` on one backbone over `data` (any predict input: folder, CSV).

    `export`: score this export (default: the backbone built and exported untrained), with
    `runtime`.
    """
    from satx.artifact.scorer import Scorer
    from satx.config import PredictConfig
    from satx.predict.outputs import PredictionOutput
    from satx.predict.run import predict

    with tempfile.TemporaryDirectory(prefix="satx-bench-predict-") as tmp:
        root = Path(tmp)
        export = export or export_untrained(backbone, image_size, root)
        chunk = max(batch_size, chunk_size)
        run = PredictConfig.make(
            model=str(export),
            output=str(root / "out"),
            input=data,
            batch_size=batch_size,
            chunk_size=chunk,
            formats=("csv",),
            project_tiles=project_tiles,
            runtime=runtime,
        )
        summary = predict(run)
        stats = PredictionOutput(run.outputs.output, run.outputs.formats, ()).chunk_stats(
            -(-summary.tiles // chunk)
        )
        scorer = Scorer(export, runtime=runtime)
        model_only = scorer.measure_rate(batch_size)
        size = scorer.image_size
        input_only = _input_only_rate(data, size, batch_size)
    later = stats[1:] or stats
    steady = sum(s["tiles"] for s in later) / max(1e-9, sum(s["seconds"] for s in later))
    devices = summary.projection.devices
    seconds = project_tiles / steady
    result = {
        "backbone": backbone,
        "runtime": runtime,
        "image_size": size,
        "tiles": summary.tiles,
        "batch_size": batch_size,
        "devices": devices,
        "end_to_end_tiles_per_s": summary.this_run.tiles_per_s,
        "steady_tiles_per_s": round(steady, 2),
        "model_only_tiles_per_s": round(model_only, 2),
        "steady_over_model_only": round(steady / model_only, 3),
        "input_only_tiles_per_s": round(input_only, 2),
        # both on the same CPU cores, one after the other: what sharing the cores allows
        "serial_bound_tiles_per_s": round(1 / (1 / model_only + 1 / input_only), 2),
        "project_tiles": project_tiles,
        "projected_seconds": round(seconds, 1),
        "projected_human": format_duration(seconds),
    }
    log.info("predict bench %s: %s", backbone, result)
    return result


PREDICT_COLUMNS = (
    Column("backbone", "backbone", 12, left=True),
    Column("px", "image_size", 4),
    Column("tiles", "tiles", 6),
    Column("dev", "devices", 3),
    Column("e2e/s", "end_to_end_tiles_per_s", 7, ".1f"),
    Column("steady/s", "steady_tiles_per_s", 9, ".1f"),
    Column("model/s", "model_only_tiles_per_s", 8, ".1f"),
    Column("ratio", "steady_over_model_only", 6, ".3f"),
    Column("input/s", "input_only_tiles_per_s", 8, ".1f"),
    Column("serial/s", "serial_bound_tiles_per_s", 8, ".1f"),
    Column(
        " projected for Colombia",
        lambda r: f" {r['projected_human']} ({r['projected_seconds'] / 86400:.1f} days)",
        left=True,
    ),
)


def format_predict_table(rows: list[dict]) -> str:
    """Plain text table of bench_predict results."""
    return table(rows, PREDICT_COLUMNS)
