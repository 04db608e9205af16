"""Evaluate a trained classifier on a records split: `evaluate(config)`.

`--model` is an exported SavedModel folder (`export/<version>`, or `export/` for its newest
version) or a `.keras` file. Writes `report.json` (every number: accuracy, ROC AUC, PR AUC,
confusion matrix, threshold, per-class report, calibration error), PNG plots, a short
`report.md` that embeds them, for binary tasks `errors.geojson` (false positives/negatives as
tile polygons, counted per parent tile in the report), and with `--scores_out` one CSV row per
tile (`source_id, z, x, y, label, score_<class>...`) so anyone can recompute the metrics.
"""

from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from satx import geo
from satx.artifact.scorer import Scorer
from satx.config import EvaluateConfig
from satx.data.pipeline import make_eval_dataset
from satx.errors import InputError
from satx.evaluate import scores
from satx.evaluate.result import EvaluationReport
from satx.evaluate.sites import split_graph
from satx.io import claim, csv_out
from satx.io.lock import output_lock
from satx.io.run_record import run_record, write_json
from satx.io.storage import atomic_write_local
from satx.io.targets import check_target
from satx.records.manifest import Records, load_records

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    """Every tile of a split with its label, probabilities and address."""

    labels: np.ndarray  # int [N]
    probs: np.ndarray  # float [N, K]
    source_ids: list[str]
    tiles: np.ndarray  # int [N, 3]: z, x, y (-1 without geolocation)
    bboxes: np.ndarray  # float [N, 4]: west, south, east, north
    quadkeys: list[str]


def score_split(scorer: Scorer, records: Records, split: str, batch_size: int) -> Scored:
    """Run the model over one deterministic pass of a split."""
    labels, probs, ids, tiles, bboxes, quadkeys = [], [], [], [], [], []
    batches = make_eval_dataset(records, split, image_size=scorer.image_size, batch_size=batch_size)
    for batch in batches:
        probs.append(scorer(batch["image"]))
        labels.append(batch["label"].numpy())
        ids += [s.decode() for s in batch["source_id"].numpy()]
        tiles.append(np.stack([batch[f"tile_{k}"].numpy() for k in "zxy"], axis=1))
        bboxes.append(batch["bbox"].numpy())
        quadkeys += [q.decode() for q in batch["quadkey"].numpy()]
    if not labels:
        raise InputError(f"{records.root}: split {split!r} has no records")
    return Scored(
        np.concatenate(labels),
        np.concatenate(probs),
        ids,
        np.concatenate(tiles),
        np.concatenate(bboxes),
        quadkeys,
    )


def _error_features(
    scored: Scored, class_names: list[str], threshold: float, parent_zoom: int = 12
) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
    """Binary errors for mappers: a GeoJSON of tile polygons and counts per parent tile.

    False positives and negatives become polygons (from the records' bounds) with score, label
    and quadkey; the counts are keyed `z/x/y` of the parent tile at `parent_zoom`. Tiles
    without geolocation are left out of both (they have no place on the map).
    """
    import mercantile

    features, regions = [], {}
    positive = scored.probs[:, 1]
    for i, (z, x, y) in enumerate(scored.tiles):
        predicted = int(positive[i] >= threshold)
        if z < 0 or predicted == scored.labels[i]:
            continue
        kind = "false_positive" if predicted else "false_negative"
        features.append(
            {
                "type": "Feature",
                "geometry": geo.bbox_polygon(scored.bboxes[i]),
                "properties": {
                    "error": kind,
                    "source_id": scored.source_ids[i],
                    "z": int(z),
                    "x": int(x),
                    "y": int(y),
                    "quadkey": scored.quadkeys[i],
                    "label": class_names[scored.labels[i]],
                    "predicted": class_names[predicted],
                    "score": round(float(positive[i]), 6),
                },
            }
        )
        parent = geo.parent_at_zoom(mercantile.Tile(int(x), int(y), int(z)), parent_zoom)
        key = geo.tile_key(parent)
        regions.setdefault(key, {"false_positive": 0, "false_negative": 0})[kind] += 1
    return {"type": "FeatureCollection", "features": features}, regions


def _scores_csv(scored: Scored, class_names: list[str]) -> str:
    """The per-tile CSV: source_id, z, x, y, label (class name), score_<class> for each class."""
    out = io.StringIO()
    writer = csv_out.writer(out)
    writer.writerow(["source_id", "z", "x", "y", "label", *(f"score_{c}" for c in class_names)])
    for i, source_id in enumerate(scored.source_ids):
        z, x, y = (int(v) for v in scored.tiles[i])
        row = [source_id, z, x, y, class_names[scored.labels[i]]]
        writer.writerow(row + [f"{p:.6f}" for p in scored.probs[i]])
    return out.getvalue()


def _layout(config: EvaluateConfig) -> claim.Layout:
    """What evaluate writes in `--output` (a `--scores_out` inside it included)."""
    owned = ("report.json", "report.md", "errors.geojson", "*.png")
    if config.scores_out:
        inside = os.path.relpath(os.path.abspath(config.scores_out), os.path.abspath(config.output))
        owned += () if inside.startswith("..") else (inside,)
    return claim.Layout("evaluate", owned, legacy=("report.json",))


def evaluate(config: EvaluateConfig, command: str | None = None) -> EvaluationReport:
    """Score a split, write report.json / report.md (and the scores CSV); return the report.

    Raises:
        InputError / OutputExistsError: `--output` is not evaluate's to write (`satx.io.claim`),
            or `--scores_out` is not a file path.
    """
    if config.scores_out:
        check_target(config.scores_out, "--scores_out")
    inputs = (("--model", config.model), ("--records", config.records))
    with output_lock(config.output, "evaluate", _layout(config), inputs):
        return _evaluate(config, command)


def _evaluate(config: EvaluateConfig, command: str | None) -> EvaluationReport:
    records = load_records(config.records)
    scorer = Scorer(config.model, tta=config.tta, runtime=config.runtime)
    class_names = _check_classes(scorer, records, config)
    scored = score_split(scorer, records, config.split, config.batch_size)
    chosen, chosen_on = _threshold_elsewhere(scorer, records, config, class_names)
    numbers = scores.report(
        scored.labels,
        scored.probs,
        class_names,
        config.threshold,
        chosen.get("threshold"),
        split_graph(scored.tiles, records.manifest.context),
    )
    binary = len(class_names) == 2
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = {}
    raw = None
    if not scorer.calibration.is_identity:  # the export calibrates; undo it to compare
        raw = scorer.calibration.undo(scored.probs)
        extra["calibration"] = {
            **scorer.calibration.to_dict(),
            "ece_uncalibrated": _reliability(scored.labels, raw).ece,
            "ece_calibrated": numbers["expected_calibration_error"],
        }
    if binary:
        collection, regions = _error_features(scored, class_names, numbers["threshold"])
        write_json(out / "errors.geojson", collection)
        extra.update(errors_geojson=str(out / "errors.geojson"), errors_by_parent_tile=regions)
    plotted = _plots(scored, numbers, class_names, out)
    if raw is not None:
        from satx.evaluate import plots

        path = out / "reliability_uncalibrated.png"
        plotted.append(plots.reliability_plot(_reliability(scored.labels, raw), path))
    report = EvaluationReport.from_dict(
        {
            **numbers,
            "class_names": class_names,
            "split": config.split,
            "model": str(scorer.path),
            "runtime": scorer.runtime,
            "threshold_chosen_on": chosen_on if binary else None,
            "at_threshold_chosen": chosen.get("at_threshold"),
            "plots": [p.name for p in plotted],
            **extra,
            **run_record(command, config, records.identity()),
        }
    )
    write_json(out / "report.json", report)
    atomic_write_local(out / "report.md", _markdown(report).encode())
    if config.scores_out:
        atomic_write_local(Path(config.scores_out), _scores_csv(scored, class_names).encode())
    log.info("evaluated %d tiles of %s: accuracy %.4f", report.count, config.split, report.accuracy)
    return report


def _check_classes(scorer: Scorer, records: Records, config: EvaluateConfig) -> list[str]:
    """The records' class names, refused when the model was trained on others."""
    class_names = list(records.manifest.class_names)
    if scorer.class_names is None and scorer.num_classes != len(class_names):
        raise InputError(
            f"--model={config.model} has {scorer.num_classes} outputs, the records have "
            f"{len(class_names)} classes {class_names}"
        )
    if scorer.class_names is not None and scorer.class_names != class_names:
        raise InputError(
            f"--model={config.model} was trained on classes {scorer.class_names}, the records "
            f"have {class_names}; evaluate it on records made with the same --classes"
        )
    return class_names


def _threshold_elsewhere(
    scorer: Scorer, records: Records, config: EvaluateConfig, class_names: list[str]
) -> tuple[dict[str, Any], str]:
    """A binary threshold mode chosen on `threshold_split` (not on the split it is tested on).

    Returns `({threshold, at_threshold}, split)`, or `({}, evaluated split)` when the mode is a
    number, the model is multi-class, or the records lack that split.
    """
    split = config.threshold_split
    try:
        float(config.threshold)
        return {}, config.split
    except ValueError:
        pass
    usable = split and split != config.split and records.manifest.has_split(split)
    if len(class_names) != 2 or not usable:
        return {}, config.split
    other = score_split(scorer, records, split, config.batch_size)
    graph = split_graph(other.tiles, records.manifest.context)
    t = scores.choose_threshold(other.labels, other.probs[:, 1], config.threshold, graph)
    at = scores.binary_at(other.labels, other.probs[:, 1], t, graph)
    return {"threshold": t, "at_threshold": at}, split


def _reliability(labels: np.ndarray, probs: np.ndarray) -> scores.Reliability:
    """Reliability of the positive score (binary) or of the top score (multi-class)."""
    if probs.shape[1] == 2:
        return scores.reliability(labels, probs[:, 1])
    return scores.reliability(np.argmax(probs, axis=1) == labels, probs.max(axis=1))


def _plots(scored: Scored, r: dict[str, Any], class_names: list[str], out: Path) -> list[Path]:
    """The report's PNG plots; `r` holds the numbers of `scores.report`."""
    from satx.evaluate import plots

    labels, probs = scored.labels, scored.probs
    matrix = np.array(r["confusion_matrix"])
    paths = [plots.confusion_plot(matrix, class_names, out / "confusion.png")]
    if len(class_names) == 2:
        score, positive = probs[:, 1], class_names[1]
        if r["roc_auc"] is not None:
            paths.append(plots.roc_plot(labels, score, r["threshold"], out / "roc.png"))
            paths.append(plots.pr_plot(labels, score, out / "pr.png"))
        title = f"score of {positive}"
    else:
        score = probs.max(axis=1)
        title = "top score"
    cal = _reliability(labels, probs)
    paths.append(plots.histogram_plot(labels, score, class_names, title, out / "scores.png"))
    paths.append(plots.reliability_plot(cal, out / "reliability.png"))
    return paths


def _markdown(r: EvaluationReport) -> str:
    def num(v: Any) -> str:
        return "-" if v is None else f"{v:.4f}"

    at = r.at_threshold
    lines = [
        f"# Evaluation: {r.split} split ({r.count} tiles)",
        "",
        f"- model: `{r.model}` (runtime {r.runtime})",
        f"- records: `{r.records}`",
        f"- accuracy {num(r.accuracy)}, ROC AUC {num(r.roc_auc)}, PR AUC {num(r.pr_auc)}",
        f"- threshold: {r.threshold_mode} = {num(r.threshold)}"
        + (f", chosen on the {r.threshold_chosen_on} split" if r.threshold_chosen_on else "")
        + (
            f"; here precision {num(at['precision'])}, recall {num(at['recall'])}, "
            f"{at['hits_per_million']:,.0f} hits per million tiles"
            if at
            else ""
        )
        + (
            f", {at['sites']:,} sites ({at['sites_per_million']:,.0f} per million tiles), "
            f"{num(at['recovered'])} of the schools recovered within "
            f"{at['recovered_radius_m']:g} m"
            if at and "sites" in at
            else ""
        ),
        f"- expected calibration error: {num(r.expected_calibration_error)}"
        + (
            f" (temperature {r.calibration['temperature']:.3f}, class bias "
            f"{[round(b, 3) for b in r.calibration.get('bias', [])]}; uncalibrated "
            f"{num(r.calibration['ece_uncalibrated'])})"
            if r.calibration
            else ""
        ),
        "",
        "| class | precision | recall | F1 | support |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, c in r.per_class.items():
        lines.append(
            f"| {name} | {num(c['precision'])} | {num(c['recall'])} | {num(c['f1'])} | "
            f"{c['support']} |"
        )
    lines += ["", "Confusion matrix (rows: true class, columns: predicted):", ""]
    lines += ["    " + json.dumps(list(row)) for row in r.confusion_matrix]
    lines += [""] + [f"![{Path(name).stem}]({name})" for name in r.plots]
    if r.errors_geojson:
        lines += ["", f"Errors on the map (false positives/negatives): `{r.errors_geojson}`"]
    return "\n".join(lines) + "\n"
