"""Training runs and searches killed with SIGKILL resume where they were, as if never stopped."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
import tensorflow as tf

from tests.support.helpers import TINY, cli
from tests.support.train import history_rows, train_cmd, trial_files, tune_args


@pytest.mark.slow
def test_killed_run_resumes_at_the_epoch_it_reached(sample_records, tmp_path):
    args = train_cmd(
        sample_records, tmp_path / "run", "--n_epo_phase1=1", "--n_epo_phase2=3", "--export=false"
    )
    killed = cli(*args, env={"SATX_FAILPOINTS": "train.epoch_end:2"})  # after epoch 1 (phase 2)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert [int(r["epoch"]) for r in history_rows(tmp_path / "run")] == [0, 1]
    resumed = cli(*args, check=True)
    assert "Epoch 1/" not in resumed.stdout + resumed.stderr  # phase 1 was not redone
    assert [int(r["epoch"]) for r in history_rows(tmp_path / "run")] == [0, 1, 2, 3]
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["done"] and state["epochs_run"] == [0, 1, 2, 3]


@pytest.mark.slow
def test_a_resumed_run_stops_and_lowers_the_rate_as_an_uninterrupted_one(sample_records, tmp_path):
    """EarlyStopping's and ReduceLROnPlateau's patience and best values survive kill -9.

    With min_delta=1 nothing after the first epoch counts as better, so an uninterrupted run
    halves the rate after every epoch from the second on and stops after epoch 3 (patience 3).
    """

    stopping = tmp_path / "stopping.json"
    stopping.write_text(
        json.dumps({"patience": 3, "lr_patience": 1, "lr_factor": 0.5, "min_delta": 1.0})
    )

    def args(run: str) -> tuple[str, ...]:
        return train_cmd(
            sample_records,
            tmp_path / run,
            "--backbone=tiny",
            "--n_epo_phase1=0",
            "--n_epo_phase2=8",
            "--lr_phase2=0.001",
            "--lr_schedule=plateau",
            f"--hparams={stopping}",
            "--export=false",
        )

    cli(*args("whole"), env=TINY, check=True)
    killed = cli(*args("killed"), env={**TINY, "SATX_FAILPOINTS": "train.epoch_end:2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    cli(*args("killed"), env=TINY, check=True)

    def schedule(run: str) -> list[tuple[int, float]]:
        rows = history_rows(tmp_path / run)
        return [(int(r["epoch"]), round(float(r["learning_rate"]), 9)) for r in rows]

    assert schedule("whole") == [(0, 1e-3), (1, 1e-3), (2, 5e-4), (3, 2.5e-4)]
    assert schedule("killed") == schedule("whole")


@pytest.mark.slow
def test_killed_search_resumes_without_lost_or_repeated_trials_then_exports_best(
    sample_records,
    tmp_path,
):
    import json
    import signal

    work = tmp_path / "tune"
    # Epoch ends: trials 0000, 0001 and 0002 train one epoch each, then 0003 (two epochs) dies
    # after its first epoch, before Keras Tuner records it.
    failpoint = {**TINY, "SATX_FAILPOINTS": "tune.epoch_end:4"}
    killed = cli(*tune_args(sample_records, work), env=failpoint)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    before = trial_files(work / "tuner")
    assert sorted(before) == ["trial_0000", "trial_0001", "trial_0002", "trial_0003"]
    assert before["trial_0003"]["status"] == "RUNNING"
    assert all(before[t]["status"] == "COMPLETED" for t in ("trial_0000", "trial_0001"))

    # --recycle_rss_mb=1: the process also replaces itself after every trial it finishes (the
    # guard against Keras' per-trial memory growth), continuing from the saved state each time.
    args = tune_args(sample_records, work, "--export_best", "--recycle_rss_mb=1")
    resumed = cli(*args, env=TINY, check=True)
    assert "Reloading Tuner" in resumed.stdout
    assert resumed.stdout.count("restarting it to continue the search") == 2  # after 0003, 0004
    after = trial_files(work / "tuner")
    assert sorted(after) == [f"trial_000{i}" for i in range(5)]  # the plan, each trial once
    assert all(t["status"] == "COMPLETED" for t in after.values())
    for done in ("trial_0000", "trial_0001", "trial_0002"):  # finished work kept as it was
        assert after[done]["score"] == before[done]["score"]
        assert after[done]["hyperparameters"] == before[done]["hyperparameters"]
    assert after["trial_0003"]["hyperparameters"] == before["trial_0003"]["hyperparameters"]
    assert "search: 5 trials done, ~0 to go" in resumed.stdout
    board = json.loads((work / "leaderboard.json").read_text())
    assert sorted(r["trial"] for r in board) == [f"000{i}" for i in range(5)]
    assert all(r["seconds"] > 0 for r in board)
    # one TensorBoard run per trial, plus the HParams experiment at the top
    assert sorted(p.name for p in (work / "logs").iterdir() if p.is_dir()) == sorted(
        r["trial"] for r in board
    )
    assert list((work / "logs").glob("events.out.tfevents.*"))

    exports = sorted((work / "export").iterdir())
    assert [p.name for p in exports] == ["1"], "one exported version"
    best_run = json.loads((work / "best" / "config.json").read_text())
    best = json.loads((work / "best_hparams.json").read_text())
    assert best_run["model"]["dense_units"] == best["dense_units"]
    assert best_run["n_epo_phase1"] + best_run["n_epo_phase2"] == board[0]["epochs"]
    served = tf.saved_model.load(str(exports[0]))
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    probs = served.signatures["serving_default"](images=tf.constant(images))
    scores = probs["probabilities"].numpy()
    assert scores.shape == (3, 2) and np.allclose(scores.sum(axis=1), 1.0, atol=1e-4)
