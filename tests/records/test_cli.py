"""The records tools as a user runs them: subprocesses, real exit codes, real SIGKILL."""

import json
import signal

import pytest

from tests.helpers import cli, records_cmd, shard_digests


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


@pytest.mark.slow
@pytest.mark.parametrize(
    "failpoint, workers",
    [
        ("make_records.mid_shard:3", "1"),  # the whole process dies with a half-written shard
        ("make_records.after_shard:2", "2"),
    ],  # the parent dies while workers are writing
)
def test_resume_after_kill_9(sample_tiles, tmp_path, failpoint, workers):
    cli(*records_cmd(sample_tiles, tmp_path / "clean", "--workers=1"), check=True)
    out = tmp_path / "out"
    killed = cli(
        *records_cmd(sample_tiles, out, f"--workers={workers}"), env={"SATX_FAILPOINTS": failpoint}
    )
    assert killed.returncode == -signal.SIGKILL
    assert not (out / "manifest.json").exists()
    assert list(out.glob("_progress/*.json"))  # some work was done before the kill
    cli(*records_cmd(sample_tiles, out, f"--workers={workers}"), check=True)
    assert shard_digests(out) == shard_digests(tmp_path / "clean")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["records"] == 48
    assert not list(out.glob(".*tmp*")) and not (out / "_progress").exists()


@pytest.mark.slow
def test_sample_tiles_then_records_then_inspect(tmp_path):
    tiles, out = tmp_path / "tiles", tmp_path / "records"
    cli("tools.make_sample_tiles", f"--output={tiles}", "--count=40", "--size=32", check=True)
    made = cli(*records_cmd(tiles, out), check=True)
    assert "train" in made.stdout and "manifest.json" in made.stdout
    assert "make_records: done, 40 tiles" in made.stderr
    again = cli(*records_cmd(tiles, out))
    assert again.returncode == 2 and "--overwrite" in again.stderr
    shown = cli("tools.inspect_records", str(out), "--examples=2", check=True)
    assert "verified 12 shards: 12 ok, 0 bad" in shown.stdout
    assert shown.stdout.count("quadkey") == 2
    shard = sorted(out.glob("train-*.tfrecord"))[0]
    shard.write_bytes(shard.read_bytes()[:-10])
    broken = cli("tools.inspect_records", str(out), "--examples=0")
    assert broken.returncode == 1 and f"BAD  {shard.name}" in broken.stdout
