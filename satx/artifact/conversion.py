"""`export_runtimes(config)`: an export converted for other runtimes, measured and checked.

For each runtime asked for (and its int8 model with `--int8`; OpenVINO also in bfloat16 where
the CPU has it) the model is converted into a temporary folder beside the others and renamed
into `runtimes/<name>/`, then loaded through the same Scorer predict uses and compared with
TensorFlow on the agreement split: max |score difference|, ROC AUC before and after, and the
share of decisions flipped at the threshold. Its model-alone rate is measured on the same
batches as TensorFlow's. `runtimes.json` is rewritten after each runtime, so a killed export
keeps what it finished and a re-run redoes only the rest of what it is asked.

`--runtime=auto` (predict, evaluate) uses a runtime only if it is allowed as a default here: a
float model within `--float_tolerance` of TensorFlow's scores, a quantised one whose ROC AUC
dropped at most `--max_auc_drop`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from satx.artifact import agreement, runtimes
from satx.artifact.artifact import (
    RUNTIMES_FILE,
    RuntimeEntry,
    RuntimesRecord,
    model_path,
    open_artifact,
    report_threshold,
)
from satx.artifact.convert import Batches, ConversionFailed
from satx.artifact.scorer import Scorer
from satx.config import ExportConfig, TrainConfig
from satx.data.pipeline import make_eval_dataset
from satx.errors import InputError
from satx.io import claim
from satx.io.lock import output_lock
from satx.io.run_record import json_bytes, run_record
from satx.io.storage import atomic_write_local
from satx.records.manifest import Records, load_records

log = logging.getLogger(__name__)

RANDOM_TILES = 256  # float agreement without records: seeded random tiles
RATE_SECONDS = 2.0  # each runtime's model-alone rate is timed for at least this long


def _check_packages(config: ExportConfig) -> None:
    missing = runtimes.missing_for_conversion(config.to, config.int8)
    if missing:
        raise InputError(
            f"--to={','.join(config.to)}: {', '.join(missing)} not installed; "
            "pip install 'satx[runtimes]'"
        )


def _split_arrays(
    records: Records, config: ExportConfig, split: str, size: int, limit: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images and labels of a split of `--calibration` (its first `limit`; 0: all)."""
    if split not in records.manifest.splits:
        raise InputError(
            f"--calibration={config.calibration}: no {split!r} split "
            f"(it has {', '.join(records.manifest.splits)})"
        )
    images, labels = [], []
    for batch in make_eval_dataset(records, split, image_size=size, batch_size=config.batch_size):
        images.append(batch["image"].numpy())
        labels.append(batch["label"].numpy())
        if limit and sum(len(b) for b in images) >= limit:
            break
    images, labels = np.concatenate(images), np.concatenate(labels)
    return (images[:limit], labels[:limit]) if limit else (images, labels)


def _score(scorer: Scorer, images: np.ndarray, batch_size: int) -> np.ndarray:
    return np.concatenate(
        [scorer(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    )


def _sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(file.name.encode())
        with open(file, "rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()


def _replace(tmp: Path, target: Path) -> None:
    """Swap a finished runtime folder into place (the old one is removed after)."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


# what satx.export writes in EXPORT/<version>/runtimes/: a folder per runtime, and the temps
# of a conversion (`.NAME.tmp-PID/`) or a swap (`.NAME.old-PID/`) a killed export left
LAYOUT = claim.Layout(
    "export", (*(f"{name}/" for name in runtimes.RUNTIMES), ".*.tmp-*/", ".*.old-*/")
)


def _clean(folder: Path) -> None:
    """Remove what a killed export left half-written."""
    for leftover in folder.glob(".*.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for leftover in folder.glob(".*.old-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _verdict(name: str, numbers: dict[str, Any], config: ExportConfig) -> str | None:
    """Why `name` must not be auto's pick, or None."""
    if runtimes.parse(name)[1] is not None:  # int8, bf16: judged by what the ranking loses
        drop = numbers["auc_drop"]
        if drop is None:
            return "no ROC AUC measured (the agreement split needs both classes)"
        if drop > config.max_auc_drop:
            return f"ROC AUC drops {drop:.4f} > --max_auc_drop={config.max_auc_drop}"
        return None
    if numbers["max_abs_diff"] > config.float_tolerance:
        return (
            f"scores differ from TensorFlow's by up to {numbers['max_abs_diff']:.2e} "
            f"> --float_tolerance={config.float_tolerance}"
        )
    return None


def export_runtimes(config: ExportConfig, command: str | None = None) -> dict[str, Any]:
    """Convert, measure and check; returns (and writes) the export's runtimes.json."""
    version = model_path(config.model)
    if not version.is_dir():
        raise InputError(f"--model={version}: a .keras file; convert an export folder (satx.train)")
    _check_packages(config)
    claim.check(str(version / runtimes.FOLDER), LAYOUT)  # before minutes of work
    reference = Scorer(version, runtime="tf")
    size = reference.image_size
    threshold = config.threshold
    if config.threshold_from:
        threshold, _ = report_threshold(config.threshold_from, reference.class_names or [])
    if config.calibration:
        records = load_records(config.calibration)
        images, labels = _split_arrays(
            records, config, config.agreement_split, size, config.agreement_tiles
        )
        calibration, _ = _split_arrays(
            records, config, config.calibration_split, size, config.calibration_tiles
        )
        batches = [calibration[i : i + 8] for i in range(0, len(calibration), 8)]
    else:
        rng = np.random.default_rng(0)
        images, labels, batches = (
            rng.integers(0, 256, (RANDOM_TILES, size, size, 3), np.uint8),
            None,
            None,
        )
    expected = _score(reference, images, config.batch_size)
    record = RuntimesRecord.read(version)
    record.image_size, record.num_classes = size, reference.num_classes
    record.tf_tiles_per_s = round(reference.measure_rate(config.batch_size, 3, RATE_SECONDS), 1)
    record.agreement_on = (
        f"{config.calibration} split {config.agreement_split}"
        if config.calibration
        else f"{RANDOM_TILES} random tiles"
    )
    record.run.update(run_record(command, config))
    del reference
    folder = version / runtimes.FOLDER
    with output_lock(str(folder), "satx.export", LAYOUT):  # runtimes/ holds only ours
        _clean(folder)
        atomic_write_local(version / RUNTIMES_FILE, json_bytes(record.to_dict()))  # for loaders
        for name, converted in runtimes.conversions(config.to, config.int8):
            record.runtimes[name] = _one(
                name,
                converted,
                version,
                folder,
                images,
                labels,
                expected,
                batches,
                threshold,
                config,
            )
            atomic_write_local(version / RUNTIMES_FILE, json_bytes(record.to_dict()))
    return record.to_dict()


def _convert(name: str, version: Path, out: Path, calibration: Batches | None) -> None:
    """Write runtime `name`'s model of the SavedModel at `version` into the folder `out`.

    Raises:
        ConversionFailed: the converter refused the model (its own message, shortened).
    """
    spec = runtimes.parse(name)[0]
    out.mkdir(parents=True)
    try:
        spec.convert(version, out, calibration)
    except ConversionFailed:
        raise
    except Exception as err:  # each converter raises its own types
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ConversionFailed(
            f"{spec.family} conversion failed ({type(err).__name__}: {first})"
        ) from err


def _one(
    name: str,
    converted: bool,
    version: Path,
    folder: Path,
    images: np.ndarray,
    labels: np.ndarray | None,
    expected: np.ndarray,
    batches: list[np.ndarray] | None,
    threshold: float,
    config: ExportConfig,
) -> RuntimeEntry:
    started = time.perf_counter()
    if converted:
        tmp = folder / f".{name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _convert(name, version, tmp, batches if name.endswith("-int8") else None)
            _replace(tmp, folder / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # a failed conversion (a full disk) leaves none
    seconds = time.perf_counter() - started
    scorer = Scorer(open_artifact(version), runtime=name)
    numbers = agreement.agreement(
        expected, _score(scorer, images, config.batch_size), labels, threshold
    )
    rate = scorer.measure_rate(config.batch_size, 3, RATE_SECONDS)
    why_not = _verdict(name, numbers, config)
    if why_not:
        log.warning(
            "%s is not a default for --runtime=auto: %s (ask for it by name)", name, why_not
        )
    files = version / runtimes.files_of(name)
    entry = RuntimeEntry(
        file=str(runtimes.model_file(version, name).relative_to(version)),
        sha256=_sha256(files),
        bytes=sum(p.stat().st_size for p in files.rglob("*") if p.is_file()),
        convert_seconds=round(seconds, 1),
        tiles_per_s=round(rate, 1),
        agreement=numbers,
        default_ok=why_not is None,
        not_default_because=why_not,
    )
    log.info(
        "%s: %.0f tiles/s, max |diff| %.2e, %d of %d decisions flipped",
        name,
        rate,
        numbers["max_abs_diff"],
        numbers["flipped"],
        numbers["tiles"],
    )
    return entry


def export_after_training(
    export: str | None, train: TrainConfig, command: str | None = None
) -> dict[str, Any] | None:
    """`--export_runtimes` of satx.train and satx.tune: convert the export they just wrote.

    Calibrated on the run's validation split and checked on its test split (else validation).
    """
    if not (export and train.export_runtimes):
        return None
    splits = load_records(train.data.records).manifest.splits
    config = ExportConfig(
        model=export,
        to=train.export_runtimes,
        int8=train.export_int8,
        calibration=train.data.records,
        calibration_split=train.val_split if train.val_split in splits else "train",
        agreement_split="test" if "test" in splits else train.val_split,
    )
    return export_runtimes(config, command)
