"""The records tools as a user runs them: subprocesses, real exit codes, real SIGKILL."""

from tests.support.helpers import cli


def test_flag_names_are_the_documented_ones():
    out = cli("tools.make_records", "--help").stdout
    for flag in [
        "input",
        "output",
        "split",
        "split_zoom",
        "seed",
        "shard_size_mb",
        "min_shards",
        "on_size_mismatch",
        "image_size",
        "overwrite",
        "compression",
        "workers",
    ]:
        assert f"--{flag}:" in out or f"--[no]{flag}:" in out


def test_user_errors_exit_2_with_one_clear_line(tmp_path):
    proc = cli("tools.make_records", f"--input={tmp_path / 'nope'}", f"--output={tmp_path / 'o'}")
    assert proc.returncode == 2
    assert f"error: {tmp_path / 'nope'}: no such file or folder" in proc.stderr
    assert "Traceback" not in proc.stderr
