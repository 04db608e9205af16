"""Plain helpers for tests: fixture images, CLI subprocesses, records readers, real-data paths."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from satx.io import storage

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
GCS_BUCKET = "satx-test"  # created on the fake-gcs-server of the `gcs` fixture
TILE = 32  # fixture tile side: small keeps the suite fast
TINY = {"SATX_BACKBONE_MODULES": "tests.support.tiny_backbone"}  # lets CLI subprocesses use `tiny`
# A --config that leaves no randomness in the model: replicas must compute what one device does.
NO_RANDOMNESS = {
    "model": {
        "dropout": 0.0,
        "augment": {
            "dihedral": False,
            "brightness": [1, 1],
            "channel_shift": 0,
            "contrast": [1, 1],
            "zoom_max": 1.0,
        },
    }
}


def encode(array: np.ndarray, fmt: str = "JPEG", **kwargs) -> bytes:
    """Encode an array (HxW, HxWx3 or HxWx4 uint8) as JPEG or PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def noise(seed: int, shape=(TILE, TILE, 3)) -> np.ndarray:
    """A deterministic random uint8 image."""
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def write(path: Path, data: bytes) -> Path:
    """Write bytes, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def cli(*args, env=None, check=False, timeout=300):
    """Run `python -m ARGS` from the repository as a user would; returns the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr[-3000:])
    return proc


def one_error_line(proc) -> str:
    """The one stderr line of a CLI that refused its input with exit code 2."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    return lines[0]


def records_cmd(src, out, *extra):
    """A `tools.make_records` command line for 32 px tiles."""
    return (
        "tools.make_records",
        f"--input={src}",
        f"--output={out}",
        "--image_size=32",
        "--min_shards=4",
        *extra,
    )


def shard_digests(folder: Path) -> dict[str, bytes]:
    """Every shard's bytes by name."""
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.tfrecord*"))}


def read_all(folder: Path):
    """Every example in a records folder, with its split, in shard order."""
    from satx.records import schema

    manifest = json.loads((folder / "manifest.json").read_text())
    out = []
    for shard in manifest["shards"]:
        for ex in schema.iter_shard(str(folder / shard["name"]), manifest["compression"]):
            out.append((shard["split"], ex))
    return manifest, out


def shared_data(name: str) -> Path:
    """A folder of ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (see ../shared/data/README.md)")
    return path


def tiny_train_config(records: str, workdir, **overrides):
    """A TrainConfig for the `tiny` backbone that trains in seconds."""
    from satx.config import TrainConfig

    values = dict(
        records=records,
        workdir=str(workdir),
        backbone="tiny",
        weights="none",
        dense_units=16,
        n_epo_phase1=1,
        n_epo_phase2=2,
        per_replica_batch_size=8,
        steps_per_epoch=4,
        lr_phase1=1e-2,
        lr_phase2=1e-3,
        mixed_precision="off",
        tensorboard_images=4,
    )
    values.update(overrides)
    return TrainConfig().with_overrides(values)


def xyz_folder(root: Path, tiles, size: int = TILE) -> dict:
    """Write a noise JPEG per tile as `root/{z}/{x}/{y}.jpg`; returns tile -> bytes."""
    out = {}
    for i, t in enumerate(tiles):
        data = encode(noise(1000 + i, (size, size, 3)))
        write(root / str(t.z) / str(t.x) / f"{t.y}.jpg", data)
        out[t] = data
    return out


def write_mbtiles(path: Path, tiles: dict, view: bool = False) -> Path:
    """A real MBTiles file (TMS rows); with `view`, `tiles` is a view over map + images."""
    import sqlite3

    db = sqlite3.connect(path)
    db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
    db.executemany("INSERT INTO metadata VALUES (?, ?)", [("name", "t"), ("format", "jpg")])
    rows = [(t.z, t.x, 2**t.z - 1 - t.y, data) for t, data in tiles.items()]
    if view:
        db.execute("CREATE TABLE map (zoom_level, tile_column, tile_row, tile_id TEXT)")
        db.execute("CREATE TABLE images (tile_id TEXT, tile_data BLOB)")
        for k, (z, x, y, data) in enumerate(rows):
            db.execute("INSERT INTO map VALUES (?, ?, ?, ?)", (z, x, y, str(k)))
            db.execute("INSERT INTO images VALUES (?, ?)", (str(k), data))
        db.execute(
            "CREATE VIEW tiles AS SELECT zoom_level, tile_column, tile_row, tile_data "
            "FROM map JOIN images ON map.tile_id = images.tile_id"
        )
    else:
        db.execute("CREATE TABLE tiles (zoom_level, tile_column, tile_row, tile_data BLOB)")
        db.execute("CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row)")
        db.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    return path


def write_pmtiles(path: Path, tiles: dict) -> Path:
    """A real PMTiles v3 archive of JPEG tiles, written with the pmtiles package."""
    from pmtiles.tile import Compression, TileType, zxy_to_tileid
    from pmtiles.writer import write as pmtiles_writer

    zooms = [t.z for t in tiles]
    with pmtiles_writer(str(path)) as writer:
        for tile_id, data in sorted((zxy_to_tileid(t.z, t.x, t.y), d) for t, d in tiles.items()):
            writer.write_tile(tile_id, data)
        writer.finalize(
            {
                "tile_type": TileType.JPEG,
                "tile_compression": Compression.NONE,
                "min_zoom": min(zooms),
                "max_zoom": max(zooms),
                "min_lon_e7": -1800000000,
                "min_lat_e7": -850000000,
                "max_lon_e7": 1800000000,
                "max_lat_e7": 850000000,
                "center_zoom": min(zooms),
                "center_lon_e7": 0,
                "center_lat_e7": 0,
            },
            {"name": "satx test tiles"},
        )
    return path


def upload_tree(local_root, url):
    store = storage.open_store(url)
    for path in sorted(local_root.rglob("*")):
        if path.is_file():
            store.write_bytes(path.relative_to(local_root).as_posix(), path.read_bytes())


def download_tree(url, local_root):
    store = storage.open_store(url)
    for name in store.list():
        store.get_file(name, str(local_root / name))


def write_bad_tiles(root):
    """Tiles of every kind records must keep (converted or not) or quarantine: (good, bad)."""
    good = {
        "school/75000-120000-18.jpg": encode(noise(1)),
        "school/75001-120000-18.png": encode(noise(2)),  # PNG-named JPEG: kept
        "not_school/75002-120000-18.png": encode(noise(3, (32, 32, 4)), "PNG"),  # RGBA
        "not_school/75003-120000-18.jpg": encode(noise(4, (32, 32))),  # grayscale
        "not_school/75004-120000-18.jpg": encode(noise(5, (48, 40, 3))),  # wrong size
    }
    bad = {
        "school/75005-120000-18.jpg": encode(noise(6))[:150],  # truncated
        "school/75006-120000-18.jpg": b"",  # zero bytes
        "school/75007-120000-18.jpg": b"<html>404 not found</html>",  # text named .jpg
    }
    for name, data in {**good, **bad}.items():
        write(root / name, data)
    for k in range(12):  # enough well-formed tiles that the size check does not abort
        write(root / "not_school" / f"{75100 + k}-120001-18.jpg", encode(noise(100 + k)))
    return good, bad


@contextlib.contextmanager
def file_server(folder: Path):
    """A plain HTTP server on loopback serving `folder`; yields its base URL."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
