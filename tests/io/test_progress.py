import logging

from satx.io import failpoints
from satx.io.progress import Progress, format_duration


def test_progress_line_has_count_rate_and_eta(caplog, monkeypatch):
    now = [100.0]
    monkeypatch.setattr("satx.io.progress.time.monotonic", lambda: now[0])
    progress = Progress("job", total=1000, every_s=0)
    now[0] = 110.0
    with caplog.at_level(logging.INFO, logger="satx.io.progress"):
        progress.update(250)  # 250 in 10 s
    assert "job: 250/1000 tiles (25.0%), 25 tiles/s, elapsed 0:00:10, ETA 0:00:30" in caplog.text
    now[0] = 120.0
    progress.done = 1000
    assert progress.finish() == "job: done, 1000 tiles in 0:00:20 (50 tiles/s)"


def test_format_duration():
    assert format_duration(3723) == "1:02:03"
    assert format_duration(float("nan")) == "?"


def test_failpoint_is_inert_unless_armed(monkeypatch):
    monkeypatch.delenv(failpoints.ENV_VAR, raising=False)
    failpoints.hit("anything")  # would SIGKILL this test process if armed
    monkeypatch.setenv(failpoints.ENV_VAR, "other:1")
    failpoints.hit("anything")


def test_a_failpoint_armed_once_kills_only_the_first_process_of_its_group(tmp_path):
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        failpoints.ENV_VAR: "point:1",
        failpoints.ONCE_VAR: str(tmp_path / "fired"),
    }
    code = "from satx.io import failpoints; failpoints.hit('point')"
    runs = [subprocess.run([sys.executable, "-c", code], env=env, check=False) for _ in range(3)]
    assert [run.returncode for run in runs] == [-9, 0, 0]
