"""Shared fixtures: tiny generated tiles (fixed seeds), bad files of every kind, helpers."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TILE = 32  # fixture tile side: small keeps the suite fast


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


@pytest.fixture
def sample_tiles(tmp_path: Path) -> Path:
    """48 tiny sample tiles (32 px, real zoom-18 names) in ROOT/<class>/{x}-{y}-{z}.jpg."""
    from satx.sample import write_sample_tiles

    root = tmp_path / "tiles"
    write_sample_tiles(root, count=48, school_fraction=0.35, seed=3, size=TILE)
    return root


@pytest.fixture
def records_config(tmp_path: Path):
    """Factory for a RecordsConfig with test-friendly defaults (32 px, 2 shards, in-process)."""
    from satx.config import RecordsConfig

    def make(input_path, output=None, **overrides):
        defaults = dict(
            image_size=TILE, min_shards=2, workers=1, split="train:0.7,val:0.15,test:0.15"
        )
        defaults.update(overrides)
        return RecordsConfig(
            input=str(input_path), output=str(output or tmp_path / "records"), **defaults
        )

    return make


def shard_digests(folder: Path) -> dict[str, bytes]:
    """Every shard's bytes by name."""
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.tfrecord*"))}


def read_all(folder: Path):
    """Every example in a records folder, with its split, in shard order."""
    import json

    from satx import records

    manifest = json.loads((folder / "manifest.json").read_text())
    out = []
    for shard in manifest["shards"]:
        for ex in records.iter_shard(str(folder / shard["name"]), manifest["compression"]):
            out.append((shard["split"], ex))
    return manifest, out


def shared_data(name: str) -> Path:
    """A folder of ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (see ../shared/data/README.md)")
    return path


# After TF_CPP_MIN_LOG_LEVEL is set: importing it imports Keras and TensorFlow.
import tests.tiny_backbone  # noqa: E402, F401, I001 - registers the `tiny` test backbone
