"""Predict's output formats: what a fixed set of rows becomes, byte for byte where the bytes
are satx's own (CSV, JSON lines, GeoJSON, errors), by content where a library writes them
(GeoParquet rows, the score raster's pixels). The digests were taken before the output-format
registry existed: a refactor of the writers must not move them."""

from __future__ import annotations

import hashlib
import json

import mercantile
import numpy as np
import pytest

from satx.io import storage
from satx.predict.outputs import Labeller, PredictionOutput, format_rows
from satx.predict.result import iter_records
from satx.tiles.refs import TileRef

CLASSES = ("other", "school")
FORMATS = ("csv", "jsonl", "geojson", "parquet", "raster")
DIGESTS = {
    "predictions.csv": "0fcbff30a2d30725",
    "predictions.jsonl": "f5338dcfdedf065b",
    "predictions.geojson": "7e5ba2dc5dd1334a",
    "errors.csv": "7f3e1ee7df929304",
    "parquet rows": "ec22de020d485e7b",
    "raster pixels": "b713ed683bfe5e9f",
}


def _chunks():
    """Three chunks of a 12x12 block at zoom 18, with tiles known only by path and errors."""
    rng = np.random.default_rng(7)
    tiles = [mercantile.Tile(77_000 + i, 120_000 + j, 18) for j in range(12) for i in range(12)]
    refs = [TileRef(f"{t.z}/{t.x}/{t.y}.jpg", t) for t in tiles]
    refs[5] = TileRef("scenes/odd name, with comma.jpg", None)
    scores = rng.uniform(0, 1, len(refs)).round(6)
    probs = np.stack([1 - scores, scores], axis=1)
    for k, part in enumerate((slice(0, 50), slice(50, 100), slice(100, None))):
        yield k, refs[part], scores[part], probs[part]


def _write(root):
    labeller = Labeller.make(list(CLASSES), "", 0.5)
    out = PredictionOutput(str(root), FORMATS, CLASSES)
    out.start({"test": "formats"}, overwrite=False)
    kept = 0
    for k, refs, scores, probs in _chunks():
        labels, _ = labeller.label_score(probs)
        texts = dict(format_rows(refs, labels, scores, probs, CLASSES, FORMATS))
        errors = f'{refs[0].source_id},18,1,2,missing,"no tile, 404"\n' if k == 1 else ""
        out.write_chunk(k, texts, errors, {"kept": len(refs)})
        kept += len(refs)
    return out.merge(3, kept)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _raster_pixels(path: str) -> bytes:
    import rasterio

    with rasterio.open(path) as src:
        return src.read().tobytes() + json.dumps(list(src.transform)[:6]).encode()


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # rio-cogeo
def test_the_formats_write_what_they_always_wrote(tmp_path):
    files = _write(tmp_path / "out")
    assert set(files) == {*FORMATS, "errors"}
    store = storage.open_store(str(tmp_path / "out"))
    got = {name: _digest(store.read_bytes(name)) for name in list(DIGESTS)[:4]}
    rows = list(iter_records(str(tmp_path / "out"), "predictions.parquet"))
    got["parquet rows"] = _digest(json.dumps(rows, sort_keys=True).encode())
    got["raster pixels"] = _digest(_raster_pixels(files["raster"]))
    assert got == DIGESTS
    # every row format holds the same rows
    csv_rows = list(iter_records(str(tmp_path / "out"), "predictions.csv"))
    assert len(csv_rows) == len(rows) == 144
    assert [r["source_id"] for r in csv_rows] == [r["source_id"] for r in rows]


def test_one_spec_is_a_whole_format(tmp_path, monkeypatch):
    """A tab-separated format added as one spec is written, merged, owned and read back."""
    from satx.predict import formats
    from satx.predict.formats import FORMATS, OutputFormat

    def tsv(rows):
        return "".join(
            f"{t.source_id}\t{s:.6f}\n" for t, s in zip(rows.tiles, rows.scores, strict=True)
        )

    def read(root, name):
        text = storage.open_store(root).read_bytes(name).decode()
        yield from (
            {"source_id": a, "score": b}
            for a, b in (r.split("\t") for r in text.split("\n")[1:] if r)
        )

    spec = OutputFormat(
        "tsv",
        formats.PARTS + "tsv",
        "predictions.tsv",
        tsv,
        formats._text_merge(lambda m: "source_id\tscore\n"),
        read,
        read_order=5,
        one_file=True,
    )
    monkeypatch.setitem(FORMATS, "tsv", spec)
    labeller = Labeller.make(list(CLASSES), "", 0.5)
    out = PredictionOutput(str(tmp_path), ("tsv",), CLASSES)
    out.start({"test": "tsv"}, overwrite=False)
    for k, refs, scores, probs in _chunks():
        labels, _ = labeller.label_score(probs)
        out.write_chunk(k, format_rows(refs, labels, scores, probs, CLASSES, ("tsv",)), "", {})
    files = out.merge(3, 144)
    assert files["tsv"].endswith("predictions.tsv")
    rows = list(iter_records(str(tmp_path), "predictions.tsv"))
    assert len(rows) == 144 and rows[5]["source_id"] == "scenes/odd name, with comma.jpg"


def test_names_layout_and_reading_order_derive_from_the_specs():
    from satx.config import PREDICT_FORMATS
    from satx.predict.formats import FORMATS, ROW_FORMATS
    from satx.predict.result import LAYOUT, predictions_name

    assert PREDICT_FORMATS == tuple(FORMATS) == ("geojson", "csv", "jsonl", "parquet", "raster")
    assert ROW_FORMATS == ("parquet", "csv", "jsonl", "geojson")
    assert {"predictions.parquet/", "predictions.tif", "predictions.csv"} <= set(LAYOUT.owned)
    assert FORMATS["parquet"].part_name(12) == "predictions.parquet/chunk-00000012.parquet"
    assert FORMATS["raster"].part_name(12) == "parts/00000012.raster.npz"
    assert predictions_name("geojson") == "predictions.geojson"
