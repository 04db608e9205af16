"""Hostile and careless inputs to real CLIs: issue 35's findings 5, 7 and 10.

Each test builds the input the finding was found with and runs the command as a user would.
"""

from __future__ import annotations

import csv
import io
import resource
import signal
from pathlib import Path

import pytest

from tests.support.bombs import jpeg_claiming, png_bomb
from tests.support.helpers import TINY, cli, one_error_line, records_cmd


def refusal(proc) -> str:
    """The one `error:` line of a CLI that refused its input (exit 2; progress lines before)."""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return errors[0]


pytestmark = pytest.mark.slow


def test_5_a_decompression_bomb_is_one_quarantined_tile_not_a_dead_run(
    sample_tiles, tiny_model, tmp_path
):
    (sample_tiles / "school" / "bomb.jpg").write_bytes(jpeg_claiming(60000, 60000))
    (sample_tiles / "school" / "bomb.png").write_bytes(png_bomb(14000))
    out = tmp_path / "records"
    cli(*records_cmd(sample_tiles, out), check=True)
    quarantine = (out / "quarantine.jsonl").read_text()
    assert quarantine.count('"reason": "too_large"') == 2
    assert "60000x60000" in quarantine and "14000x14000" in quarantine
    predicted = tmp_path / "predict"
    args = (f"--model={tiny_model['export']}", f"--input={sample_tiles}", f"--output={predicted}")
    cli("satx.predict", *args, "--formats=csv", env=TINY, check=True)
    with open(predicted / "errors.csv", newline="") as f:
        errors = list(csv.DictReader(f))
    assert sorted((Path(e["source_id"]).name, e["reason"]) for e in errors) == [
        ("bomb.jpg", "too_large"),
        ("bomb.png", "too_large"),
    ]
    with open(predicted / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 48 and not any("bomb" in r["source_id"] for r in rows)


def test_7_csv_cells_never_split_a_row_or_start_a_formula(sample_tiles, tiny_model, tmp_path):
    name = "ok\r=cmd|' -C calc'!A0.jpg"  # a file name cannot hold the finding's "/"
    src = next((sample_tiles / "school").iterdir())
    src.rename(src.with_name(name))
    out = tmp_path / "predict"
    args = (f"--model={tiny_model['export']}", f"--input={sample_tiles}", f"--output={out}")
    cli("satx.predict", *args, "--formats=csv", env=TINY, check=True)
    text = (out / "predictions.csv").read_bytes().decode()
    assert f'"school/{name}"' in text  # quoted: a spreadsheet keeps it in one cell
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 49 and {len(r) for r in rows} == {len(rows[0])}
    cells = [c for r in rows for c in r]
    assert f"school/{name}" in cells
    assert not [
        c for c in cells if c[:1] in ("=", "+", "@") or c.startswith("-") and c[1:2].isalpha()
    ]
    proc = cli(
        "satx.review",
        f"--db={tmp_path / 'r.sqlite'}",
        f"--export={tmp_path / 'labels.csv'}",
        '--negative_class==HYPERLINK("http://evil.example","x")',
    )
    assert "--negative_class==HYPERLINK" in one_error_line(proc)
    assert "a class name starts with a letter" in proc.stderr


def _garbage(path: Path) -> Path:
    path.write_bytes(bytes(range(256)) * 8)
    return path


def test_10_bad_inputs_are_one_line_and_exit_code_2(
    sample_tiles, prediction_set, tiny_model, tmp_path
):
    pred = prediction_set["predictions"]
    extra = tmp_path / "extra.csv"
    extra.write_text("path,label\na.jpg,school,extra\n")
    empty_known = tmp_path / "known.csv"
    empty_known.write_text("lon,lat,id\n")
    a_file = tmp_path / "a_file"
    a_file.write_text("mine\n")
    tiles = f"--tiles={tmp_path}/t/{{z}}/{{x}}/{{y}}.jpg"
    cases = [
        (records_cmd(_garbage(tmp_path / "g.csv"), tmp_path / "o1"), "not UTF-8 text"),
        (
            records_cmd(_garbage(tmp_path / "g.geojson"), tmp_path / "o2", "--zoom=18", tiles),
            "cannot read GeoJSON",
        ),
        (records_cmd(extra, tmp_path / "o3"), "1 more field(s) than the header has"),
        (records_cmd(sample_tiles, a_file), "exists and is not a folder"),
        (records_cmd(sample_tiles, tmp_path / "o5", "--zoom=30"), "--zoom=30: must be at most"),
        (records_cmd(tmp_path / "ti\udcffles", tmp_path / "o6"), "no such file or folder"),
        (
            ("satx.sites", f"--predictions={pred}", f"--output={tmp_path / 's1'}")
            + (f"--known={_garbage(tmp_path / 'k.geojson')}",),
            "cannot read GeoJSON",
        ),
        (
            ("satx.sites", f"--predictions={pred}", f"--output={tmp_path / 's2'}")
            + (f"--known={empty_known}",),
            "holds no school",
        ),
        (("satx.sites", f"--predictions={pred}", f"--output={a_file}"), "is not a folder"),
    ]
    for args, message in cases:
        assert message in refusal(cli(*args, env=TINY)), args
    for bbox in ("nan,0,1,1", "0,0,1e308,1"):  # the rest: tests/test_geo.py, tests/fuzz
        proc = cli(
            "satx.predict",
            f"--model={tiny_model['export']}",
            f"--bbox={bbox}",
            "--zoom=18",
            tiles,
            f"--output={tmp_path / 'p'}",
            "--dry_run",
            env=TINY,
        )
        assert "longitudes in -180..180" in one_error_line(proc), bbox
    assert a_file.read_text() == "mine\n"


def _full_disk_at(limit: int):
    """A child's file size limit: writes past `limit` bytes fail with EFBIG, as on a full disk."""

    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_files


def _run_on_a_full_disk(args, limit: int):
    import subprocess
    import sys

    from tests.support.helpers import REPO

    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        env={**__import__("os").environ, **TINY},
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_full_disk_at(limit),
    )


@pytest.mark.parametrize("stage", ["make_records", "predict"])
def test_10_a_full_disk_stops_in_one_line_leaves_no_temp_and_a_rerun_completes(
    stage, sample_tiles, tiny_model, tmp_path
):
    out = tmp_path / "out"
    if stage == "make_records":
        args = records_cmd(sample_tiles, out)
    else:
        model, tiles = f"--model={tiny_model['export']}", f"--input={sample_tiles}"
        args = ("satx.predict", model, tiles, f"--output={out}", "--chunk_size=8")
    line = refusal(_run_on_a_full_disk(args, 8192))
    assert "could not write" in line and "File too large" in line
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    cli(*args, env=TINY, check=True)
    assert (out / ("manifest.json" if stage == "make_records" else "predict_run.json")).exists()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
