"""One run per output: a lock that names its holder, frees itself when the holder dies."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from satx.io import storage
from satx.io.lock import LOCK_NAME, OutputLockedError, output_lock
from tests.support.helpers import GCS_BUCKET, REPO, TINY, cli, one_error_line, records_cmd

HOLD = """
import sys, time
from satx.io.lock import output_lock
with output_lock(sys.argv[1], "test"):
    print("held", flush=True)
    time.sleep(600)
"""


def hold_lock(root, env=None):
    """A real other process holding the lock on `root` until killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.slow
def test_a_held_output_is_refused_naming_the_holder_and_freed_by_its_death(sample_tiles, tmp_path):
    out = tmp_path / "records"
    holder = hold_lock(out)
    try:
        line = one_error_line(cli(*records_cmd(sample_tiles, out)))
        assert f"pid {holder.pid} on {socket.gethostname()}" in line
        assert "in use by a test run" in line
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # a killed run's lock: the kernel frees it
        holder.wait()
    cli(*records_cmd(sample_tiles, out), check=True)
    assert (out / "manifest.json").exists()
    assert (out / LOCK_NAME).read_text() == ""  # the new holder emptied it when it finished


@pytest.mark.slow
def test_two_make_records_at_once_one_writes_the_other_stops_cleanly(sample_tiles, tmp_path):
    out = tmp_path / "records"
    cmd = [sys.executable, "-m", *records_cmd(sample_tiles, out)]

    def run(_: int) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, range(2)))
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 2], [r.stderr for r in results]
    loser = next(r for r in results if r.returncode == 2)
    line = one_error_line(loser)
    # Either it met the lock, or it started after the winner had finished.
    assert "in use by a make_records run" in line or "these records are complete" in line
    assert "Traceback" not in loser.stderr
    verify = cli("tools.inspect_records", str(out), check=True)
    assert "problem" not in verify.stdout.lower()


@pytest.mark.slow
def test_predict_and_train_refuse_a_held_output(tiny_model, sample_records, tmp_path):
    pred, work = tmp_path / "pred", tmp_path / "work"
    holders = [hold_lock(pred), hold_lock(work)]
    try:
        predict = cli(
            "satx.predict",
            f"--model={tiny_model['export']}",
            f"--input={sample_records}",
            f"--output={pred}",
            env=TINY,
        )
        train = cli(
            "satx.train",
            f"--records={sample_records}",
            f"--workdir={work}",
            "--backbone=tiny",
            "--weights=none",
            "--image_size=32",
            env=TINY,
        )
        assert f"pid {holders[0].pid}" in one_error_line(predict)
        assert f"pid {holders[1].pid}" in one_error_line(train)
    finally:
        for h in holders:
            h.kill()
            h.wait()


def test_the_lock_is_reentrant_in_one_process_and_released_after(tmp_path):
    with output_lock(str(tmp_path / "o"), "outer"), output_lock(str(tmp_path / "o"), "inner"):
        pass
    with output_lock(str(tmp_path / "o"), "again"):  # free again
        assert (tmp_path / "o" / LOCK_NAME).exists()


def test_gcs_lock_excludes_refreshes_and_takes_over_a_dead_or_stale_one(gcs, tmp_path, caplog):
    root = f"gs://{GCS_BUCKET}/locks/{tmp_path.name}"
    store = storage.GcsStore(root)
    env = {"STORAGE_EMULATOR_HOST": os.environ["STORAGE_EMULATOR_HOST"]}
    holder = hold_lock(root, env)
    try:
        with pytest.raises(OutputLockedError, match=f"pid {holder.pid} on"), output_lock(root, "t"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with output_lock(root, "test"):  # its process is gone from this machine: taken at once
        assert json.loads(store.read_bytes(LOCK_NAME))["pid"] == os.getpid()
    assert "no such process" in caplog.text
    # A holder on another machine: refused while it is fresh, taken over once stale.
    remote = {"run": "predict", "pid": 1, "host": "elsewhere", "time": time.time()}
    store.write_bytes(LOCK_NAME, json.dumps(remote).encode())
    with pytest.raises(OutputLockedError, match="pid 1 on elsewhere"), output_lock(root, "t"):
        pass
    store.write_bytes(LOCK_NAME, json.dumps({**remote, "time": time.time() - 120}).encode())
    with output_lock(root, "test", heartbeat_s=0.2, stale_s=60):
        first = store._blob(LOCK_NAME)
        first.reload()
        time.sleep(0.8)
        again = store._blob(LOCK_NAME)
        again.reload()
        assert again.generation != first.generation  # refreshed by the heartbeat
    assert "not refreshed for 120 s" in caplog.text
    assert not store.exists(LOCK_NAME)  # released
