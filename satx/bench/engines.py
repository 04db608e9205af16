"""The Beam engine against the local one: `python -m satx.bench records|predict --engine=beam`.

On the same tiles in one run, alternating: the local engine, Beam's local runner in this
process (1 worker) and with 2 worker processes, and with `--dask_scheduler` Beam's Dask runner
on a cluster (`local`: a scheduler and 2 single-threaded worker processes started here). Rates
are end to end, each engine's fixed costs included (a records run: the make_records call
inside its CLI, from the manifest; a predict run: the whole call, model loading in every
worker included), medians of `--repeats` with [min, max]. Beam is here for scale-out on a
cluster; on one 2-core machine the figures bound its overhead (the goal: at least 0.6x the
local engine).
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from satx.bench.records import run_make_records
from satx.bench.table import Column, table

BEAM_RUNS = {
    "beam_1_process": "",
    "beam_2_processes": "--direct_num_workers=2 --direct_running_mode=multi_processing",
}


@contextlib.contextmanager
def engine_runs(dask_scheduler: str) -> Iterator[dict[str, str]]:
    """The Beam runs to measure (name -> `--beam_options`), a Dask cluster up while they run."""
    runs = dict(BEAM_RUNS)
    if not dask_scheduler:
        yield runs
        return
    with contextlib.ExitStack() as stack:
        address = dask_scheduler
        if dask_scheduler == "local":
            from distributed import LocalCluster

            cluster = LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            )
            address = stack.enter_context(cluster).scheduler_address
        runs["beam_dask_2_workers"] = f"--runner=DaskRunner --dask_client_address={address}"
        yield runs


def _summary(rates: dict[str, list[float]], tiles: int, repeats: int) -> dict:
    med = {name: statistics.median(v) for name, v in rates.items()}
    out: dict = {"tiles": tiles, "repeats": repeats}
    for name, values in rates.items():
        out[f"{name}_tiles_per_s"] = round(med[name], 1)
        out[f"{name}_spread"] = [round(min(values), 1), round(max(values), 1)]
        if name != "local":
            out[f"{name}_over_local"] = round(med[name] / med["local"], 3)
    return out


def bench_records_engines(
    folder: str, image_size: int, repeats: int, runs: dict[str, str] = BEAM_RUNS
) -> dict:
    """make_records' tiles/s on each engine over `folder` (CLI runs, every tile into `train`)."""
    rates: dict[str, list[float]] = {"local": [], **{name: [] for name in runs}}
    tiles = 0
    with tempfile.TemporaryDirectory(prefix="satx-bench-engines-") as tmp:
        for _ in range(repeats):
            for name in rates:
                extra = () if name == "local" else ("--engine=beam", f"--beam_options={runs[name]}")
                manifest, _ = run_make_records(folder, str(Path(tmp) / name), image_size, extra)
                tiles = manifest.count("train")
                rates[name].append(tiles / manifest.run["elapsed_s"])
    return _summary(rates, tiles, repeats)


def bench_predict_engines(
    export: str,
    data: str,
    batch_size: int,
    chunk_size: int,
    repeats: int,
    runs: dict[str, str] = BEAM_RUNS,
) -> dict:
    """satx.predict's end-to-end tiles/s on each engine over `data`, one exported model."""
    from satx.config import PredictConfig
    from satx.predict.beam import predict_beam
    from satx.predict.run import predict

    rates: dict[str, list[float]] = {"local": [], **{name: [] for name in runs}}
    tiles = 0
    with tempfile.TemporaryDirectory(prefix="satx-bench-engines-") as tmp:
        for repeat in range(repeats):
            for name in rates:
                config = PredictConfig.make(
                    model=export,
                    output=str(Path(tmp) / f"{name}-{repeat}"),  # fresh: a same run resumes
                    input=data,
                    batch_size=batch_size,
                    chunk_size=chunk_size,
                    formats=("csv",),
                    engine="local" if name == "local" else "beam",
                    beam_options=runs.get(name, ""),
                )
                start = time.perf_counter()
                summary = (predict if name == "local" else predict_beam)(config)
                tiles = summary.tiles
                rates[name].append(tiles / (time.perf_counter() - start))
    return _summary(rates, tiles, repeats)


def format_engines(title: str, r: dict) -> str:
    """One engine comparison as plain text."""
    columns = [
        Column("engine", "engine", 22, left=True),
        Column("tiles/s", "tiles_per_s", 9, ",.1f"),
        Column("[min, max]", "spread", 20),
        Column("x local", "over_local", 8, ".2f"),
    ]
    names = ["local", *(n[: -len("_over_local")] for n in r if n.endswith("_over_local"))]
    rows = [
        {
            "engine": name.replace("_", " "),
            "tiles_per_s": r[f"{name}_tiles_per_s"],
            "spread": str(r[f"{name}_spread"]),
            "over_local": r.get(f"{name}_over_local", 1.0),
        }
        for name in names
    ]
    title = f"{title} ({r['tiles']} tiles, end to end, medians of {r['repeats']}):"
    return f"{title}\n{table(rows, columns)}"
