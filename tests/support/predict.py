"""What predict tests share: configs, tile areas written to disk, readers of the outputs."""

import csv
from pathlib import Path

import mercantile

from satx.config import PredictConfig, SourceConfig
from tests.support.helpers import (
    encode,
    noise,
    write,
    write_mbtiles,
    write_pmtiles,
)

BBOX = (-74.0800, 4.6000, -74.0775, 4.6025)  # a few zoom-18 tiles in Bogota


def predicted_rows(out):
    return list(csv.DictReader((out / "predictions.csv").open()))


def predicted_errors(out):
    return {r["source_id"]: r["reason"] for r in csv.DictReader((out / "errors.csv").open())}


def predict_config(model, out, tiles="", **kw):
    return PredictConfig.make(
        model=str(model),
        output=str(out),
        source=SourceConfig(tiles=tiles),
        **{"chunk_size": 16, "batch_size": 8, **kw},
    )


def sample_tiles_folder(records):
    from pathlib import Path

    return Path(records).parent / "tiles"


def bbox_tiles(root, sample_dir):
    """Write the bbox's tiles as ROOT/{z}/{x}/{y}.jpg from sample images; one missing, one bad."""
    tiles = list(mercantile.tiles(*BBOX, 18))
    images = sorted(sample_dir.rglob("*.jpg"))
    for i, t in enumerate(tiles):
        write(root / f"{t.z}/{t.x}/{t.y}.jpg", images[i % len(images)].read_bytes())
    missing, corrupt = tiles[1], tiles[2]
    (root / f"18/{missing.x}/{missing.y}.jpg").unlink()
    good = (root / f"18/{corrupt.x}/{corrupt.y}.jpg").read_bytes()
    (root / f"18/{corrupt.x}/{corrupt.y}.jpg").write_bytes(good[: len(good) // 2])
    return tiles, missing, corrupt


def rows_of(summary):
    with open(summary.files["csv"]) as f:
        return list(csv.DictReader(f))


AREA_BBOX = (-74.0800, 4.6000, -74.0760, 4.6040)  # 30 zoom-18 tiles in Bogota

TOKEN, HEADER_TOKEN = "url-s3cr3t-7f3a9", "hdr-s3cr3t-c41d2"


def write_area_tiles(root):
    """AREA_BBOX's tiles as a folder, one missing and one corrupt; and the same as archives."""
    tiles = list(mercantile.tiles(*AREA_BBOX, 18))
    data = {t: encode(noise(500 + i)) for i, t in enumerate(tiles)}
    missing, corrupt = tiles[1], tiles[2]
    del data[missing]
    data[corrupt] = data[corrupt][:200]
    for t, d in data.items():
        write(root / "xyz" / f"{t.z}/{t.x}/{t.y}.jpg", d)
    write_mbtiles(root / "t.mbtiles", data)
    write_pmtiles(root / "t.pmtiles", data)
    return root, tiles, missing, corrupt


def score_table(out: Path) -> tuple[dict, dict]:
    with open(out / "predictions.csv") as f:
        scores = {r["source_id"]: r["score_school"] for r in csv.DictReader(f)}
    with open(out / "errors.csv") as f:
        errors = {r["source_id"]: r["reason"] for r in csv.DictReader(f)}
    return scores, errors


def files_under(*folders: Path):
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                yield path


FILES = ("predictions.csv", "predictions.geojson", "errors.csv")


def beam_config(model, out, **kw):
    return PredictConfig.make(
        model=str(model), output=str(out), **{"chunk_size": 5, "batch_size": 4, **kw}
    )


def same_outputs(a: Path, b: Path):
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    chunks = sorted(p.name for p in (a / "predictions.parquet").glob("*.parquet"))
    assert chunks == sorted(p.name for p in (b / "predictions.parquet").glob("*.parquet"))
    for name in chunks:  # GeoParquet files, when the runs wrote them: the same bytes
        assert (a / "predictions.parquet" / name).read_bytes() == (
            b / "predictions.parquet" / name
        ).read_bytes(), name


def write_xyz_area(sample_records, tmp_path):
    """BBOX's tiles from sample images as TMP/xyz/{z}/{x}/{y}.jpg, one missing, one bad."""
    root = tmp_path / "xyz"
    tiles, missing, corrupt = bbox_tiles(root, sample_tiles_folder(sample_records))
    return root, tiles


def predict_bbox(model, sample_records, tmp_path, **kw):
    """predict over BBOX's tiles (one missing, one corrupt) into TMP/out: (run, out, tiles...)."""
    from satx.predict.run import predict

    root = tmp_path / "xyz"
    tiles, missing, corrupt = bbox_tiles(root, sample_tiles_folder(sample_records))
    out = tmp_path / "out"
    config = predict_config(model, out, bbox=BBOX, zoom=18, tiles=str(root), chunk_size=5, **kw)
    return predict(config), out, tiles, missing, corrupt
