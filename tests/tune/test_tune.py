"""Keras Tuner over the training core: search space, phases across promotions, a tiny search."""

import keras_tuner as kt
import pytest

from satx.config import SearchSpace, TuneConfig
from satx.models import backbones
from satx.models.classifier import backbone_layers
from satx.train.phases import compile_phase
from satx.tune import search as tune
from satx.tune.hypermodel import SatxHyperModel, define_hparams
from tests.support.helpers import TINY, cli, tiny_train_config
from tests.support.train import tune_args


def test_search_space_is_the_predecessors_plus_the_recipe_knobs():
    hp = kt.HyperParameters()
    define_hparams(hp, SearchSpace(), ["mobilenetv2", "xception"])
    space = {p.name: p for p in hp.space}
    assert space["backbone"].values == ["mobilenetv2", "xception"]
    assert space["dense_units"].values == [128, 256, 512]
    assert space["dense_activation"].values == ["relu", "elu"]
    assert space["dropout"].values == [0.0, 0.1, 0.25, 0.5]
    assert space["optimizer"].values == ["adam", "rmsprop", "adamw"]
    decay = space["weight_decay"]  # only searched when adamw is chosen
    assert decay.conditions[0].values == ["adamw"] and decay.sampling == "log"
    assert space["lr_schedule"].values == ["plateau", "cosine"]
    assert space["label_smoothing"].values == [0.0, 0.1]
    assert (space["lr_phase1"].min_value, space["lr_phase1"].max_value) == (1e-4, 1e-3)
    assert (space["lr_phase2"].min_value, space["lr_phase2"].max_value) == (1e-5, 1e-4)
    assert space["lr_phase1"].sampling == "log" and space["lr_phase2"].sampling == "log"
    assert space["n_epo_phase1"].values == [1, 2]
    for name in ("mobilenetv2", "xception"):  # per-backbone cut-offs, only when chosen
        cut = space[f"freeze_cutoff_{name}"]
        assert cut.conditions[0].values == [name]
        assert set(cut.values) == set(backbones.get_spec(name).cutoffs)


def test_a_trial_gets_its_knobs_and_cosine_spans_the_search(sample_records, tmp_path):
    base = tiny_train_config(sample_records, tmp_path)
    hm = SatxHyperModel(base, SearchSpace(n_epo_phase1=(1,)), ["tiny"], max_epochs=7)
    hp = kt.HyperParameters()
    hp.Fixed("optimizer", "adamw")
    hp.Fixed("lr_schedule", "cosine")
    hp.Fixed("label_smoothing", 0.1)
    config = hm.config_for(hp)
    assert (config.optimizer, config.lr_schedule, config.label_smoothing) == (
        "adamw",
        "cosine",
        0.1,
    )
    assert 1e-3 <= config.weight_decay <= 1e-1
    assert config.n_epo_phase2 == 6  # the cosine runs over the search's epochs after phase 1
    plain = kt.HyperParameters()
    plain.Fixed("optimizer", "adam")
    plain.Fixed("lr_schedule", "plateau")
    config = hm.config_for(plain)
    assert config.weight_decay == 0.0 and config.n_epo_phase2 == base.n_epo_phase2


def _hypermodel(records, tmp_path, weights="none", **kw):
    base = tiny_train_config(records, tmp_path, weights=weights, steps_per_epoch=2, **kw)
    return SatxHyperModel(base, SearchSpace(n_epo_phase1=(2,)), ["tiny"])


def _backbone_trainable(model):
    return any(layer.trainable_weights for layer in backbone_layers(model))


def test_promotion_keeps_the_two_phase_schedule(sample_records, tmp_path):
    weights = tmp_path / "tiny.weights.h5"  # "pretrained": phase 1 freezes the backbone
    backbones.create_backbone("tiny", 32, "none").save_weights(weights)
    hm = _hypermodel(sample_records, tmp_path, weights=str(weights))
    hp = kt.HyperParameters()
    hm.config_for(hp)  # declares the space with default values
    model = hm.build(hp)
    assert not _backbone_trainable(model)  # phase 1 from the start
    hm.fit(hp, model, epochs=1, initial_epoch=0)
    assert hm.phase_log == [{"phase": 1, "first": 0, "end": 1}]
    hm.fit(hp, model, epochs=4, initial_epoch=1)  # crosses into phase 2 at epoch 2
    assert hm.phase_log[1:] == [
        {"phase": 1, "first": 1, "end": 2},
        {"phase": 2, "first": 2, "end": 4},
    ]
    assert _backbone_trainable(model)
    promoted = hm.build(hp)  # Hyperband: rebuilt, weights reloaded, continues at epoch 4
    promoted.set_weights(model.get_weights())
    hm.fit(hp, promoted, epochs=6, initial_epoch=4)
    assert hm.phase_log[3:] == [{"phase": 2, "first": 4, "end": 6}]  # no phase 1 again


@pytest.mark.slow
def test_tiny_hyperband_search_writes_leaderboard_and_best_hparams(sample_records, tmp_path):
    hm = _hypermodel(sample_records, tmp_path)
    import keras

    tuner = tune.make_tuner(hm, str(tmp_path / "tuner"), "t", max_epochs=3, factor=3, seed=1)
    logs = tmp_path / "logs"
    tune.write_hparams_config(logs, tuner)
    tuner.search(callbacks=[keras.callbacks.TensorBoard(str(logs))], verbose=0)
    rows = tune.leaderboard(tuner)
    assert len(rows) == 6 and all(r["backbone"] == "tiny" for r in rows)
    assert all(r["status"] == "COMPLETED" for r in rows)  # trials crossing phase 1 -> 2 too
    assert {e["phase"] for e in hm.phase_log if e["first"] == 0 and e["end"] == 2} == {1}
    assert any(e["phase"] == 2 and e["first"] == 2 for e in hm.phase_log)
    for row in rows:  # a TensorBoard run per trial, with its hyperparameters for the HParams tab
        run = logs / row["trial"] / "execution0"
        assert list(run.glob("events.out.tfevents.*")) and (run / "validation").is_dir()
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True) and all(s is not None for s in scores)
    promoted = [e for e in hm.phase_log if e["first"] > 0]
    assert promoted and all(e["phase"] == 2 or e["first"] < 2 for e in hm.phase_log)
    best = tune.best_hparams(tuner, hm)
    # from scratch every layer trains in both phases: no cut-off is searched
    assert best["backbone"] == "tiny" and "freeze_cutoff" not in best
    assert not any(
        name.startswith("freeze_cutoff") for name in tuner.get_best_hyperparameters()[0].values
    )
    config = hm.base.with_overrides(best)
    assert config.model.dense_units in (128, 256, 512) and 1e-4 <= config.lr_phase1 <= 1e-3


def test_trial_budget_stops_the_search_and_a_larger_budget_continues_it(
    sample_records,
    tmp_path,
):
    hm = _hypermodel(sample_records, tmp_path)
    kw = dict(max_epochs=2, factor=2, seed=3)
    tuner = tune.make_tuner(hm, str(tmp_path / "tuner"), "t", max_trials=2, **kw)
    assert tuner.oracle.planned() == (5, 7)  # sizes 2+1 and 2; epochs 2x1 + 1x1 + 2x2
    tuner.search(verbose=0)
    assert len(tune.leaderboard(tuner)) == 2
    again = tune.make_tuner(hm, str(tmp_path / "tuner"), "t", max_trials=3, **kw)
    again.search(verbose=0)
    assert sorted(r["trial"] for r in tune.leaderboard(again)) == ["0000", "0001", "0002"]
    spent = again.oracle.elapsed_s()
    timed = tune.make_tuner(hm, str(tmp_path / "tuner"), "t", time_budget_s=spent / 2, **kw)
    # time spent is restored from the saved state (as of the last trial's end)
    assert timed.oracle.elapsed_s() >= 0.9 * spent and not timed.oracle.budget_left()
    timed.search(verbose=0)  # the time budget is already spent: nothing new starts
    assert len(tune.leaderboard(timed)) == 3


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_chief_and_two_workers_on_loopback_share_one_search(sample_records, tmp_path):
    import json
    import os
    import subprocess
    import sys

    from tests.support.helpers import REPO

    work = tmp_path / "tune"
    port = str(_free_port())
    procs = {}
    for role in ("chief", "tuner0", "tuner1"):
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "2",
            **TINY,
            "KERASTUNER_TUNER_ID": role,
            "KERASTUNER_ORACLE_IP": "127.0.0.1",
            "KERASTUNER_ORACLE_PORT": port,
        }
        procs[role] = subprocess.Popen(
            [sys.executable, "-m", *tune_args(sample_records, work)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    out = {role: proc.communicate(timeout=400)[0] for role, proc in procs.items()}
    for role, proc in procs.items():
        assert proc.returncode == 0, f"{role}:\n{out[role][-3000:]}"
    ran = {w: out[w].count("finished on " + w) for w in ("tuner0", "tuner1")}
    assert sum(ran.values()) == 5 and all(ran.values()), ran  # both workers ran trials
    board = json.loads((work / "leaderboard.json").read_text())  # written by the chief
    assert sorted(r["trial"] for r in board) == [f"000{i}" for i in range(5)]
    assert json.loads((work / "tune_run.json").read_text())["role"] == "chief"


def test_from_scratch_both_phases_train_the_whole_network(sample_records, tmp_path):
    import keras

    hm = _hypermodel(sample_records, tmp_path)  # weights none
    hp = kt.HyperParameters()
    config = hm.config_for(hp)
    model = hm.build(hp)
    for phase in (1, 2):
        compile_phase(model, config, phase, 2)
        layers = backbone_layers(model)
        assert all(layer.trainable for layer in layers if layer.weights)
        norms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
        assert all(layer.trainable for layer in norms)
        lr = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        assert lr == pytest.approx(config.lr_phase1 if phase == 1 else config.lr_phase2)


def test_backbone_all_means_every_listed_backbone_each_with_its_own_cutoffs(
    sample_records, tmp_path
):
    names = tune.backbone_names("all")
    assert names == backbones.list_backbones(listed_only=True)
    assert "efficientnetv2b0" in names and "tiny" not in names
    space = SearchSpace(n_epo_phase1=(1,))
    # the cut-offs matter (and are searched) for pretrained backbones; a weights file stands in
    # for ImageNet's here, and nothing is built
    pretrained = tiny_train_config(sample_records, tmp_path, weights=str(tmp_path / "w.h5"))
    hm = SatxHyperModel(pretrained, space, names)
    for name in names:
        hp = kt.HyperParameters()
        hm.config_for(hp)  # declare with defaults, then pick this backbone
        hp.values["backbone"] = name
        hp.ensure_active_values()  # as Keras Tuner does: defaults for newly active choices
        config = hm.config_for(hp)
        assert config.model.backbone == name
        assert config.freeze_cutoff == hp.values[f"freeze_cutoff_{name}"]
        assert config.freeze_cutoff in backbones.get_spec(name).cutoffs
    hm = SatxHyperModel(tiny_train_config(sample_records, tmp_path, image_size=32), space, names)
    hp = kt.HyperParameters()
    hm.config_for(hp)
    hp.values["backbone"] = "efficientnetv2b0"
    hp.ensure_active_values()
    assert hm.build(hp).name == "satx_efficientnetv2b0"  # the tuner builds it (trained once in
    # tests/models/test_backbones.py)


@pytest.mark.slow
def test_the_driver_runs_from_python_without_flags_and_records_its_settings(
    sample_records, tmp_path
):
    import json

    config = TuneConfig(
        train=tiny_train_config(sample_records, tmp_path / "tune", steps_per_epoch=2, seed=7),
        search_space=SearchSpace(n_epo_phase1=(1,)),
        max_epochs=2,
        factor=2,
        max_trials=2,
    )
    result = tune.tune(config, command="pytest")
    assert result.role == "single" and len(result.rows) == 2
    run = json.loads((tmp_path / "tune" / "tune_run.json").read_text())
    assert TuneConfig.from_dict(run["config"]) == config  # the tuner's own settings included
    assert run["config"]["max_epochs"] == 2 and run["config"]["max_trials"] == 2
    assert run["seed"] == 7 and run["command"] == "pytest"
    best = json.loads((tmp_path / "tune" / "best_hparams.json").read_text())
    assert best == result.best_hparams and best["backbone"] == "tiny"
    assert "0000" in tune.leaderboard_table(result.rows)


def test_retrain_best_on_train_plus_val_exports(sample_records, tmp_path):
    import json

    from satx.records.manifest import load_records

    records = load_records(sample_records)
    info = records.manifest
    assert info.count("train+val") == info.count("train") + info.count("val")
    assert len(records.shard_paths("train+val")) == len(records.shard_paths("train")) + len(
        records.shard_paths("val")
    )
    assert info.class_counts("train+val") == [
        a + b for a, b in zip(info.class_counts("train"), info.class_counts("val"), strict=True)
    ]
    hm = _hypermodel(sample_records, tmp_path)
    hp = kt.HyperParameters()
    best = define_hparams(hp, hm.space, hm.names)
    summary = tune.retrain_best(hm.base, best, 3, tmp_path / "tune", on="train+val")
    config = json.loads((tmp_path / "tune" / "best" / "config.json").read_text())
    assert config["train_split"] == "train+val" and config["n_epo_phase2"] == 1  # 3 - 2 phase-1
    assert summary.epochs_run == (0, 1, 2)  # no early stopping
    assert summary.export == str(tmp_path / "tune" / "export" / "1")
    assert (tmp_path / "tune" / "export" / "1" / "saved_model.pb").exists()
    with pytest.raises(tune.InputError, match="export_best_on"):
        tune.retrain_best(hm.base, best, 3, tmp_path / "other", on="everything")


@pytest.mark.slow
def test_search_under_mirrored_strategy_over_two_logical_cpus(sample_records, tmp_path):
    import json

    space = tmp_path / "space.json"  # phase 1 = 1 epoch: every 2-epoch trial crosses phases
    space.write_text(json.dumps({"n_epo_phase1": [1]}))
    work = tmp_path / "tune"
    args = tune_args(
        sample_records, work, "--strategy=mirrored", "--cpu_devices=2", f"--search_space={space}"
    )
    cli(*args, env=TINY, check=True)
    run = json.loads((work / "tune_run.json").read_text())
    assert (run["strategy"], run["replicas"]) == ("MirroredStrategy", 2)
    board = json.loads((work / "leaderboard.json").read_text())
    assert len(board) == 5 and all(r["status"] == "COMPLETED" for r in board)
    assert any(r["epochs"] == 2 and r["hyperparameters"]["n_epo_phase1"] == 1 for r in board)


def test_best_trial_ties_go_to_the_lower_trial_id_whatever_the_order():
    """A reloaded search lists trials in another order; the best of tied scores must not change."""
    import keras_tuner as kt

    from satx.tune.hyperband import BudgetedHyperbandOracle

    oracle = BudgetedHyperbandOracle(objective=kt.Objective("val_auc", "max"), max_epochs=2)
    done = kt.engine.trial.TrialStatus.COMPLETED
    for trial_id, score in (("0004", 1.0), ("0002", 0.9), ("0000", 1.0), ("0003", None)):
        trial = kt.engine.trial.Trial(kt.HyperParameters(), trial_id=trial_id, status=done)
        trial.score = score
        oracle.trials[trial_id] = trial
    assert [t.trial_id for t in oracle.get_best_trials(4)] == ["0000", "0004", "0002", "0003"]
    oracle.trials = dict(reversed(list(oracle.trials.items())))
    assert oracle.get_best_trials(1)[0].trial_id == "0000"
