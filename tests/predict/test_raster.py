"""The score raster: a Cloud-Optimized GeoTIFF in EPSG:3857, one pixel per tile."""

from __future__ import annotations

import io
import math

import mercantile
import numpy as np
import pytest

from satx.predict import raster
from tests.support.predict import predict_bbox, predicted_rows

rasterio = pytest.importorskip("rasterio", reason="the score raster needs the satx[geo] extra")
cogeo = pytest.importorskip("rio_cogeo.cogeo", reason="the score raster needs the satx[geo] extra")


def test_each_tiles_pixel_holds_its_score_in_a_valid_cog(tiny_model, sample_records, tmp_path):
    run, out, tiles, missing, corrupt = predict_bbox(
        tiny_model["export"], sample_records, tmp_path, formats=("csv", "raster")
    )
    path = out / "predictions.tif"
    assert run.files["raster"] == str(path)
    valid, errors, warnings = cogeo.cog_validate(str(path))
    assert valid and not errors, (errors, warnings)
    scores = {(int(r["x"]), int(r["y"])): float(r["score_school"]) for r in predicted_rows(out)}
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 3857 and src.count == 1 and src.dtypes[0] == "uint8"
        assert src.nodata == 0 and src.scales == (1 / 254,) and src.offsets == (-1 / 254,)
        assert src.overviews(1) or max(src.width, src.height) <= 512
        band = src.read(1)
        xs, ys = [t.x for t in tiles], [t.y for t in tiles]
        assert (src.width, src.height) == (max(xs) - min(xs) + 1, max(ys) - min(ys) + 1)
        for t in tiles:  # every tile, the edges of the area included
            b = mercantile.xy_bounds(t)
            row, col = src.index((b.left + b.right) / 2, (b.top + b.bottom) / 2)
            value = band[row, col]
            if t in (missing, corrupt):
                assert value == 0  # not scored
            else:
                assert raster.decode(value) == pytest.approx(scores[(t.x, t.y)], abs=0.5 / 254)
                assert value * src.scales[0] + src.offsets[0] == pytest.approx(
                    scores[(t.x, t.y)], abs=0.5 / 254
                )


def test_a_large_raster_is_tiled_with_overviews(tmp_path):
    """2,000 x 1,500 tiles, scores on a diagonal, written through the memory-mapped grid."""
    from satx.io import storage

    store = storage.open_store(str(tmp_path))
    rng = np.random.default_rng(0)
    x0, y0, z = 76_000, 120_000, 18
    names = []
    for k in range(3):
        x = np.arange(2000)[k::3] + x0
        y = (np.arange(2000)[k::3] * 0.75).astype(np.int64) + y0
        score = rng.uniform(0, 1, x.size)
        names.append(f"parts/{k:08d}.raster.npz")
        buf = io.BytesIO()
        np.savez(buf, z=np.array(z), x=x, y=y, v=raster.encode(score))
        store.write_bytes(names[-1], buf.getvalue())
    url = raster.write_raster(store, names)
    with rasterio.open(url) as src:
        assert (src.width, src.height) == (2000, 1500)
        assert src.block_shapes == [(512, 512)] and len(src.overviews(1)) >= 2
        size = 2 * raster.HALF_WORLD_M / 2**z
        assert src.transform.a == pytest.approx(size) and math.isclose(
            src.transform.c, -raster.HALF_WORLD_M + x0 * size
        )
        assert int((src.read(1) > 0).sum()) == 2000
    assert cogeo.cog_validate(url)[0]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("satx-raster-")]


def test_encoding_keeps_zero_for_tiles_not_scored():
    values = raster.encode(np.array([0.0, 0.5, 1.0]))
    assert values.tolist() == [1, 128, 255]
    assert raster.decode(values).tolist() == [0.0, 0.5, 1.0]
    assert np.isnan(raster.decode(np.array([0]))[0])
