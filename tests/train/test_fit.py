"""Training end to end: run folder, checkpoints, resume after kill -9, mirrored, export."""

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from satx.artifact.calibration import Calibration
from satx.errors import OutputExistsError
from satx.records.manifest import load_records
from satx.train.fit import Workdir, train
from tests.support.helpers import NO_RANDOMNESS, REPO, cli, tiny_train_config
from tests.support.train import history_rows, train_cmd


def _tiny_config(records, workdir, **kw):
    return tiny_train_config(records, workdir, **kw)


def test_train_writes_a_complete_run_folder(sample_records, tmp_path):
    config = _tiny_config(sample_records, tmp_path / "run")
    summary = train(config, command="pytest")
    work = Workdir(tmp_path / "run")
    assert json.loads(work.config.read_text()) == config.to_dict()
    run = json.loads(work.run.read_text())
    assert run["command"] == "pytest" and run["seed"] == 42 and run["versions"]["keras"]
    assert run["records_manifest_sha256"] == load_records(sample_records).manifest_sha256
    assert len(run["records_listing_sha256"]) == 64 and run["monitor"] == "val_auc"
    assert run["global_batch_size"] == 8
    history = history_rows(work.root)
    assert [int(r["epoch"]) for r in history] == [0, 1, 2]
    assert {"val_auc", "learning_rate", "images_per_sec", "val_loss"} <= set(history[0])
    assert [float(r["learning_rate"]) for r in history] == pytest.approx([1e-2, 1e-3, 1e-3])
    assert summary.epochs_run == (0, 1, 2) and summary.export.endswith("export/1")
    assert (work.export / "1" / "saved_model.pb").exists()
    assert json.loads((work.export / "1" / "class_names.json").read_text()) == [
        "not_school",
        "school",
    ]
    events = list(work.logs.rglob("events.out.tfevents.*"))
    assert any("images" in str(p) for p in events) and any("train" in str(p) for p in events)


def test_best_checkpoint_holds_the_best_epoch(sample_records, tmp_path):
    train(_tiny_config(sample_records, tmp_path / "run"), command="pytest")
    work = Workdir(tmp_path / "run")
    state = json.loads(work.state.read_text())
    best_history = max(float(r["val_auc"]) for r in history_rows(work.root))
    assert state["best"] == pytest.approx(best_history)
    best = keras.models.load_model(work.best, safe_mode=True)
    from satx.data.pipeline import make_eval_dataset, model_inputs
    from satx.models.metrics import PositiveClassAUC

    best.compile(loss="categorical_crossentropy", metrics=[PositiveClassAUC(name="auc")])
    records = load_records(sample_records)
    val = model_inputs(make_eval_dataset(records, "val", batch_size=8), 2)
    steps = -(-records.manifest.count("val") // 8)
    assert best.evaluate(val, steps=steps, verbose=0, return_dict=True)["auc"] == pytest.approx(
        state["best"], abs=1e-4
    )


def test_the_final_model_is_the_best_checkpoint(sample_records, tmp_path):
    """model.keras (and so the export) holds the best epoch's weights, whatever min_delta is.

    With min_delta=1 Keras' EarlyStopping kept the first epoch's weights, whichever was best.
    """
    config = _tiny_config(
        sample_records,
        tmp_path / "run",
        n_epo_phase1=0,
        n_epo_phase2=4,
        lr_phase2=1e-2,
        monitor="val_loss",  # the sample's val AUC is 1.0 from the first epoch on
        min_delta=1.0,
        export=False,
    )
    train(config, command="pytest")
    work = Workdir(tmp_path / "run")
    losses = [float(r["val_loss"]) for r in history_rows(work.root)]
    state = json.loads(work.state.read_text())
    assert state["best_epoch"] == int(np.argmin(losses)) > 0, losses  # > 0: the old way failed
    final = keras.models.load_model(work.model, safe_mode=True).get_weights()
    best = keras.models.load_model(work.best, safe_mode=True).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(final, best, strict=True))


def test_rerun_refuses_a_changed_config_and_skips_a_finished_run(sample_records, tmp_path):
    config = _tiny_config(sample_records, tmp_path / "run", n_epo_phase2=0)
    first = train(config, command="pytest")
    assert train(config, command="pytest") == first  # complete: nothing redone
    with pytest.raises(OutputExistsError, match="lr_phase1"):
        train(_tiny_config(sample_records, tmp_path / "run", n_epo_phase2=0, lr_phase1=0.5))
    train(
        _tiny_config(sample_records, tmp_path / "run", n_epo_phase2=0, lr_phase1=0.5),
        overwrite=True,
    )


@pytest.mark.slow
def test_mirrored_over_two_cpu_devices_matches_one_device(sample_records, tmp_path):
    weights = tmp_path / "mobilenetv2_32.weights.h5"  # pretrained-style: BatchNorm frozen
    from satx.models.backbones import create_backbone

    create_backbone("mobilenetv2", 32, "none").save_weights(weights)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(NO_RANDOMNESS))
    common = (
        "--n_epo_phase1=2",
        "--n_epo_phase2=0",
        "--deterministic",
        "--cache=none",
        f"--config={config}",
        f"--weights={weights}",
        "--export=false",
    )
    mirrored = train_cmd(
        sample_records,
        tmp_path / "m",
        "--cpu_devices=2",
        "--strategy=mirrored",
        "--batch_size=4",
        *common,
    )
    single = train_cmd(
        sample_records, tmp_path / "s", "--strategy=onedevice", "--batch_size=8", *common
    )
    out = cli(*mirrored, check=True)
    cli(*single, check=True)
    assert json.loads((tmp_path / "m" / "run.json").read_text())["replicas"] == 2
    assert "MirroredStrategy over 2 replica" in out.stderr
    loss_m = [float(r["loss"]) for r in history_rows(tmp_path / "m")]
    loss_s = [float(r["loss"]) for r in history_rows(tmp_path / "s")]
    assert loss_m == pytest.approx(loss_s, rel=1e-3)


_EXPORT_CHECK = """
import json, pathlib, sys
import numpy as np, tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
folder = pathlib.Path(sys.argv[2])
images = np.load(folder / "images.npy")
encoded = [p.read_bytes() for p in sorted(folder.glob("*.tile"))]
a = loaded.signatures["serving_default"](images=tf.constant(images))
b = loaded.signatures["serving_bytes"](encoded=tf.constant(encoded))["probabilities"]
print(json.dumps({
    "images": a["probabilities"].numpy().tolist(),
    "raw": a["uncalibrated_probabilities"].numpy().tolist(),
    "bytes": b.numpy().tolist(),
}))
"""


def test_export_loads_in_a_fresh_process_and_both_signatures_agree(sample_records, tmp_path):
    summary = train(
        _tiny_config(sample_records, tmp_path / "run", n_epo_phase2=0), command="pytest"
    )
    from satx.data.decode import decode_tile
    from satx.records.schema import iter_shard

    encoded = [ex.encoded for ex in iter_shard(load_records(sample_records).shard_paths("val")[0])]
    images = np.stack([decode_tile(e).numpy() for e in encoded[:6]])
    np.save(tmp_path / "images.npy", images)
    for k, e in enumerate(encoded[:6]):
        (tmp_path / f"{k}.tile").write_bytes(e)
    proc = subprocess.run(
        [sys.executable, "-c", _EXPORT_CHECK, summary.export, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    model = keras.models.load_model(Workdir(tmp_path / "run").model, safe_mode=True)
    raw = model.predict(images, verbose=0)
    fitted = Calibration.from_dict(summary.calibration)
    stored = json.loads((Path(summary.export) / "calibration.json").read_text())
    assert Calibration.from_dict(stored) == fitted and len(fitted.bias) == 2
    calibrated = fitted.apply(raw)  # what evaluate applies to the raw scores
    np.testing.assert_allclose(got["raw"], raw, atol=1e-5)
    np.testing.assert_allclose(got["images"], calibrated, atol=1e-5)
    np.testing.assert_allclose(got["bytes"], calibrated, atol=1e-5)
    assert summary.calibration["val_nll_after"] <= summary.calibration["val_nll_before"]


def test_profile_batches_write_a_trace_with_input_pipeline_events(sample_records, tmp_path):
    config = _tiny_config(
        sample_records,
        tmp_path / "run",
        n_epo_phase2=0,
        steps_per_epoch=5,
        profile_batches="2,3",
        export=False,
    )
    train(config, command="pytest")
    traces = list((tmp_path / "run" / "logs").rglob("*.xplane.pb"))
    assert traces, "no profiler trace written"
    raw = b"".join(p.read_bytes() for p in traces)
    assert b"Iterator::" in raw  # tf.data iterator events: what the input-pipeline analysis reads


def test_mixed_bfloat16_trains_with_a_float32_output(sample_records, tmp_path):
    import keras as k

    try:
        train(
            _tiny_config(
                sample_records,
                tmp_path / "run",
                n_epo_phase2=0,
                mixed_precision="bfloat16",
                export=False,
            ),
            command="pytest",
        )
        assert k.mixed_precision.global_policy().name == "mixed_bfloat16"
        model = k.models.load_model(Workdir(tmp_path / "run").model, safe_mode=True)
        assert model.get_layer("dense").compute_dtype == "bfloat16"
        assert model.output.dtype == "float32"
        assert np.isfinite([float(r["loss"]) for r in history_rows(tmp_path / "run")]).all()
    finally:
        k.mixed_precision.set_global_policy("float32")


@pytest.mark.slow
def test_mixed_float16_trains_with_loss_scaling_and_exports_float32(sample_records, tmp_path):
    """The GPU path (auto on tensor cores) run on the CPU: slow, but the same code."""
    import keras as k
    import tensorflow as tf

    try:
        summary = train(
            _tiny_config(
                sample_records, tmp_path / "run", n_epo_phase2=1, mixed_precision="float16"
            ),
            command="pytest",
        )
        model = k.models.load_model(Workdir(tmp_path / "run").model, safe_mode=True)
        assert model.get_layer("dense").compute_dtype == "float16"
        assert model.output.dtype == "float32"
        assert isinstance(model.optimizer, k.optimizers.LossScaleOptimizer)
        assert np.isfinite([float(r["loss"]) for r in history_rows(tmp_path / "run")]).all()
        images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
        loaded = tf.saved_model.load(summary.export)
        served = loaded.serving_default(tf.constant(images))
        assert served["probabilities"].dtype == tf.float32
        expected = Calibration.from_dict(
            json.loads((Path(summary.export) / "calibration.json").read_text())
        ).apply(np.asarray(model(images, training=False), np.float64))
        np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=2e-3)
    finally:
        k.mixed_precision.set_global_policy("float32")


def test_progressive_resizing_carries_phase1_weights_to_the_full_size(
    sample_records, tmp_path, caplog
):
    # Phase 1 at 16 px, then the model's 32 px: with no phase-2 epochs the final model holds
    # exactly what phase 1 learned, at the full input size.
    work = Workdir(tmp_path / "run")
    config = _tiny_config(
        sample_records, work.root, image_size=32, phase1_image_size=16, n_epo_phase2=0
    )
    with caplog.at_level("INFO", logger="satx.train.fit"):
        train(config, command="pytest")
    assert "phase 1: epochs 0..0, 4 steps/epoch, 16 px" in caplog.text
    final = keras.models.load_model(work.model, safe_mode=True)
    assert final.input_shape == (None, 32, 32, 3)
    small = _small_model(config)
    small.load_weights(work.phase1_weights)
    untrained = _small_model(config)
    for a, b in zip(final.get_weights(), small.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(
        not np.array_equal(b, c)
        for b, c in zip(small.get_weights(), untrained.get_weights(), strict=True)
    )
    # ...and phase 2 goes on from there at 32 px, to an export that takes 32 px tiles
    config = _tiny_config(sample_records, tmp_path / "run2", image_size=32, phase1_image_size=16)
    summary = train(config, command="pytest")
    assert summary.epochs_run == (0, 1, 2)
    assert [int(r["epoch"]) for r in history_rows(tmp_path / "run2")] == [0, 1, 2]
    exported = tf.saved_model.load(summary.export)
    out = exported.signatures["serving_default"](images=tf.zeros([2, 32, 32, 3], tf.uint8))
    assert out["probabilities"].shape == (2, 2)


def _small_model(config):
    from satx.train.phases import build_model, config_for_phase

    return build_model(config_for_phase(config, 1), 2)
