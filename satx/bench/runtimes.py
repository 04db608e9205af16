"""Inference runtimes against TensorFlow in one run: `satx.bench predict --runtime=...`.

    python -m satx.bench predict --runtime=tf,onnx,openvino,litert [--int8] --backbone=a,b

Per backbone (random weights, BatchNorm statistics from random tiles so its scores spread):
- `satx.export` converts it for each runtime (int8 calibrated on the bench's tiles) and
  records how each agrees with TensorFlow on them;
- model alone: each runtime's tiles/s on uint8 batches in memory, the runtimes taking turns
  over `--repeats` rounds (medians; the ratio to TensorFlow is taken within each round);
- end to end: the real `satx.predict` over the bench's tiles with each runtime, steady tiles/s
  (the chunks after the first), against the bound that the model's rate and decoding allow
  when they share these cores one after the other: 1 / (1/model + 1/decode);
- the time Colombia would take per 2-core worker at that rate (and over `--masked_tiles`).
With `--model=EXPORT --records=DIR` a trained export is converted too, and each runtime's ROC
AUC and decisions flipped on the records' test split are reported.
"""

from __future__ import annotations

import logging
import shutil
import statistics
from pathlib import Path
from typing import Any

from satx.artifact.artifact import model_path
from satx.artifact.conversion import export_runtimes
from satx.artifact.report import format_table
from satx.artifact.scorer import Scorer
from satx.bench.predict import bench_predict, export_untrained
from satx.bench.table import Column, table
from satx.config import COUNTRY_TILES, RUNTIMES, BenchConfig, ExportConfig
from satx.errors import InputError
from satx.io.progress import format_duration

log = logging.getLogger(__name__)

RATE_SECONDS = 2.0


def runtime_names(s: BenchConfig) -> list[str]:
    """TensorFlow first, then the runtimes asked for and, with --int8, their int8 models."""
    names = ["tf"] + [n for n in s.runtimes if n != "tf"]
    if s.int8:
        names += [f"{n}-int8" for n in s.runtimes if f"{n}-int8" in RUNTIMES]
    return list(dict.fromkeys(names))


def _families(names: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n.split("-")[0] for n in names if n != "tf"))


def _convert(export: str, names: list[str], s: BenchConfig, records: str, split: str) -> dict:
    config = ExportConfig(
        model=export,
        to=_families(names),
        int8=any(n.endswith("-int8") for n in names),
        calibration=records,
        calibration_split=split,
        agreement_split=split if split == "train" else "test",
        agreement_tiles=512 if split == "train" else 0,
        batch_size=s.predict_batch_size,
    )
    return export_runtimes(config, "satx.bench predict --runtime")


def _model_alone(export: str, names: list[str], s: BenchConfig) -> dict[str, dict[str, float]]:
    scorers = {n: Scorer(export, runtime=n) for n in names}
    rates: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(s.repeats):
        for n in names:  # taking turns, so a busy moment on this shared machine hits all
            rates[n].append(scorers[n].measure_rate(s.predict_batch_size, 3, RATE_SECONDS))
    return {
        n: {
            "model_only_tiles_per_s": round(statistics.median(rates[n]), 1),
            "model_only_over_tf": round(
                statistics.median(r / t for r, t in zip(rates[n], rates["tf"], strict=True)), 3
            ),
            "model_only_spread": [round(min(rates[n]), 1), round(max(rates[n]), 1)],
        }
        for n in names
    }


def bench_runtimes(
    backbone: str, listing: str, records: str, size: int, s: BenchConfig, work: Path
) -> dict[str, Any]:
    """One backbone through every runtime asked for: conversion, model alone, end to end."""
    names = runtime_names(s)
    export = export_untrained(backbone, size, work / backbone)
    manifest = _convert(export, names, s, records, "train")
    rows = _model_alone(export, names, s)
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for _ in range(s.repeats):
        for n in names:  # taking turns here too
            runs[n].append(
                bench_predict(
                    backbone, listing, size, s.predict_batch_size, export=export, runtime=n
                )
            )
    for n in names:
        rows[n].update(
            end_to_end_tiles_per_s=statistics.median(r["steady_tiles_per_s"] for r in runs[n]),
            input_only_tiles_per_s=statistics.median(r["input_only_tiles_per_s"] for r in runs[n]),
        )
    decode = statistics.median(r["input_only_tiles_per_s"] for r in rows.values())
    for n, row in rows.items():
        bound = 1 / (1 / row["model_only_tiles_per_s"] + 1 / decode)
        steady = row["end_to_end_tiles_per_s"]
        row.update(
            bound_tiles_per_s=round(bound, 1),
            end_to_end_over_bound=round(steady / bound, 3),
            end_to_end_over_tf=round(steady / rows["tf"]["end_to_end_tiles_per_s"], 3),
            colombia_days=round(COUNTRY_TILES / steady / 86400, 2),
            colombia_human=format_duration(COUNTRY_TILES / steady),
            masked_human=format_duration(s.masked_tiles / steady) if s.masked_tiles else None,
            agreement=manifest["runtimes"].get(n, {}).get("agreement"),
        )
    return {
        "image_size": manifest["image_size"],
        "decode_tiles_per_s": round(decode, 1),
        "runtimes": rows,
    }


def bench_trained(s: BenchConfig, work: Path) -> dict[str, Any]:
    """A trained export (a copy) converted for every runtime; its agreement on test."""
    if not s.records:
        raise InputError("--model: give the records it was trained on with --records=DIR")
    copy = work / "trained" / "export"
    shutil.copytree(model_path(s.model), copy / "1")
    return _convert(str(copy), runtime_names(s), s, s.records, "val")


def _agreement(row: dict[str, Any], key: str, spec: str) -> str:
    a = row["agreement"] or {}
    return format(a[key], spec) if a else "-"


RUNTIME_COLUMNS = (
    Column("runtime", "name", 14, left=True),
    Column("model", "model_only_tiles_per_s", 7, ".1f"),
    Column("vs tf", "model_only_over_tf", 6, ".2f"),
    Column("e2e", "end_to_end_tiles_per_s", 7, ".1f"),
    Column("vs tf", "end_to_end_over_tf", 6, ".2f"),
    Column("bound", "bound_tiles_per_s", 7, ".1f"),
    Column("e2e/bound", "end_to_end_over_bound", 9, ".2f"),
    Column("max|diff|", lambda r: _agreement(r, "max_abs_diff", ".1e"), 9),
    Column("flipped", lambda r: _agreement(r, "flipped_share", ".2%"), 8),
    Column(
        " Colombia per 2-core worker",
        lambda r: (
            f" {r['colombia_human']}"
            + (f" ({r['masked_human']} masked)" if r["masked_human"] else "")
        ),
        left=True,
    ),
)


def format_runtimes(result: dict[str, Any]) -> str:
    """A table per backbone (model alone, end to end, projection), then the trained model's."""
    parts = [
        f"{backbone} at {r['image_size']} px (decode alone {r['decode_tiles_per_s']:,.0f} "
        "tiles/s); tiles/s, ratios to tf within one run\n"
        + table([{"name": n, **row} for n, row in r["runtimes"].items()], RUNTIME_COLUMNS)
        for backbone, r in result["backbones"].items()
    ]
    if result.get("trained"):
        parts.append("trained model:\n" + format_table(result["trained"]))
    return "\n\n".join(parts)
