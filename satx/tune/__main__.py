"""`python -m satx.tune --records=DIR --workdir=RUN --backbone=mobilenetv2|xception|...|all`.

Flags -> `TuneConfig` -> `satx.tune.search.tune`. Takes every training flag
(satx/train/cli.py) plus the search's own. Re-running the same command continues an
interrupted search; `--overwrite` starts over; `--summary` only reports. When the process grows
past `--recycle_rss_mb` after a trial, it replaces itself with the same command to continue
(Keras keeps memory of finished trials).
"""

from __future__ import annotations

import os
import sys

from satx.cli import command_line, entry_point, load_tensorflow
from satx.cli.flags import FLAGS, config_from_flags, define, define_flags
from satx.config import SearchSpace, TuneConfig, parse_duration
from satx.train.cli import define_recipe_flags, load_json, train_config_from_flags

define_flags(TuneConfig)
define_recipe_flags()
_SPACE = define("string", "search_space", "JSON file overriding the search space.", None)
_TIME_BUDGET = define(
    "string",
    "time_budget",
    "Start no new trial after this long, e.g. 90s, 30m, 2h (resumes count).",
    "",
)
_RECYCLE = define(
    "integer",
    "recycle_rss_mb",
    "After a trial, if this process holds more than this many MB, restart it to continue the "
    "search (Keras keeps memory of finished trials). -1: half the RAM; 0: never.",
    -1,
)


def _recycle_limit_mb() -> float:
    if _RECYCLE.value >= 0:
        return float(_RECYCLE.value)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2e6


def _tune_config_from_flags() -> TuneConfig:
    """The search's config: the training flags as the base, plus the tuner's own."""
    from satx.tune.search import backbone_names

    names = backbone_names(FLAGS["backbone"].value)
    space = SearchSpace()
    if _SPACE.value:
        space = SearchSpace.from_dict(load_json(_SPACE.value, "search_space"))
    return config_from_flags(
        TuneConfig,
        train=train_config_from_flags(skip=("backbone",)),
        backbones=tuple(names),
        search_space=space,
        time_budget_s=parse_duration(_TIME_BUDGET.value),
        recycle_rss_mb=_recycle_limit_mb(),
    )


def _restart(held: Exception) -> None:
    """Replace this process with the same command (minus --overwrite) to continue the search."""
    print(
        f"this process holds {held} MB (over --recycle_rss_mb): restarting it to continue the "
        "search with the memory of finished trials released",
        flush=True,
    )
    sys.stderr.flush()
    args = [a for a in sys.argv[1:] if a.split("=")[0] not in ("--overwrite", "-overwrite")]
    os.execv(sys.executable, [sys.executable, "-m", "satx.tune", *args])


def main(argv: list[str]) -> int:
    """Search (or summarise), then print the leaderboard and where the results are."""
    load_tensorflow()
    from satx.artifact.conversion import export_after_training
    from satx.artifact.report import format_table
    from satx.tune.hyperband import RecycleProcess
    from satx.tune.search import leaderboard_table, tune

    del argv
    config = _tune_config_from_flags()
    command = command_line("satx.tune")
    try:
        result = tune(config, command)
    except RecycleProcess as held:
        _restart(held)
    if result.role == "worker":
        print(f"worker {result.tuner_id}: no more trials; the chief writes the results")
        return 0
    if not result.rows or result.files is None:
        print("no finished trials yet")
        return 1
    workdir = config.train.workdir
    print(leaderboard_table(list(result.rows)))
    print(result.progress)
    files = result.files
    print(f"best hyperparameters: {files.best_hparams}")
    print(f"leaderboard: {files.leaderboard} (and .json)")
    print(f"TensorBoard (per-trial runs, HParams tab): tensorboard --logdir {files.logs}")
    if result.export:
        best = result.export
        print(f"best configuration retrained: {workdir}/best ({best.monitor} {best.best})")
        print(f"exported model: {best.export}")
        converted = export_after_training(best.export, config.train, command)
        if converted:
            print(format_table(converted))
    else:
        print(
            f"train with them: python -m satx.train --records={config.train.data.records} "
            f"--workdir={workdir}/best --hparams={files.best_hparams}"
        )
    return 0


entry = entry_point(main)


if __name__ == "__main__":
    entry()
