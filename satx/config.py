"""Frozen run configurations; flags are turned into these at the CLI edge only."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any

from satx.errors import InputError
from satx.images import SIZE_MISMATCH_MODES
from satx.records import COMPRESSIONS
from satx.splits import parse_split_spec


@dataclass(frozen=True)
class RecordsConfig:
    """How `make_records` turns labelled tiles into sharded TFRecords."""

    input: str
    output: str
    split: str = "train:0.8,val:0.1,test:0.1"
    split_zoom: int = 12
    seed: int = 42
    shard_size_mb: float = 100.0
    min_shards: int = 8
    on_size_mismatch: str = "reject"
    image_size: int = 256
    overwrite: bool = False
    compression: str = "none"
    workers: int = 0  # 0: one per CPU core
    classes: tuple[str, ...] = ()  # empty: sorted class names found in the input

    def __post_init__(self) -> None:
        problems = []
        if not self.input:
            problems.append("--input is required (folder, CSV file, or gs:// prefix)")
        if not self.output:
            problems.append("--output is required (folder or gs:// prefix)")
        if self.on_size_mismatch not in SIZE_MISMATCH_MODES:
            problems.append(f"--on_size_mismatch must be one of {SIZE_MISMATCH_MODES}")
        if self.compression not in COMPRESSIONS:
            problems.append(f"--compression must be one of {tuple(COMPRESSIONS)}")
        if self.image_size < 8:
            problems.append("--image_size must be at least 8")
        if not 0 <= self.split_zoom <= 30:
            problems.append("--split_zoom must be in 0..30")
        if self.shard_size_mb <= 0 or self.min_shards < 1:
            problems.append("--shard_size_mb must be > 0 and --min_shards >= 1")
        if problems:
            raise InputError("; ".join(problems))
        parse_split_spec(self.split)

    @property
    def worker_count(self) -> int:
        """Processes to write shards with."""
        return self.workers or os.cpu_count() or 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


CACHE_MODES = ("auto", "ram", "none")


@dataclass(frozen=True)
class DataConfig:
    """How training and evaluation read a records folder."""

    records: str
    image_size: int = 0  # model input side; 0 keeps the records' size
    batch_size: int = 32  # global batch
    shuffle_buffer: int = 2048
    cache: str = "auto"  # auto: cache decoded tiles when they fit the RAM budget
    cache_ram_fraction: float = 0.5  # of available memory, for `auto`
    deterministic: bool = False
    max_corrupt_fraction: float = 0.001
    class_weight: tuple[float, ...] = ()  # empty: derived from manifest counts
    resample_to: tuple[float, ...] = ()  # target class mix, e.g. (0.5, 0.5); empty: off
    seed: int = 42

    def __post_init__(self) -> None:
        problems = []
        if not self.records:
            problems.append("--records is required (a folder with manifest.json)")
        if self.cache not in CACHE_MODES:
            problems.append(f"cache must be one of {CACHE_MODES}")
        if self.batch_size < 1 or self.shuffle_buffer < 1:
            problems.append("--batch_size and the shuffle buffer must be >= 1")
        if not 0 < self.cache_ram_fraction <= 1:
            problems.append("cache_ram_fraction must be in (0, 1]")
        if self.resample_to and abs(sum(self.resample_to) - 1) > 1e-6:
            problems.append(f"resample_to {self.resample_to} must add up to 1")
        if problems:
            raise InputError("; ".join(problems))
