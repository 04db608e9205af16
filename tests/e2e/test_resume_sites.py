"""satx.sites killed with SIGKILL mid-run: the output is never taken for finished, and a rerun
writes the same files as a run that was never killed."""

from __future__ import annotations

import pytest

from tests.support.helpers import cli

FILES = ("sites.csv", "sites.geojson", "sites_polygons.geojson", "site_tiles.csv", "report.md")


@pytest.mark.slow
@pytest.mark.parametrize("failpoint", ["sites.file_written:2", "sites.before_report:1"])
def test_kill_9_then_rerun_gives_the_same_outputs(site_set, tmp_path, failpoint):
    args = [f"--predictions={site_set['predictions']}", f"--known={site_set['known']}"]
    cli("satx.sites", *args, f"--output={tmp_path / 'clean'}", check=True)
    out = tmp_path / "killed"
    killed = cli("satx.sites", *args, f"--output={out}", env={"SATX_FAILPOINTS": failpoint})
    assert killed.returncode == -9
    assert not (out / "sites_report.json").exists()  # not finished, and it says so
    again = cli("satx.sites", *args, f"--output={out}", check=True)
    assert "3 sites" in again.stdout
    for name in FILES:
        assert (out / name).read_bytes() == (tmp_path / "clean" / name).read_bytes(), name
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") and "tmp" in p.name]
