"""Model quality: `python -m satx.bench quality --data=DIR --recipe=FILE [--workdir=DIR]`.

Makes records from a class-folder tree (80/10/10, at the tiles' own size), trains with a recipe
(`configs/*.json`), and evaluates on the held-back test split with and without test-time
augmentation. Reports accuracy, macro F1, ROC/PR AUC (binary), the expected calibration error
before and after calibration, the TTA gain and its cost, and the wall time of each step.

A recipe's `view` turns a multi-class tree into another task (`make_view`): an imbalanced
binary one (`{"positive": "Residential", "negatives_per_positive": 9}`: the positive class
against nine times as many tiles of the others), or a smaller multi-class one
(`{"per_class": 500}`). Tiles are linked, not copied, and drawn with the recipe's seed.
"""

from __future__ import annotations

import logging
import os
import random
import time
from pathlib import Path
from typing import Any

from PIL import Image

from satx.config import EvaluateConfig, RecordsConfig
from satx.errors import InputError
from satx.tiles.formats import EXTENSIONS
from satx.train.recipe import read_recipe, recipe_config

log = logging.getLogger(__name__)


def _class_files(data: Path) -> dict[str, list[Path]]:
    return {
        d.name: sorted(p for p in d.rglob("*") if p.suffix.lower() in EXTENSIONS)
        for d in sorted(data.iterdir())
        if d.is_dir()
    }


def _draw(rng: random.Random, paths: list[Path], count: Any) -> list[Path]:
    """`count` of `paths` drawn with `rng` (all of them when count is None or larger)."""
    if count is None or int(count) >= len(paths):
        return paths
    return sorted(rng.sample(paths, int(count)))


def _link(root: Path, groups: dict[str, list[Path]]) -> Path:
    for label, paths in groups.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for p in paths:
            link = root / label / f"{p.parent.name}-{p.name}"
            if not link.exists():
                os.symlink(p.absolute(), link)
    return root


def make_view(data: Path, view: dict[str, Any], root: Path, seed: int) -> Path:
    """A recipe's view of a class-folder tree, as symlinks under `root` (nothing is copied).

    `{"positive": C, "negatives_per_positive": R, "positives": N}`: binary, `positive` (N of
    class C, default all) and `negative` (R x as many of the other classes).
    `{"per_class": N}`: every class, N tiles each (a smaller multi-class task).
    Draws use the recipe's seed.
    """
    rng = random.Random(seed)
    files = _class_files(data)
    if "per_class" in view:
        return _link(
            root, {name: _draw(rng, paths, view["per_class"]) for name, paths in files.items()}
        )
    positive = view["positive"]
    if positive not in files:
        raise InputError(f"view.positive={positive!r}: no such class folder in {data}")
    positives = _draw(rng, files[positive], view.get("positives"))
    others = [p for name, paths in files.items() if name != positive for p in paths]
    ratio = float(view.get("negatives_per_positive", 9))
    negatives = _draw(rng, others, round(ratio * len(positives)))
    return _link(root, {"positive": positives, "negative": negatives})


def _tile_size(data: Path) -> int:
    first = next(p for p in data.rglob("*") if p.suffix.lower() in EXTENSIONS)
    with Image.open(first) as image:
        return image.size[0]


def split_for(train_share: float) -> str:
    """The records split: 80/10/10, or a share of the 80 % trains and the rest is held out.

    Untiled (not geolocated) tiles fall into splits by a seeded hash against the cumulative
    fractions, so validation and test are the same tiles whatever the share, and a smaller
    share's training tiles are a subset of a larger one's.
    """
    if train_share >= 1:
        return "train:0.8,val:0.1,test:0.1"
    train = round(0.8 * train_share, 6)
    return f"train:{train:g},unused:{round(0.8 - train, 6):g},val:0.1,test:0.1"


def bench_quality(data: str, recipe: str, workdir: str, train_share: float = 1.0) -> dict[str, Any]:
    """Records -> training with the recipe -> evaluation on test (plain and TTA)."""
    from satx.evaluate.report import evaluate
    from satx.records.make import make_records
    from satx.train.fit import train

    spec = read_recipe(recipe)
    work = Path(workdir)
    source = Path(data)
    if not source.is_dir():
        raise InputError(f"--data={data}: no such folder")
    seed = int(spec["train"].get("seed", 42))
    if spec["view"]:
        source = make_view(source, spec["view"], work / "view", seed)
    times: dict[str, float] = {}
    start = time.monotonic()
    records = work / "records"
    if not (records / "manifest.json").exists():
        make_records(
            RecordsConfig(
                input=str(source),
                output=str(records),
                split=split_for(train_share),
                image_size=_tile_size(source),
                seed=seed,
            )
        )
    times["records_s"] = round(time.monotonic() - start, 1)
    start = time.monotonic()
    summary = train(recipe_config(recipe, records=str(records), workdir=str(work / "train")))
    times["train_s"] = round(time.monotonic() - start, 1)
    reports = {}
    for tta in ("none", "dihedral"):
        start = time.monotonic()
        reports[tta] = evaluate(
            EvaluateConfig(
                model=summary.export or "",
                records=str(records),
                output=str(work / f"eval-{tta}"),
                threshold="youden",
                tta=tta,
            )
        )
        times[f"evaluate_{tta}_s"] = round(time.monotonic() - start, 1)
    plain, tta = reports["none"], reports["dihedral"]
    f1 = [c["f1"] for c in plain.per_class.values() if c["f1"] is not None]
    calibration = plain.calibration or {}
    result = {
        "recipe": recipe,
        "about": spec["about"],
        "data": data,
        "view": spec["view"],
        "train_share": train_share,
        "train_tiles": summary_train_tiles(records),
        "test_tiles": plain.count,
        "accuracy": round(plain.accuracy, 4),
        "macro_f1": round(sum(f1) / len(f1), 4) if f1 else None,
        "roc_auc": plain.roc_auc,
        "pr_auc": plain.pr_auc,
        "ece_uncalibrated": calibration.get("ece_uncalibrated"),
        "ece_calibrated": plain.expected_calibration_error,
        "temperature": calibration.get("temperature", 1.0),
        "calibration_bias": calibration.get("bias", []),
        "tta_accuracy": round(tta.accuracy, 4),
        "tta_gain": round(tta.accuracy - plain.accuracy, 4),
        "tta_cost": round(times["evaluate_dihedral_s"] / max(times["evaluate_none_s"], 1e-9), 1),
        "epochs_run": len(summary.epochs_run),
        **times,
        "wall_s": round(sum(times.values()), 1),
    }
    log.info("quality: %s", result)
    return result


def summary_train_tiles(records: Path) -> int:
    """Tiles in the training split of a records folder."""
    from satx.records.manifest import load_records

    return load_records(str(records)).manifest.count("train")


def format_quality(r: dict[str, Any]) -> str:
    """The quality benchmark as plain text."""
    auc = f", ROC AUC {r['roc_auc']:.4f}, PR AUC {r['pr_auc']:.4f}" if r["roc_auc"] else ""
    ece = r["ece_uncalibrated"]
    before = f"{ece:.4f}" if ece is not None else "-"
    return (
        f"quality ({r['recipe']}, {r['train_tiles']} training and {r['test_tiles']} test "
        f"tiles): accuracy {r['accuracy']:.4f}, "
        f"macro F1 {r['macro_f1']}{auc}\n"
        f"  calibration: ECE {before} -> {r['ece_calibrated']:.4f} (temperature "
        f"{r['temperature']:.3f}, class bias {[round(b, 3) for b in r['calibration_bias']]}); "
        f"TTA (dihedral) accuracy {r['tta_accuracy']:.4f} "
        f"({r['tta_gain']:+.4f}) at {r['tta_cost']:.1f}x the model time\n"
        f"  wall time {r['wall_s']:.0f} s (records {r['records_s']:.0f}, train "
        f"{r['train_s']:.0f}, evaluate {r['evaluate_none_s']:.0f} + TTA "
        f"{r['evaluate_dihedral_s']:.0f}), {r['epochs_run']} epochs"
    )
