"""`satx.bench` modes on tiny sizes: every field present, every rate positive, ratios consistent."""

import json

import pytest

from satx.bench.run import format_report, run_bench
from satx.config import COUNTRY_TILES, BenchConfig

TINY = BenchConfig(
    num_tiles=96,
    image_size=32,
    backbones=("tiny",),
    batch_size=8,
    steps=2,
    predict_batch_size=16,
    predict_tiles=40,
    fetch_thread_counts=(4, 16),
    repeats=2,
    train_seconds=0.1,
    input_seconds=0.1,
)


def _ratio(result, num, den, key):
    assert result[key] == pytest.approx(result[num] / result[den], rel=0.01, abs=2e-3), key


def test_every_mode_reports_positive_consistent_rates(tmp_path):
    result = run_bench(("input", "records", "train", "predict", "fetch"), TINY)
    json.dumps(result)  # what --json_out writes
    i = result["input"]
    for key in (
        "decode_limit_tiles_per_s",
        "satx_tiles_per_s",
        "satx_warm_cache_tiles_per_s",
        "keras_directory_tiles_per_s",
    ):
        assert i[key] > 0, key
    assert i["decode_limit_tiles_per_s"] == pytest.approx(
        i["decode_single_thread_tiles_per_s"] * i["cores"], rel=0.01
    )
    _ratio(i, "satx_tiles_per_s", "decode_limit_tiles_per_s", "satx_over_decode_limit")
    for spread, median in (
        ("satx_spread", "satx_tiles_per_s"),
        ("decode_single_thread_spread", "decode_single_thread_tiles_per_s"),
        ("satx_warm_cache_spread", "satx_warm_cache_tiles_per_s"),
    ):
        low, high = i[spread]
        assert 0 < low <= i[median] <= high, spread
    _ratio(i, "satx_tiles_per_s", "keras_directory_tiles_per_s", "satx_over_keras_directory")
    _ratio(
        i, "satx_warm_cache_tiles_per_s", "decode_limit_tiles_per_s", "warm_cache_over_decode_limit"
    )
    # the warm cache's bound: TensorFlow's batch copies and the memory bandwidth
    low, high = i["copy_tf_gather_spread"]
    assert 0 < low <= i["copy_tf_gather_tiles_per_s"] <= high
    assert i["copy_memcpy_tiles_per_s"] > 0
    tile_bytes = 32 * 32 * 3
    assert i["copy_memcpy_gb_per_s"] == pytest.approx(
        i["copy_memcpy_tiles_per_s"] * tile_bytes / 1e9, rel=0.01, abs=0.01
    )
    _ratio(
        i, "satx_warm_cache_tiles_per_s", "copy_tf_gather_tiles_per_s", "warm_cache_over_tf_gather"
    )
    _ratio(i, "satx_warm_cache_tiles_per_s", "copy_memcpy_tiles_per_s", "warm_cache_over_memcpy")
    assert i["copy_numpy_gather_gb_per_s"] == pytest.approx(
        i["copy_numpy_gather_tiles_per_s"] * tile_bytes / 1e9, rel=0.01, abs=0.01
    )
    _ratio(
        i,
        "satx_warm_cache_tiles_per_s",
        "copy_numpy_gather_tiles_per_s",
        "warm_cache_over_numpy_gather",
    )
    r = result["records"]
    assert r["tiles"] == 96 and r["quarantined"] == 0 and r["make_records_tiles_per_s"] > 0
    assert r["make_records_tiles_per_s"] == pytest.approx(r["tiles"] / r["seconds"], rel=0.02)
    _ratio(
        r, "make_records_tiles_per_s", "decode_limit_tiles_per_s", "make_records_over_decode_limit"
    )
    assert 0 < r["write_seconds"] < r["seconds"] < r["cli_seconds"]
    assert 0 < r["plan_seconds"] < r["seconds"]
    assert r["make_records_cli_tiles_per_s"] == pytest.approx(
        r["tiles"] / r["cli_seconds"], rel=0.02
    )
    assert r["make_records_write_tiles_per_s"] == pytest.approx(
        r["tiles"] / r["write_seconds"], rel=0.02
    )
    _ratio(
        r,
        "make_records_write_tiles_per_s",
        "decode_limit_tiles_per_s",
        "make_records_write_over_decode_limit",
    )
    t = result["train"]["tiny"]
    _ratio(
        t,
        "augmented_records_img_per_s",
        "augmented_synthetic_img_per_s",
        "augmented_records_over_synthetic",
    )
    verdicts = ("input-bound", "not input-bound", "not input-bound (within noise)")
    assert t["verdict"] in verdicts and t["repeats"] == 2
    assert t["augmented_timed_steps"] >= 2
    low, high = t["augmented_records_spread"]
    assert 0 < low <= t["augmented_records_img_per_s"] <= high
    p = result["predict"]["tiny"]
    assert p["tiles"] == 40 and p["steady_tiles_per_s"] > 0 and p["model_only_tiles_per_s"] > 0
    _ratio(p, "steady_tiles_per_s", "model_only_tiles_per_s", "steady_over_model_only")
    assert p["projected_seconds"] == pytest.approx(
        COUNTRY_TILES / p["steady_tiles_per_s"], rel=0.01
    )
    f = result["fetch"]
    assert f["tiles"] == 96 and f["folder_read_tiles_per_s"] > 0
    for n, row in f["by_threads"].items():
        _ratio(row, "http_latency_tiles_per_s", "http_0ms_tiles_per_s", "latency_over_0ms")
        # 50 ms a request: N threads cannot beat N / 0.05 s (within the timer's noise)
        assert row["http_latency_tiles_per_s"] <= row["cap_threads_over_latency"] * 1.05, n
    _ratio(f, "predict_http_tiles_per_s", "predict_folder_tiles_per_s", "predict_http_over_folder")
    report = format_report(result)
    for words in ("decode limit", "make_records", "training", "prediction", "HTTP tile fetching"):
        assert words in report


def test_timed_steps_cover_the_minimum_time():
    from satx.bench.train import timed_steps

    assert timed_steps(rate=4.0, steps=5, batch=8, min_seconds=2.0) == 5  # slow model: 10 s
    assert timed_steps(rate=216.0, steps=5, batch=8, min_seconds=2.0) == 54  # 54 x 8 / 216 = 2 s


@pytest.mark.parametrize(
    "ratio, records, synthetic, verdict",
    [
        (0.99, [9.0, 10.0], [9.5, 10.5], "not input-bound"),
        (0.93, [9.0, 10.0], [9.5, 10.5], "not input-bound (within noise)"),
        (0.80, [7.0, 8.0], [9.5, 10.5], "input-bound"),
    ],
)
def test_train_verdict_weighs_the_spread(ratio, records, synthetic, verdict):
    from satx.bench.train import _verdict

    result = {
        "augmented_records_over_synthetic": ratio,
        "augmented_records_spread": records,
        "augmented_synthetic_spread": synthetic,
    }
    assert _verdict(result) == verdict


def test_bench_train_reports_consistent_rates(sample_records):
    from satx.bench.train import bench_train, format_table

    result = bench_train(
        sample_records, "tiny", 32, batch_size=8, steps=3, repeats=1, min_seconds=0.1
    )
    for name in ("augmented", "no_augment"):
        rec, syn = result[f"{name}_records_img_per_s"], result[f"{name}_synthetic_img_per_s"]
        assert rec > 0 and syn > 0
        assert result[f"{name}_records_over_synthetic"] == pytest.approx(rec / syn, abs=2e-3)
    assert result["verdict"] in ("input-bound", "not input-bound", "not input-bound (within noise)")
    assert "tiny" in format_table([result])


def test_sites_bench_groups_synthetic_hits_in_a_child_process():
    from satx.bench.sites import bench_sites, format_sites, synthetic_hits

    x, y, score = synthetic_hits(5_000, seed=2)
    assert x.size == 5_000 and len(set(zip(x.tolist(), y.tolist(), strict=True))) == 5_000
    assert score.min() >= 0.5 and score.max() <= 1.0
    r = bench_sites(5_000, known=200)
    assert r["hits"] == 5_000 and 0 < r["sites"] < 5_000 and r["biggest_site"] > 6
    assert r["peak_rss_mb"] > 50 and r["hits_per_s"] > 0
    assert set(r["stage_seconds"]) == {"read", "group", "write", "curve"}
    assert r["recovered_share"] == 1.0  # every known school sits on a hit
    assert "5,000 hits" in format_sites(r)


def test_outputs_bench_times_every_format_and_a_colombia_sized_raster(monkeypatch):
    pytest.importorskip("rasterio", reason="the score raster needs the satx[geo] extra")
    from satx.bench import outputs

    formats = outputs.bench_formats(3000)
    assert set(formats["seconds"]) == {"csv", "geojson", "jsonl", "parquet", "raster"}
    assert formats["over_csv"]["csv"] == 1.0 and all(v > 0 for v in formats["seconds"].values())
    monkeypatch.setattr(outputs, "SIDE", 600)  # the same code on a smaller country
    r = outputs.bench_raster(5000)
    assert r["pixels"] == "600 x 600" and r["cog_bytes"] > 1000 and r["seconds"] > 0
    assert "score raster 600 x 600 px" in outputs.format_outputs({"formats": formats, "raster": r})


def test_mask_bench_turns_footprints_into_tiles_in_a_child_process():
    pytest.importorskip("pyarrow", reason="the mask bench writes GeoParquet (satx[geo])")
    from satx.bench.mask import bench_mask, format_mask

    r = bench_mask(20_000)
    assert r["footprints"] == 20_000 and r["tiles"] > 1000 and r["peak_rss_mb"] > 50
    assert "20,000 footprints" in format_mask(r)


def test_fetch_from_a_scene_against_a_folder_and_http():
    """`satx.bench fetch --tiles=mosaic`: the bench's tiles as a COG, cut three ways."""
    import dataclasses

    pytest.importorskip("rio_tiler", reason="scenes need the satx[geo] extra")
    config = dataclasses.replace(TINY, scene="mosaic", num_tiles=16, predict_tiles=16, repeats=1)
    result = run_bench(("fetch",), config)["scene_fetch"]
    assert (result["tiles"], result["zoom"]) == (16, 18)
    rows = {row["source"]: row for row in result["rows"]}
    assert list(rows) == ["folder", "local", "http"]
    for row in rows.values():
        assert row["tiles_per_s"] > 0 and row["predict_tiles_per_s"] > 0
        folder = rows["folder"]
        assert row["over_folder"] == pytest.approx(
            row["tiles_per_s"] / folder["tiles_per_s"], rel=0.01, abs=2e-3
        )
    assert "tiles cut from mosaic" in format_report({"scene_fetch": result})


def test_context_windows_and_points():
    """`satx.bench context`: --context=2 and --localize=cam against single tiles."""
    import dataclasses

    config = dataclasses.replace(TINY, num_tiles=16, predict_tiles=36, repeats=1)
    result = run_bench(("context",), config)["context"]
    rows = {row["run"]: row for row in result["rows"]}
    assert list(rows) == ["tiles", "windows", "cam"] and result["tiles"] == 36
    assert all(row["tiles_per_s"] > 0 for row in rows.values())
    assert rows["windows"]["over_tiles"] == pytest.approx(
        rows["windows"]["tiles_per_s"] / rows["tiles"]["tiles_per_s"], rel=0.01
    )
    # 36 tiles in chunks of 16 (the batch): more windows and reads per tile than a big chunk's
    assert 1 < result["windows_per_tile"] < 4 and 1 < result["reads_per_tile"] < 4
    assert "windows/s" in format_report({"context": result})


@pytest.mark.slow
def test_straddle_builds_objects_across_tile_edges_and_trains_both_ways(tmp_path):
    """`satx.bench straddle` on a small made-up tree: the map, then tiles against windows."""
    import mercantile
    import numpy as np
    from PIL import Image

    from satx.bench.fetch import ORIGIN
    from satx.bench.straddle import bench_straddle, format_straddle
    from tests.support.helpers import encode, noise

    data = tmp_path / "eurosat"
    for k, name in enumerate(("Industrial", "Forest")):
        (data / name).mkdir(parents=True)
        for i in range(60):  # enough that few tiles of the map repeat an image
            image = noise(100 * k + i, (32, 32, 3)) // (4 if name == "Forest" else 1)
            (data / name / f"{name}_{i}.jpg").write_bytes(encode(image))
    recipe = tmp_path / "recipe.json"
    train = {"model": {"backbone": "tiny", "weights": "none", "dense_units": 8}}
    train.update(n_epo_phase1=1, n_epo_phase2=1, per_replica_batch_size=8, mixed_precision="off")
    recipe.write_text(json.dumps({"about": {}, "train": train}))
    result = bench_straddle(str(data), str(recipe), str(tmp_path / "work"), corners=16)
    assert [(r["task"], r["context"]) for r in result["rows"]] == [
        ("plain", 1),
        ("plain", 2),
        ("decoy", 1),
        ("decoy", 2),
    ]
    assert all(r["test_places"] >= 1 for r in result["rows"])
    assert all(r["roc_auc"] is not None for r in result["rows"])  # both labels held out
    # the corner of tile (1, 1) holds the first object: a quarter in each tile around it
    tiles = tmp_path / "work" / "plain" / "tiles" / str(ORIGIN.z)
    side, quarter = 32, 32 * 3 // 8 // 2
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        t = mercantile.Tile(ORIGIN.x + dx, ORIGIN.y + dy, ORIGIN.z)
        pixels = np.asarray(Image.open(tiles / str(t.x) / f"{t.y}.png"))
        corner = pixels[
            (side - quarter if dy == 0 else 0) : (side if dy == 0 else quarter),
            (side - quarter if dx == 0 else 0) : (side if dx == 0 else quarter),
        ]
        assert corner.mean() > 80  # the bright Industrial noise, not the dark Forest
    assert "objects across tile edges" in format_straddle(result)
