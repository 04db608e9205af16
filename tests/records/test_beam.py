"""make_records on Apache Beam equals the local engine: shards byte for byte, the same
quarantine and manifest; in one process and with 2 worker processes; gs:// in and out; a tile
service; kill -9 of the driver, then a re-run."""

import json

import mercantile
import pytest

from satx.bench.tileserver import TileServer
from satx.config import SourceConfig
from satx.io import storage
from satx.records.make import make_records
from tests.support.helpers import (
    GCS_BUCKET,
    download_tree,
    shard_digests,
    upload_tree,
    write_bad_tiles,
    xyz_folder,
)

pytest.importorskip("apache_beam", reason="the Beam engine needs the satx[beam] extra")
from satx.records.beam import make_records_beam

TWO_PROCESSES = "--direct_num_workers=2 --direct_running_mode=multi_processing"


def _same_result(a, b):
    assert shard_digests(a) == shard_digests(b)
    assert (a / "quarantine.jsonl").read_text() == (b / "quarantine.jsonl").read_text()
    ma, mb = (json.loads((f / "manifest.json").read_text()) for f in (a, b))
    assert (
        ma.pop("run")["config"]["engine"] == "local" and mb.pop("run")["config"]["engine"] == "beam"
    )
    assert ma == mb


@pytest.mark.parametrize("options", ["", TWO_PROCESSES], ids=["in_process", "two_processes"])
def test_beam_equals_local_with_bad_tiles(tmp_path, records_config, options):
    write_bad_tiles(tmp_path / "in")
    make_records(records_config(tmp_path / "in", tmp_path / "local"))
    config = records_config(tmp_path / "in", tmp_path / "beam", engine="beam", beam_options=options)
    manifest = make_records_beam(config)
    assert manifest.quarantine.count == 4
    _same_result(tmp_path / "local", tmp_path / "beam")
    assert not (tmp_path / "beam" / "_progress").exists()


def test_beam_reads_and_writes_gcs(sample_tiles, records_config, tmp_path, gcs):
    # Beam lists a gs:// input in place (its workers read the tiles); local mirrors it first.
    upload_tree(sample_tiles, f"gs://{GCS_BUCKET}/beam/in")
    names = sorted(p.relative_to(sample_tiles).as_posix() for p in sample_tiles.rglob("*.jpg"))
    rows = [f"{n},{n.split('/')[0]}" for n in names[::2]] + ["school/absent.jpg,school", "x.jpg,"]
    storage.open_store(f"gs://{GCS_BUCKET}/beam/in").write_bytes(
        "labels.csv", ("path,label\n" + "\n".join(rows) + "\n").encode()
    )
    for name, source in (("folder", "beam/in"), ("csv", "beam/in/labels.csv")):
        local = tmp_path / f"local-{name}"
        make_records(records_config(f"gs://{GCS_BUCKET}/{source}", local))
        url = f"gs://{GCS_BUCKET}/beam/out-{name}"
        make_records_beam(records_config(f"gs://{GCS_BUCKET}/{source}", url, engine="beam"))
        download_tree(url, tmp_path / f"beam-{name}")
        _same_result(local, tmp_path / f"beam-{name}")
    quarantine = (tmp_path / "beam-csv" / "quarantine.jsonl").read_text()
    assert "missing_file" in quarantine and "missing_label" in quarantine


def test_beam_fetches_places_from_a_tile_service(tmp_path, records_config):
    tiles = [mercantile.Tile(77128 + i % 5, 127700 + i // 5, 18) for i in range(20)]
    xyz_folder(tmp_path / "xyz", tiles)
    rows = "".join(
        f"{t.z},{t.x},{t.y},{'school' if i % 3 else 'not_school'}\n" for i, t in enumerate(tiles)
    )
    (tmp_path / "places.csv").write_text("z,x,y,label\n" + rows + "18,1,1,school\n")  # no imagery
    html = f"{tiles[4].z}/{tiles[4].x}/{tiles[4].y}"
    with TileServer(tmp_path / "xyz", faults={html: ["html", "*"]}) as server:
        for engine, out in (("local", "local"), ("beam", "beam")):
            config = records_config(
                tmp_path / "places.csv",
                tmp_path / out,
                zoom=18,
                source=SourceConfig(tiles=server.template),
                engine=engine,
            )
            (make_records_beam if engine == "beam" else make_records)(config)
    _same_result(tmp_path / "local", tmp_path / "beam")
    reasons = (tmp_path / "beam" / "quarantine.jsonl").read_text()
    assert "no_imagery" in reasons and "not_an_image" in reasons
    # the workers fetched into the output (every worker can reach it); gone once complete
    assert not (tmp_path / "beam" / "_progress").exists()


def test_beam_makes_the_same_windows_as_local(tmp_path, records_config):
    """--context=2 on Beam (2 worker processes): the same window images, records, quarantine."""
    tiles = [mercantile.Tile(77128 + i % 6, 127700 + i // 6, 18) for i in range(36)]
    xyz_folder(tmp_path / "xyz", tiles)
    gap = tiles[20]
    (tmp_path / "xyz" / f"18/{gap.x}/{gap.y}.jpg").unlink()  # its windows are quarantined
    rows = "".join(
        f"{t.z},{t.x},{t.y},{'school' if i % 3 else 'not_school'}\n"
        for i, t in enumerate(tiles)
        if 0 < t.x - 77128 < 5 and 0 < t.y - 127700 < 5
    )
    (tmp_path / "places.csv").write_text("z,x,y,label\n" + rows)
    with TileServer(tmp_path / "xyz") as server:
        for engine, out in (("local", "local"), ("beam", "beam")):
            config = records_config(
                tmp_path / "places.csv",
                tmp_path / out,
                zoom=18,
                context=2,
                source=SourceConfig(tiles=server.template),
                engine=engine,
                beam_options=TWO_PROCESSES if engine == "beam" else "",
            )
            (make_records_beam if engine == "beam" else make_records)(config)
    _same_result(tmp_path / "local", tmp_path / "beam")
    reasons = (tmp_path / "beam" / "quarantine.jsonl").read_text()
    assert f"tile 18/{gap.x}/{gap.y}" in reasons and "no_imagery" in reasons
    assert json.loads((tmp_path / "beam" / "manifest.json").read_text())["context"] == 2
