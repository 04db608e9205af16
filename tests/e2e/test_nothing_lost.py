"""Nothing a user owns is deleted or leaked: issue 35's findings 1-4 and 8, each against real CLIs.

Every test first builds what the finding was found on (a folder of the user's, a predictions
folder, records with a neighbour set, a lock taken mid-run, a device node), runs the real
command, and checks every byte that is not satx's by its sha256.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import mercantile
import pytest

from satx.io.claim import MARKER_NAME
from tests.support.helpers import TINY, cli, one_error_line, records_cmd
from tests.support.places import PLACES_TOKEN, T, write_places

pytestmark = pytest.mark.slow

HEADER_SECRET = "hdr-s3cr3t-7f3a9c"


def tree(root: Path) -> dict[str, str]:
    """Every file below `root` (hidden ones included) with its sha256."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def users_folder(root: Path) -> dict[str, str]:
    """A folder of the user's (issue 35, finding 1): a thesis and a CSV in a subfolder."""
    (root / "sub").mkdir(parents=True)
    (root / "thesis.txt").write_text("a\n")
    (root / "sub" / "s.csv").write_text("b\n")
    return tree(root)


def test_1_sites_refuses_a_users_folder_and_its_own_input(prediction_set, tmp_path):
    pred = Path(prediction_set["predictions"])
    folder = tmp_path / "x"
    before = users_folder(folder)
    for extra in ((), ("--overwrite",)):
        args = ("satx.sites", f"--predictions={pred}", f"--output={folder}", *extra)
        line = one_error_line(cli(*args))
        assert "holds files satx did not write (sub/s.csv, thesis.txt)" in line
        assert tree(folder) == before  # not even a lock file was added
    predictions = tree(pred)
    proc = cli("satx.sites", f"--predictions={pred}", f"--output={pred}", "--overwrite")
    assert f"is the run's input --predictions={pred}" in one_error_line(proc)
    assert tree(pred) == predictions


def test_2_predict_overwrite_never_touches_its_input(tiny_model, sample_tiles, tmp_path):
    tiles = tree(sample_tiles)
    for output, relation in [(sample_tiles, "is"), (sample_tiles.parent, "contains")]:
        args = (f"--model={tiny_model['export']}", f"--input={sample_tiles}", f"--output={output}")
        proc = cli("satx.predict", *args, "--overwrite", env=TINY)
        assert f"{relation} the run's input --input={sample_tiles}" in one_error_line(proc)
        assert tree(sample_tiles) == tiles


def test_3_make_records_overwrite_deletes_only_its_own_top_level_files(sample_tiles, tmp_path):
    out = tmp_path / "records"
    cli(*records_cmd(sample_tiles, out), check=True)
    cli(*records_cmd(sample_tiles, out / "sub"), check=True)  # another records set inside
    (out / "notes").mkdir()
    (out / "notes" / "manifest.json").write_text('{"mine": true}\n')
    theirs = {k: v for k, v in tree(out).items() if k.startswith(("sub/", "notes/"))}
    assert "sub/manifest.json" in theirs and len(theirs) > 8
    cli(*records_cmd(sample_tiles, out, "--overwrite", "--min_shards=2"), check=True)
    after = tree(out)
    assert {k: after[k] for k in theirs} == theirs
    assert sorted(n for n in after if n.endswith(".tfrecord") and "/" not in n)[0].endswith(
        "-of-00002.tfrecord"
    )
    assert not any(n.endswith("-of-00004.tfrecord") for n in after if "/" not in n)


def test_4_secrets_reach_no_file_of_any_stage_even_a_killed_runs_lock(
    places_server, tiny_model, tmp_path
):
    header = f"--tile_header=X-Api-Key: {HEADER_SECRET}"
    tiles = f"--tiles={places_server.template}?access_token={PLACES_TOKEN}"
    places = write_places(tmp_path)
    records = tmp_path / "records"
    killed = cli(
        *records_cmd(places, records, "--zoom=18", tiles, header),
        "--split=train:0.5,val:0.5",
        env={"SATX_FAILPOINTS": "fetch.request:5"},
    )
    assert killed.returncode == -9
    lock = (records / ".satx.lock").read_text()
    assert "REDACTED" in lock  # the holder's command, as the run wrote it before its death
    w, s, e, n = mercantile.bounds(T[0])
    runs = [
        cli(*records_cmd(places, records, "--zoom=18", tiles, header), "--split=train:0.5,val:0.5"),
        cli(
            "satx.predict",
            f"--model={tiny_model['export']}",
            f"--bbox={w + 1e-6},{s + 1e-6},{e - 1e-6},{n - 1e-6}",
            "--zoom=18",
            tiles,
            header,
            f"--output={tmp_path / 'predict'}",
            "--formats=csv,geojson",
            env=TINY,
        ),
    ]
    for proc in runs:
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert PLACES_TOKEN not in proc.stdout + proc.stderr
        assert HEADER_SECRET not in proc.stdout + proc.stderr
    for folder in (records, tmp_path / "predict"):
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert any(p.name == ".satx.lock" for p in files)
        for path in files:
            data = path.read_bytes()
            assert PLACES_TOKEN.encode() not in data and HEADER_SECRET.encode() not in data, path


def test_8_an_atomic_write_never_replaces_a_device_node(tiny_model, sample_records, tmp_path):
    special = tmp_path / "full"
    if os.geteuid() == 0:
        os.mknod(special, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # what /dev/full is
    else:
        os.mkfifo(special)
    before = os.lstat(special)
    proc = cli(
        "satx.evaluate",
        f"--model={tiny_model['export']}",
        f"--records={sample_records}",
        "--split=test",
        f"--output={tmp_path / 'eval'}",
        f"--scores_out={special}",
        env=TINY,
    )
    assert f"--scores_out={special} is not a file" in one_error_line(proc)
    after = os.lstat(special)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (
        before.st_mode,
        before.st_ino,
        before.st_rdev,
    )
    assert not (tmp_path / "eval").exists()


def stage_output(root: Path, stage: str) -> dict[str, str]:
    """A folder another stage wrote: its marker and a file of its own."""
    (root / "sub").mkdir(parents=True)
    (root / MARKER_NAME).write_text(f'{{"stage": "{stage}"}}')
    (root / "sub" / "out.json").write_text("{}")
    return tree(root)


def _stage_runs(tiny_model, sample_records, sample_tiles, prediction_set):
    """Each stage's library entry with its output at `out` (the CLIs call exactly these)."""
    from satx.config import EvaluateConfig, PredictConfig, RecordsConfig, SitesConfig, TuneConfig
    from satx.evaluate import evaluate
    from satx.predict import predict
    from satx.records.make import make_records
    from satx.sites import find_sites
    from satx.train import train
    from satx.tune import tune
    from tests.support.helpers import tiny_train_config

    model, records = tiny_model["export"], sample_records
    return {
        "make_records": lambda out, over: make_records(
            RecordsConfig(input=str(sample_tiles), output=str(out), overwrite=over)
        ),
        "predict": lambda out, over: predict(
            PredictConfig.make(
                model=model, input=str(sample_tiles), output=str(out), overwrite=over
            )
        ),
        "sites": lambda out, over: find_sites(
            SitesConfig(predictions=prediction_set["predictions"], output=str(out), overwrite=over)
        ),
        "evaluate": lambda out, over: evaluate(
            EvaluateConfig(model=model, records=records, output=str(out))
        ),
        "train": lambda out, over: train(tiny_train_config(records, out), overwrite=over),
        "tune": lambda out, over: tune(
            TuneConfig(train=tiny_train_config(records, out), overwrite=over)
        ),
    }


def test_every_stage_refuses_a_users_folder_and_another_stages_output(
    tiny_model, sample_records, sample_tiles, prediction_set, tmp_path
):
    from satx.errors import OutputExistsError

    users = tmp_path / "users"
    folders = {users: users_folder(users)}
    others = {stage: tmp_path / stage for stage in ("predict", "sites")}
    folders.update({root: stage_output(root, stage) for stage, root in others.items()})
    runs = _stage_runs(tiny_model, sample_records, sample_tiles, prediction_set)
    for name, run in runs.items():
        stage = "sites" if name == "predict" else "predict"
        for folder, expected in [(users, "did not write"), (others[stage], f"satx {stage},")]:
            for overwrite in (False, True):
                with pytest.raises(OutputExistsError, match=expected):
                    run(folder, overwrite)
        for root, before in folders.items():
            assert tree(root) == before, (name, root)


def test_export_refuses_a_runtimes_folder_holding_foreign_files(tiny_model, tmp_path):
    import shutil

    export = tmp_path / "export"
    shutil.copytree(tiny_model["export"], export / Path(tiny_model["export"]).name)
    runtimes = next(export.iterdir()) / "runtimes"
    runtimes.mkdir()
    (runtimes / "notes.txt").write_text("mine\n")
    before = tree(export)
    proc = cli("satx.export", f"--model={export}", "--to=onnx", env=TINY)
    assert "holds files satx did not write (notes.txt)" in one_error_line(proc)
    assert tree(export) == before
