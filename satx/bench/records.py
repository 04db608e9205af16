"""make_records benchmark: the whole command, as users run it, against the decode limit."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from satx.bench.input import LIMIT_KEYS
from satx.errors import RecordsError
from satx.io.machine import cores_used
from satx.records.manifest import MANIFEST_NAME, Manifest


def run_make_records(
    folder: str, output: str, image_size: int, extra: tuple[str, ...] = ()
) -> tuple[Manifest, float]:
    """make_records' CLI over `folder` (every tile into `train`): its manifest and wall time."""
    command = [
        sys.executable,
        "-m",
        "satx.records",
        f"--input={folder}",
        f"--output={output}",
        f"--image_size={image_size}",
        "--split=train:1",
        f"--min_shards={2 * cores_used()}",
        "--overwrite",
        *extra,
    ]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    cli_seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RecordsError(f"make_records failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return Manifest.from_json((Path(output) / MANIFEST_NAME).read_bytes(), output), cli_seconds


def bench_records(folder: str, output: str, image_size: int) -> dict:
    """make_records over `folder` (every tile into `train`), run as users run it: its CLI.

    A process of its own matters: make_records never imports TensorFlow, so its workers are
    forked and ready at once, while a process holding TensorFlow (this one) must spawn them.
    `seconds` is the make_records call inside the CLI (from its manifest); `cli_seconds` adds
    the interpreter start-up and imports.
    """
    manifest, cli_seconds = run_make_records(folder, output, image_size)
    tiles = manifest.count("train")
    phases = manifest.run["phases_s"]
    seconds = manifest.run["elapsed_s"]
    return {
        "tiles": tiles,
        "seconds": seconds,
        "cli_seconds": round(cli_seconds, 4),
        "plan_seconds": phases["plan"],
        "write_seconds": phases["write"],
        "make_records_tiles_per_s": round(tiles / seconds, 1),
        "make_records_cli_tiles_per_s": round(tiles / cli_seconds, 1),
        # the write phase alone (validate, encode, write): the rate a long run converges to,
        # less the per-tile share of discovery and hashing
        "make_records_write_tiles_per_s": round(tiles / phases["write"], 1),
        "quarantined": manifest.quarantine.count,
        "changed": sum(manifest.image_changes.values()),
    }


def records_ratio(result: dict, limit: dict) -> dict:
    """The records mode's result with the decode limit and the ratio to it."""
    decode = limit["decode_limit_tiles_per_s"]
    return {
        **result,
        **{key: limit[key] for key in LIMIT_KEYS},
        "make_records_over_decode_limit": round(result["make_records_tiles_per_s"] / decode, 3),
        "make_records_write_over_decode_limit": round(
            result["make_records_write_tiles_per_s"] / decode, 3
        ),
    }
