"""Keras Tuner Hyperband with a trial/time budget and a progress line after every trial.

Keras Tuner's Hyperband has no trial or time budget; `BudgetedHyperbandOracle` adds both without
changing the schedule, and keeps the time spent in its saved state so a resumed search counts it.
`SatxTuner` is `keras_tuner.Hyperband` over that oracle. In chief/worker mode (the `KERASTUNER_*`
environment variables) the oracle lives in the chief, so the budget holds for the whole search.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import keras_tuner as kt

from satx.io.progress import format_duration

log = logging.getLogger(__name__)


class BudgetedHyperbandOracle(kt.oracles.HyperbandOracle):
    """Hyperband that also stops starting trials after `max_trials` or `time_budget_s`.

    The budget is checked before each new trial (running trials finish). Elapsed time is kept in
    the oracle's saved state, so a resumed search counts the time already spent. Trial ids keep
    Keras Tuner's padding whatever the budget (the base oracle's `max_trials` stays unset).
    """

    def __init__(self, *args: Any, max_trials: int = 0, time_budget_s: float = 0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.trial_budget, self.time_budget_s = max_trials, time_budget_s
        self.elapsed_before, self.session_start = 0.0, time.monotonic()

    def elapsed_s(self) -> float:
        """Search time so far, across resumed sessions."""
        return self.elapsed_before + time.monotonic() - self.session_start

    def budget_left(self) -> bool:
        """Whether another trial may start."""
        if self.trial_budget and len(self.trials) >= self.trial_budget:
            return False
        return not (self.time_budget_s and self.elapsed_s() >= self.time_budget_s)

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """Hyperband's next trial, unless the budget is spent."""
        if not self.budget_left():
            log.info("search budget reached: no new trials")
            return {"status": "STOPPED"}
        return super().populate_space(trial_id)

    def planned(self) -> tuple[int, int]:
        """(trials, epochs) of the whole Hyperband schedule, before any budget."""
        trials = epochs = 0
        for bracket in range(self._get_num_brackets()):
            for rnd in range(self._get_num_rounds(bracket)):
                size = self._get_size(bracket, rnd)
                first = self._get_epochs(bracket, rnd - 1) if rnd else 0
                trials += size
                epochs += size * (self._get_epochs(bracket, rnd) - first)
        return trials * self.hyperband_iterations, epochs * self.hyperband_iterations

    def get_best_trials(self, num_trials: int = 1) -> list[Any]:
        """Completed trials best first; equal scores go to the lower trial id.

        Keras Tuner sorts stably by score alone, so ties keep the order of its trial dict,
        which differs between a live search and one reloaded from disk: the "best" trial, and
        so the retrained export, could change on a re-run.
        """
        sign = -1.0 if self.objective.direction == "max" else 1.0
        completed = kt.engine.trial.TrialStatus.COMPLETED
        done = [t for t in self.trials.values() if t.status == completed]
        done.sort(key=lambda t: (t.score is None, sign * (t.score or 0.0), t.trial_id))
        rest = [t for t in self.trials.values() if t.status != completed]
        return (done + rest)[:num_trials]

    def get_state(self) -> dict[str, Any]:
        """Hyperband's state plus the search time so far."""
        return {**super().get_state(), "satx_elapsed_s": self.elapsed_s()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore; the budget itself comes from this session's flags."""
        super().set_state(state)
        self.elapsed_before = float(state.get("satx_elapsed_s", 0.0))
        self.session_start = time.monotonic()


class RecycleProcess(Exception):
    """Raised between trials when resident memory passed the limit: continue in a new process.

    Keras 3 on TensorFlow does not free everything of a finished `fit` even after
    `clear_session()` (keras-team/keras#17458, #20552; docs/benchmarks.md measures what a trial
    keeps). The search state is saved at every trial end, so a fresh process continues
    exactly where this one stopped.
    """


class SatxTuner(kt.Hyperband):
    """Keras Tuner Hyperband over `BudgetedHyperbandOracle`, printing progress after each trial.

    With `recycle_rss_mb`, a trial end that finds the process above that many MB raises
    `RecycleProcess` once the trial is recorded.
    """

    def __init__(
        self,
        hypermodel: kt.HyperModel,
        objective: kt.Objective,
        max_epochs: int = 6,
        factor: int = 3,
        hyperband_iterations: int = 1,
        seed: int = 42,
        max_trials: int = 0,
        time_budget_s: float = 0,
        recycle_rss_mb: float = 0,
        **kwargs: Any,
    ):
        self.recycle_rss_mb = recycle_rss_mb
        oracle = BudgetedHyperbandOracle(
            objective,
            max_epochs=max_epochs,
            factor=factor,
            hyperband_iterations=hyperband_iterations,
            seed=seed,
            max_trials=max_trials,
            time_budget_s=time_budget_s,
        )
        kt.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)
        self.memory_mb: list[float] = []  # resident memory after each trial of this session

    def on_trial_end(self, trial: kt.engine.trial.Trial) -> None:
        """Record the trial, then print a progress line."""
        super().on_trial_end(trial)
        self.memory_mb.append(_rss_mb())
        if distributed_role() == "worker":  # the chief holds the search state
            print(f"trial {trial.trial_id} finished on {tuner_id()}", flush=True)
        else:
            print(progress_line(self.oracle), flush=True)
        if self.recycle_rss_mb and self.memory_mb[-1] > self.recycle_rss_mb:
            raise RecycleProcess(f"{self.memory_mb[-1]:.0f}")


def progress_line(oracle: BudgetedHyperbandOracle) -> str:
    """Trials done/remaining, best score so far, elapsed and ETA (by epochs still to train)."""
    finished = [t for t in oracle.trials.values() if t.status != "RUNNING"]
    done_epochs = sum(_trial_epochs(t) for t in finished)
    plan_trials, plan_epochs = oracle.planned()
    left_trials = max(0, plan_trials - len(finished))
    if oracle.trial_budget:
        left_trials = min(left_trials, max(0, oracle.trial_budget - len(finished)))
    left_epochs = min(max(0, plan_epochs - done_epochs), left_trials * plan_epochs / plan_trials)
    elapsed = oracle.elapsed_s()
    eta = elapsed / done_epochs * left_epochs if done_epochs else float("nan")
    if oracle.time_budget_s:
        eta = min(eta, max(0.0, oracle.time_budget_s - elapsed))
    best = oracle.get_best_trials(1)
    best_text = f"{best[0].score:.4f} (trial {best[0].trial_id})" if best else "-"
    return (
        f"search: {len(finished)} trials done, ~{left_trials} to go; "
        f"best {oracle.objective.name} {best_text}; "
        f"elapsed {format_duration(elapsed)}, ETA {format_duration(eta)}; RSS {_rss_mb():.0f} MB"
    )


def _trial_epochs(trial: kt.engine.trial.Trial) -> int:
    values = trial.hyperparameters.values
    return int(values.get("tuner/epochs", 0)) - int(values.get("tuner/initial_epoch", 0))


def distributed_role() -> str:
    """`chief`, `worker` (Keras Tuner's `KERASTUNER_*` variables are set) or `single`."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "single"
    return "chief" if "chief" in os.environ.get("KERASTUNER_TUNER_ID", "") else "worker"


def tuner_id() -> str:
    """This process's Keras Tuner id."""
    return os.environ.get("KERASTUNER_TUNER_ID", "tuner0")


def _rss_mb() -> float:
    """This process's resident memory now, in MB (Linux; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
