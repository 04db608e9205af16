"""make_records on a fixed set of inputs of each kind: the same bytes as before the input-kind
registry (issue 37). The digests were taken with the code of 70172c3, before the registry.

The tiles are PNGs written here with stored (uncompressed) deflate blocks, so their bytes do not
depend on a zlib or Pillow version; make_records keeps an RGB PNG of the right size as it is, and
writes its records with its own protobuf and TFRecord framing. Paths are relative (the test runs
in its folder), so the source ids do not depend on where pytest puts it.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path

import mercantile
import numpy as np
import pytest

from satx.config import RecordsConfig, SourceConfig
from satx.records.make import make_records

SIZE = 16
BLOCK = [mercantile.Tile(77128 + i % 4, 127700 + i // 4, 18) for i in range(12)]
DIGESTS = {
    "folder": "85d4678f808dc74f",
    "csv": "04b30170b1def353",
    "places": "42228d8c686544e7",
}


def _png(rgb: np.ndarray) -> bytes:
    """An RGB PNG with stored deflate blocks: the same bytes with any zlib."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + row.tobytes() for row in rgb)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def _tile_png(k: int) -> bytes:
    rng = np.random.default_rng(k)
    return _png(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))


def _label(k: int) -> str:
    return "school" if k % 3 == 0 else "other"


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _inputs() -> dict[str, RecordsConfig]:
    """Three inputs of the same 12 tiles (one corrupt), each of its kind, in the cwd."""
    for k, t in enumerate(BLOCK):
        data = _tile_png(k) if k != 7 else b"\x89PNG\r\n\x1a\nnot really"
        _write(Path(f"folder/{_label(k)}/{t.x}-{t.y}-{t.z}.png"), data)
        _write(Path(f"xyz/{t.z}/{t.x}/{t.y}.png"), data)
    rows = [f"folder/{_label(k)}/{t.x}-{t.y}-{t.z}.png,{_label(k)}" for k, t in enumerate(BLOCK)]
    _write(Path("labels.csv"), "path,label\n" + "\n".join(rows) + "\n")
    features = []
    for k, t in enumerate(BLOCK):
        w, s, e, n = mercantile.bounds(t)
        point = {"type": "Point", "coordinates": [(w + e) / 2, (s + n) / 2]}
        features.append({"type": "Feature", "geometry": point, "properties": {"label": _label(k)}})
    _write(Path("places.geojson"), json.dumps({"type": "FeatureCollection", "features": features}))
    common = dict(image_size=SIZE, min_shards=2, workers=1, split="train:0.5,val:0.25,test:0.25")
    return {
        "folder": RecordsConfig(input="folder", output="out-folder", **common),
        "csv": RecordsConfig(input="labels.csv", output="out-csv", **common),
        "places": RecordsConfig(
            input="places.geojson",
            output="out-places",
            zoom=18,
            source=SourceConfig(tiles="xyz/{z}/{x}/{y}.png"),
            **common,
        ),
    }


def _digest(folder: Path) -> str:
    """The records' bytes, the quarantine list and the manifest without its run record."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.pop("run")
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode())
    for name in ["quarantine.jsonl", *(s["name"] for s in manifest["shards"])]:
        digest.update(name.encode() + (folder / name).read_bytes())
    return digest.hexdigest()[:16]


@pytest.mark.parametrize("kind", list(DIGESTS))
def test_records_of_each_input_kind_are_what_they_always_were(kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = _inputs()[kind]
    manifest = make_records(config)
    assert manifest.records == 11 and manifest.quarantine.count == 1
    assert _digest(Path(config.output)) == DIGESTS[kind]
