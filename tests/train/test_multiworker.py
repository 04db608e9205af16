"""MultiWorkerMirroredStrategy with two worker processes on loopback (one CPU device each)."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys

import pytest

from tests.support.helpers import NO_RANDOMNESS, REPO, TINY, cli


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _losses(workdir, column: str = "loss") -> list[float]:
    with open(workdir / "history.csv") as f:
        return [float(r[column]) for r in csv.DictReader(f)]


@pytest.mark.slow
def test_two_workers_train_like_one_with_the_same_global_batch(sample_records, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(NO_RANDOMNESS))
    common = [
        f"--records={sample_records}",
        "--backbone=tiny_flat",
        "--weights=none",
        "--image_size=32",
        "--steps_per_epoch=3",
        "--n_epo_phase1=0",
        "--n_epo_phase2=2",
        # Class weights normalise each replica's loss over its own tiles, which moves a step
        # slightly (val loss 0.04 % here); equal weights make both runs the same computation.
        "--class_weight=1,1",
        "--deterministic",
        "--cache=none",
        "--mixed_precision=off",
        f"--config={config}",
    ]
    args = [f"--workdir={tmp_path / 'multi'}", "--strategy=multiworker", "--batch_size=4"]
    workers = _workers(2, lambda _: ["satx.train", *common, *args])
    outputs = [w.communicate(timeout=600) for w in workers]
    for w, (_, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err[-3000:]
    assert "CollectiveAllReduceStrategy over 2 replica(s)" in outputs[0][1]
    cli(
        "satx.train",
        *common,
        f"--workdir={tmp_path / 'single'}",
        "--strategy=onedevice",
        "--batch_size=8",
        env=TINY,
        check=True,
    )
    multi = tmp_path / "multi"
    assert json.loads((multi / "run.json").read_text())["replicas"] == 2
    # Only the chief wrote here: one history row per epoch, one export, one checkpoint.
    assert len(_losses(multi)) == 2
    assert [p.name for p in (multi / "export").iterdir()] == ["1"]
    assert (multi / "checkpoints" / "best.keras").exists()
    # The same computation, up to the order of float additions (the all-reduce sums two
    # halves): validation (one pass over the same tiles) agrees. The batches themselves are
    # checked exactly in the test below. Adam turns rounding-sized gradient differences into
    # whole-rate steps where a gradient is near zero, so the tolerance is not 1e-6: with 128-
    # record reads the same tiles in another order gave 3e-4 here.
    single = tmp_path / "single"
    assert _losses(multi, "val_loss") == pytest.approx(_losses(single, "val_loss"), rel=1e-3)
    assert _losses(multi, "val_accuracy") == _losses(single, "val_accuracy")
    # The training logs average each worker's running values (Keras 3.15): 0.4 % apart here.
    assert _losses(multi) == pytest.approx(_losses(single), rel=1e-2)
    assert not list(tmp_path.glob("satx-worker-*"))


def _workers(cluster_size: int, argv_for) -> list[subprocess.Popen]:
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(cluster_size)]}
    procs = []
    for index in range(cluster_size):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {**os.environ, **TINY, "TF_CONFIG": json.dumps(tf_config)}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", *argv_for(index)],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return procs


@pytest.mark.slow
def test_each_worker_gets_its_half_of_one_workers_batches(sample_records, tmp_path):
    # DATA auto-sharding: both workers read the same seeded stream and each keeps its
    # replica's slice of every global batch. Pixel for pixel, step by step.
    probe = "tests.support.batches_probe"
    procs = _workers(2, lambda i: [probe, "multi", sample_records, str(tmp_path / f"w{i}.json")])
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    cli(probe, "single", sample_records, str(tmp_path / "one.json"), env=TINY, check=True)
    one = json.loads((tmp_path / "one.json").read_text())
    w0, w1 = (json.loads((tmp_path / f"w{i}.json").read_text()) for i in range(2))
    assert len(one) == 12 and one[0::2] == w0 and one[1::2] == w1
    assert len({digest for digest, _ in one}) == 12  # six steps of different tiles
