"""`python -m satx.tune --records=DIR --workdir=RUN --backbone=mobilenetv2|xception|all`.

Runs Keras Tuner Hyperband over the training core; writes WORKDIR/leaderboard.csv and .json,
WORKDIR/best_hparams.json (accepted by `python -m satx.train --hparams=...`), TensorBoard runs per
trial with the HParams dashboard under WORKDIR/logs, and with `--export_best` retrains the best
configuration (WORKDIR/best) and exports it to WORKDIR/export/<version>/. Re-running the same
command continues an interrupted search; `--overwrite` starts over; `--summary` only reports.
With the `KERASTUNER_*` environment variables set it runs as Keras Tuner's chief or a worker.
"""

from __future__ import annotations

import csv
import io
import json
import shlex
import shutil
import sys
from pathlib import Path

from absl import flags

from satx import flags as shared
from satx.cli import run
from satx.cli import train as train_cli

_MAX_EPOCHS = flags.DEFINE_integer("max_epochs", 6, "Hyperband: most epochs any trial trains.")
_FACTOR = flags.DEFINE_integer("factor", 3, "Hyperband: reduction factor between brackets.")
_ITERATIONS = flags.DEFINE_integer("hyperband_iterations", 1, "Hyperband: full iterations.")
_DIRECTORY = flags.DEFINE_string("directory", None, "Tuner state folder (default WORKDIR/tuner).")
_PROJECT = flags.DEFINE_string("project_name", "satx", "Tuner project name.")
_SPACE = flags.DEFINE_string("search_space", None, "JSON file overriding the search space.")
_OBJECTIVE = flags.DEFINE_string("objective", "auto", "auto: val_auc (binary) / val_accuracy.")
_SUMMARY = flags.DEFINE_boolean("summary", False, "Only print and write the leaderboard.")
_MAX_TRIALS = flags.DEFINE_integer("max_trials", 0, "Start at most this many trials (0: all).")
_TIME_BUDGET = flags.DEFINE_string(
    "time_budget", "", "Start no new trial after this long, e.g. 90s, 30m, 2h (resumes count)."
)
_RECYCLE = flags.DEFINE_integer(
    "recycle_rss_mb",
    -1,
    "After a trial, if this process holds more than this many MB, restart it to continue the "
    "search (Keras keeps memory of finished trials). -1: half the RAM; 0: never.",
)
_EXPORT_BEST = flags.DEFINE_boolean(
    "export_best", False, "Retrain the best configuration and export it to WORKDIR/export/."
)
_EXPORT_BEST_ON = flags.DEFINE_enum(
    "export_best_on", "train", ["train", "train+val"], "Splits the best configuration retrains on."
)


def parse_duration(text: str) -> float:
    """`90s`, `30m`, `2h` or plain seconds -> seconds (0 for empty)."""
    from satx.errors import InputError

    units = {"s": 1, "m": 60, "h": 3600}
    text = text.strip().lower()
    if not text:
        return 0.0
    try:
        if text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise InputError(f"--time_budget={text!r}: expected e.g. 90s, 30m or 2h") from None


def _table(rows: list[dict]) -> str:
    keys = [
        "dense_units",
        "dense_activation",
        "dropout",
        "optimizer",
        "lr_phase1",
        "lr_phase2",
        "n_epo_phase1",
    ]
    lines = [
        f"{'rank':>4} {'trial':>6} {'backbone':<12} {'score':>8} {'epochs':>6} {'time_s':>7}  "
        + " ".join(keys)
    ]
    for r in rows:
        hp = r["hyperparameters"]
        values = " ".join(
            f"{hp.get(k):.2e}"
            if isinstance(hp.get(k), float) and k.startswith("lr")
            else str(hp.get(k))
            for k in keys
        )
        score = f"{r['score']:.4f}" if r["score"] is not None else "-"
        lines.append(
            f"{r['rank']:>4} {r['trial']:>6} {str(r['backbone']):<12} {score:>8} "
            f"{str(r['epochs']):>6} {str(r['seconds']):>7}  {values}"
        )
    return "\n".join(lines)


def _write_results(workdir: Path, rows: list[dict], best: dict) -> None:
    from satx.run_record import write_json
    from satx.storage import atomic_write_local

    write_json(workdir / "leaderboard.json", rows)
    out = io.StringIO()
    fields = ["rank", "trial", "backbone", "score", "epochs", "seconds", "best_step", "status"]
    hp_keys = sorted({k for r in rows for k in r["hyperparameters"]})
    writer = csv.writer(out)
    writer.writerow(fields + hp_keys)
    for r in rows:
        writer.writerow([r[f] for f in fields] + [r["hyperparameters"].get(k) for k in hp_keys])
    atomic_write_local(workdir / "leaderboard.csv", out.getvalue().encode())
    write_json(workdir / "best_hparams.json", best)


def main(argv: list[str]) -> int:
    """Search (or summarise), then write and print the leaderboard and the best hyperparameters."""
    from satx import tune
    from satx.distribute import make_strategy, set_precision, split_cpu
    from satx.hyperband import RecycleProcess, distributed_role, tuner_id
    from satx.train import tensorboard_callback

    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    names = tune.backbone_names(flags.FLAGS["backbone"].value)
    base = train_cli.resolve_config(skip=("backbone",)).with_overrides({"backbone": names[0]})
    if not base.records or not base.workdir:
        print("error: --records and --workdir are required", file=sys.stderr)
        return 2
    workdir = Path(base.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    split_cpu(base.cpu_devices)
    set_precision(base.mixed_precision)
    space = tune.SearchSpace()
    if _SPACE.value:
        space = tune.SearchSpace.from_dict(json.loads(Path(_SPACE.value).read_text()))
    role = distributed_role()
    # Only the process that owns the search may wipe it (a worker sharing the folder must not).
    overwrite = shared.OVERWRITE.value and not _SUMMARY.value and role != "worker"
    if overwrite:
        shutil.rmtree(workdir / "logs", ignore_errors=True)  # trial ids restart at 0000
    strategy = make_strategy(base.strategy)
    replicas = strategy.num_replicas_in_sync
    hypermodel = tune.SatxHyperModel(base, space, names, strategy=strategy)
    tuner = tune.make_tuner(
        hypermodel,
        _DIRECTORY.value or str(workdir / "tuner"),
        _PROJECT.value,
        max_epochs=_MAX_EPOCHS.value,
        factor=_FACTOR.value,
        hyperband_iterations=_ITERATIONS.value,
        seed=base.seed,
        overwrite=overwrite,
        objective=_OBJECTIVE.value,
        max_trials=_MAX_TRIALS.value,
        time_budget_s=parse_duration(_TIME_BUDGET.value),
        recycle_rss_mb=_recycle_limit_mb(),
        distribution_strategy=strategy if replicas > 1 else None,
    )
    command = shlex.join(["python", "-m", "satx.tune", *sys.argv[1:]])
    if role != "worker":
        _record_run(workdir, command, base, names, space, role, strategy)
    if not _SUMMARY.value:
        logs = workdir / "logs"
        if role != "worker":
            tune.write_hparams_config(logs, tuner)
        board = tensorboard_callback(logs, base)  # Keras Tuner gives each trial a subfolder
        try:
            tuner.search(callbacks=[board], verbose=2)
        except RecycleProcess as held:
            _restart(held)
    if role == "worker":
        print(f"worker {tuner_id()}: no more trials; the chief writes the results")
        return 0
    return _report(tuner, hypermodel, workdir, command)


def _recycle_limit_mb() -> float:
    import os

    if _RECYCLE.value >= 0:
        return float(_RECYCLE.value)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2e6


def _restart(held: Exception) -> None:
    """Replace this process with the same command (minus --overwrite) to continue the search."""
    import os

    print(
        f"this process holds {held} MB (over --recycle_rss_mb): restarting it to continue the "
        "search with the memory of finished trials released",
        flush=True,
    )
    sys.stderr.flush()
    args = [a for a in sys.argv[1:] if a.split("=")[0] not in ("--overwrite", "-overwrite")]
    os.execv(sys.executable, [sys.executable, "-m", "satx.tune", *args])


def _record_run(workdir, command, base, names, space, role, strategy) -> None:  # noqa: ANN001
    from satx import data
    from satx.run_record import versions, write_json

    info = data.load_records(base.records, check_shards=False)
    write_json(
        workdir / "tune_run.json",
        {
            "command": command,
            "records_manifest_sha256": info.manifest["inputs"]["manifest_sha256"],
            "base_config": base.to_dict(),
            "backbones": names,
            "search_space": json.loads(json.dumps(space.__dict__, default=list)),
            "max_trials": _MAX_TRIALS.value,
            "time_budget_s": parse_duration(_TIME_BUDGET.value),
            "role": role,
            "strategy": type(strategy).__name__,
            "replicas": strategy.num_replicas_in_sync,
            "versions": versions(),
            "seed": base.seed,
        },
    )


def _report(tuner, hypermodel, workdir: Path, command: str) -> int:  # noqa: ANN001
    from satx import tune
    from satx.hyperband import progress_line

    rows = tune.leaderboard(tuner)
    if not rows:
        print("no finished trials yet")
        return 1
    best = tune.best_hparams(tuner, hypermodel)
    _write_results(workdir, rows, best)
    print(_table(rows))
    print(progress_line(tuner.oracle))
    records = hypermodel.base.records
    print(f"best hyperparameters: {workdir / 'best_hparams.json'}")
    print(f"leaderboard: {workdir / 'leaderboard.csv'} (and .json)")
    print(f"TensorBoard (per-trial runs, HParams tab): tensorboard --logdir {workdir / 'logs'}")
    if _EXPORT_BEST.value and not _SUMMARY.value:
        summary = tune.retrain_best(
            hypermodel,
            best,
            tune.best_epochs(tuner),
            workdir,
            on=_EXPORT_BEST_ON.value,
            command=command,
            overwrite=shared.OVERWRITE.value,
        )
        print(
            f"best configuration retrained: {workdir / 'best'} ({summary['monitor']} "
            f"{summary['best']})"
        )
        print(f"exported model: {summary['export']}")
    else:
        print(
            f"train with them: python -m satx.train --records={records} "
            f"--workdir={workdir / 'best'} --hparams={workdir / 'best_hparams.json'}"
        )
    return 0


def entry() -> None:
    """Console-script entry point."""
    run(main, shared.SEED, shared.OVERWRITE, shared.IMAGE_SIZE)


if __name__ == "__main__":
    entry()
