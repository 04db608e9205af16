"""The search driver: `tune(config)` runs, resumes or summarises a Hyperband search.

Writes WORKDIR/tune_run.json (the resolved TuneConfig, tuner settings included, versions, the
records' hashes), WORKDIR/leaderboard.csv and .json, WORKDIR/best_hparams.json (accepted by
`python -m satx.train --hparams=...`), TensorBoard runs per trial with the HParams dashboard
under WORKDIR/logs, and with `export_best` retrains the best configuration (WORKDIR/best) and
exports it to WORKDIR/export/<version>/. With the `KERASTUNER_*` environment variables set it
runs as Keras Tuner's chief or a worker. No absl flags: code that embeds satx calls `tune()`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import keras_tuner as kt
import tensorflow as tf

from satx.config import TrainConfig, TuneConfig
from satx.errors import InputError
from satx.io import csv_out
from satx.io.lock import output_lock
from satx.io.run_record import run_record, write_json
from satx.io.storage import atomic_write_local
from satx.models import backbones
from satx.records.manifest import load_records
from satx.train.callbacks import tensorboard_callback
from satx.train.distribute import make_strategy, set_precision, split_cpu
from satx.train.fit import train
from satx.train.phases import monitor_for
from satx.train.result import TrainResult
from satx.tune.hyperband import SatxTuner, distributed_role, progress_line, tuner_id
from satx.tune.hypermodel import SatxHyperModel, searched_knobs
from satx.tune.result import LAYOUT, SearchFiles, TuneResult

log = logging.getLogger(__name__)


def backbone_names(choice: str) -> list[str]:
    """`all` -> every listed backbone of the registry; otherwise the one named (validated)."""
    if choice == "all":
        return backbones.list_backbones(listed_only=True)
    backbones.get_spec(choice)
    return [choice]


def make_tuner(
    hypermodel: SatxHyperModel,
    directory: str,
    project_name: str,
    objective: str = "auto",
    **kwargs: Any,
) -> SatxTuner:
    """A Hyperband tuner over the hypermodel (objective: val AUC binary, val accuracy else).

    Keyword arguments go to `SatxTuner` (`max_epochs`, `factor`, `hyperband_iterations`, `seed`,
    `max_trials`, `time_budget_s`, `recycle_rss_mb`) and on to Keras Tuner (`overwrite`,
    `distribution_strategy`, ...).
    """
    name, mode = monitor_for(hypermodel.num_classes, objective)
    return SatxTuner(
        hypermodel,
        objective=kt.Objective(name, mode),
        directory=directory,
        project_name=project_name,
        **kwargs,
    )


def leaderboard(tuner: kt.Tuner) -> list[dict[str, Any]]:
    """Every completed trial, best first: id, backbone, hyperparameters, score, epochs."""
    rows = []
    trials = tuner.oracle.get_best_trials(num_trials=len(tuner.oracle.trials))
    for rank, trial in enumerate(trials, start=1):
        values = {
            k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")
        }
        rows.append(
            {
                "rank": rank,
                "trial": trial.trial_id,
                "backbone": values.get("backbone"),
                "score": trial.score,
                "epochs": trial.hyperparameters.values.get("tuner/epochs"),
                "best_step": trial.best_step,
                "seconds": _metric(trial, "trial_seconds"),
                "status": str(trial.status),
                "hyperparameters": values,
            }
        )
    return rows


def _metric(trial: kt.engine.trial.Trial, name: str) -> float | None:
    tracker = trial.metrics
    return tracker.get_last_value(name) if tracker.exists(name) else None


def best_hparams(tuner: kt.Tuner, hypermodel: SatxHyperModel) -> dict[str, Any]:
    """Flat overrides of the best trial, as `python -m satx.train --hparams=FILE` accepts."""
    hp = tuner.get_best_hyperparameters(1)[0]
    overrides = hypermodel.hparams(hp.copy())
    return json.loads(json.dumps(overrides))


def _best_epochs(tuner: kt.Tuner) -> int:
    """Epochs the best trial trained in all (its lineage included), as Hyperband counted them."""
    best = tuner.oracle.get_best_trials(1)[0]
    return int(best.hyperparameters.values.get("tuner/epochs", 1))


def retrain_best(
    base: TrainConfig,
    best: dict[str, Any],
    epochs: int,
    workdir: Path,
    on: str = "train",
    command: str | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Retrain the best configuration for the best trial's epochs; export to WORKDIR/export/.

    The run folder is WORKDIR/best (a normal `satx.train` run, resumable). With `on="train+val"`
    the model also learns from the validation split and trains the full epoch count (no early
    stopping); its validation numbers are then not held-out figures.
    """
    if on not in ("train", "train+val"):
        raise InputError(f"--export_best_on={on!r}: expected train or train+val")
    config = base.with_overrides(best)
    # the best trial's epochs, split as it ran them (it may have stopped inside phase 1)
    phase1 = min(config.n_epo_phase1, epochs)
    phase2 = epochs - phase1
    overrides: dict[str, Any] = {
        "workdir": str(workdir / "best"),
        "n_epo_phase1": phase1,
        "n_epo_phase2": phase2,
        "export": True,
        "export_dir": str(workdir / "export"),
    }
    if on == "train+val":
        overrides.update(train_split="train+val", patience=phase2 + 1)
    return train(config.with_overrides(overrides), command=command, overwrite=overwrite)


def write_hparams_config(logdir: Path, tuner: kt.Tuner) -> None:
    """The HParams dashboard's experiment: every hyperparameter and the objective per trial run."""
    from tensorboard.plugins.hparams import api as hparams_api

    hparams = [_hparam(hp, hparams_api) for hp in tuner.oracle.get_space().space]
    name = tuner.oracle.objective.name
    metric = name.removeprefix("val_")
    metrics = [
        hparams_api.Metric(f"epoch_{metric}", group="validation", display_name=name),
        hparams_api.Metric(f"epoch_{metric}", group="train", display_name=metric),
        hparams_api.Metric("epoch_loss", group="validation", display_name="val_loss"),
    ]
    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
        hparams_api.hparams_config(hparams=hparams, metrics=metrics)
    writer.flush()


def _hparam(hp: Any, api: Any) -> Any:
    """A Keras Tuner hyperparameter as a TensorBoard HParam with its domain."""
    if isinstance(hp, kt.engine.hyperparameters.Choice):
        return api.HParam(hp.name, api.Discrete(list(hp.values)))
    if isinstance(hp, kt.engine.hyperparameters.Float):
        return api.HParam(hp.name, api.RealInterval(float(hp.min_value), float(hp.max_value)))
    if isinstance(hp, kt.engine.hyperparameters.Int):
        return api.HParam(hp.name, api.IntInterval(int(hp.min_value), int(hp.max_value)))
    return api.HParam(hp.name)


def _write_results(workdir: Path, rows: list[dict], best: dict) -> None:
    """leaderboard.json, leaderboard.csv and best_hparams.json, atomically."""
    write_json(workdir / "leaderboard.json", rows)
    out = io.StringIO()
    fields = ["rank", "trial", "backbone", "score", "epochs", "seconds", "best_step", "status"]
    hp_keys = sorted({k for r in rows for k in r["hyperparameters"]})
    writer = csv_out.writer(out)
    writer.writerow(fields + hp_keys)
    for r in rows:
        writer.writerow([r[f] for f in fields] + [r["hyperparameters"].get(k) for k in hp_keys])
    atomic_write_local(workdir / "leaderboard.csv", out.getvalue().encode())
    write_json(workdir / "best_hparams.json", best)


def leaderboard_table(rows: list[dict]) -> str:
    """The leaderboard as a plain-text table, best first."""
    knobs = searched_knobs()
    lines = [
        f"{'rank':>4} {'trial':>6} {'backbone':<16} {'score':>8} {'epochs':>6} {'time_s':>7}  "
        + " ".join(k.name for k in knobs)
    ]
    for r in rows:
        hp = r["hyperparameters"]
        values = " ".join(
            f"{hp.get(k.name):.2e}"
            if k.metadata["log"] and isinstance(hp.get(k.name), float)
            else str(hp.get(k.name))
            for k in knobs
        )
        score = f"{r['score']:.4f}" if r["score"] is not None else "-"
        lines.append(
            f"{r['rank']:>4} {r['trial']:>6} {str(r['backbone']):<16} {score:>8} "
            f"{str(r['epochs']):>6} {str(r['seconds']):>7}  {values}"
        )
    return "\n".join(lines)


def _record_run(
    config: TuneConfig,
    hypermodel: SatxHyperModel,
    strategy: tf.distribute.Strategy,
    role: str,
    command: str,
) -> None:
    base = config.train.model
    record = run_record(
        command,
        config,
        hypermodel.records.identity(),
        config.train.seed,
        backbones=hypermodel.names,
        weights={n: backbones.weights_record(n, base.weights) for n in hypermodel.names},
        role=role,
        strategy=type(strategy).__name__,
        replicas=strategy.num_replicas_in_sync,
    )
    write_json(Path(config.train.workdir) / "tune_run.json", record)


def _make_search(config: TuneConfig, role: str) -> tuple[SatxHyperModel, SatxTuner, Any]:
    base, workdir = config.train, Path(config.train.workdir)
    names = [backbones.get_spec(n).name for n in config.backbone_names]
    base = base.with_overrides({"backbone": names[0]})
    workdir.mkdir(parents=True, exist_ok=True)
    split_cpu(base.cpu_devices)
    set_precision(base.mixed_precision)
    # Only the process that owns the search may wipe it (a worker sharing the folder must not).
    overwrite = config.overwrite and not config.summary_only and role != "worker"
    if overwrite:
        shutil.rmtree(workdir / "logs", ignore_errors=True)  # trial ids restart at 0000
    strategy = make_strategy(base.strategy)
    hypermodel = SatxHyperModel(
        base, config.search_space, names, strategy=strategy, max_epochs=config.max_epochs
    )
    tuner = make_tuner(
        hypermodel,
        config.directory or str(workdir / "tuner"),
        config.project_name,
        max_epochs=config.max_epochs,
        factor=config.factor,
        hyperband_iterations=config.hyperband_iterations,
        seed=base.seed,
        overwrite=overwrite,
        objective=config.objective,
        max_trials=config.max_trials,
        time_budget_s=config.time_budget_s,
        recycle_rss_mb=config.recycle_rss_mb,
        distribution_strategy=strategy if strategy.num_replicas_in_sync > 1 else None,
    )
    return hypermodel, tuner, strategy


def tune(config: TuneConfig, command: str | None = None) -> TuneResult:
    """Run (or continue) the search, write its results, and optionally export the best model.

    A worker of a distributed search returns after its last trial with only its role (the
    chief reports).

    Raises:
        RecycleProcess: the process passed `recycle_rss_mb` after a trial; the search is saved,
            and calling `tune` again in a fresh process continues it (the CLI re-executes).
        InputError / RecordsError / BackboneError: unusable config, records or backbone.
    """
    if not config.train.data.records or not config.train.workdir:
        raise InputError("--records and --workdir are required")
    load_records(config.train.data.records)  # unusable records: one error, nothing set up
    command = command if command is not None else " ".join(sys.argv)
    role = distributed_role()
    # The chief (or a lone search) owns the workdir; workers share it through the chief.
    inputs = (("--records", config.train.data.records),)
    owner = output_lock(config.train.workdir, "tune", LAYOUT, inputs) if role != "worker" else None
    with owner or contextlib.nullcontext():
        return _tune(config, command, role)


def _tune(config: TuneConfig, command: str, role: str) -> TuneResult:
    hypermodel, tuner, strategy = _make_search(config, role)
    workdir = Path(config.train.workdir)
    if role != "worker":
        _record_run(config, hypermodel, strategy, role, command)
    if not config.summary_only:
        logs = workdir / "logs"
        if role != "worker":
            write_hparams_config(logs, tuner)
        board = tensorboard_callback(logs, hypermodel.base)  # a subfolder per trial
        tuner.search(callbacks=[board], verbose=2)
    if role == "worker":
        return TuneResult(role, tuner_id())
    return _report(config, tuner, hypermodel, command, role)


def _report(
    config: TuneConfig, tuner: SatxTuner, hypermodel: SatxHyperModel, command: str, role: str
) -> TuneResult:
    workdir = Path(config.train.workdir)
    rows = leaderboard(tuner)
    progress = progress_line(tuner.oracle)
    if not rows:
        return TuneResult(role, tuner_id(), progress=progress)
    best = best_hparams(tuner, hypermodel)
    _write_results(workdir, rows, best)
    files = SearchFiles(
        best_hparams=str(workdir / "best_hparams.json"),
        leaderboard=str(workdir / "leaderboard.csv"),
        logs=str(workdir / "logs"),
    )
    export = None
    if config.export_best and not config.summary_only:
        export = retrain_best(
            hypermodel.base,
            best,
            _best_epochs(tuner),
            workdir,
            on=config.export_best_on,
            command=command,
            overwrite=config.overwrite,
        )
    return TuneResult(role, tuner_id(), tuple(rows), best, progress, files, export)
