"""The config of one prediction run, in parts: what it scores, with which model, what it writes.

Flags and overrides stay flat (`--zoom`, `--model`, `--formats`); see `satx.config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from satx.config.base import (
    COUNTRY_TILES,
    ENGINES,
    MAX_IMAGERY_ZOOM,
    PRECISIONS,
    PREDICT_FORMATS,
    PREDICT_STRATEGIES,
    RUNTIMES,
    TTA_MODES,
    Config,
    knob,
)
from satx.config.scoring import BATCH_HELP, MODEL_HELP, RUNTIME_HELP, TTA_HELP
from satx.config.source import BEAM_OPTIONS_HELP, ENGINE_HELP, OVERWRITE_HELP, SourceConfig


@dataclass(frozen=True)
class PredictInputs(Config):
    """What a predict run scores: a listing or records (`--input`), or an area of a tile source."""

    input: str = knob(
        "", "Records folder, folder of tiles named z/x/y (or x-y-z, z_x_y), or a CSV list."
    )
    bbox: tuple[float, ...] = knob((), "W,S,E,N in degrees: score every tile of this box.")
    aoi: str = knob(
        "", "GeoJSON of (Multi)Polygons (WGS84): score every tile of --zoom that overlaps them."
    )
    zoom: int = knob(
        0,
        "Zoom of --bbox or --aoi tiles, and of lon,lat CSV rows; with scenes as --tiles, 0 or "
        "native: the zoom closest to the scenes' ground resolution.",
        at_least=0,
        at_most=MAX_IMAGERY_ZOOM,
        words={"native": 0},
    )
    mask: str = knob(
        "",
        "With --bbox/--aoi: score only tiles near built-up features: building footprints or "
        "settlements (GeoParquet, FlatGeobuf, GeoJSON) or a built-up raster (GeoTIFF).",
    )
    mask_buffer_m: float = knob(
        150.0, "Keep tiles within this many metres of a --mask feature.", at_least=0
    )
    mask_threshold: float = knob(
        1.0, "A --mask raster's pixels at or above this are built up (GHSL: e.g. 1).", above=0
    )
    context: int = knob(
        1,
        "Score overlapping CxC windows of tiles (stride one tile; 2: 'supertiles', for a model "
        "trained on make_records --context=2); each tile's score is the max of its windows'.",
        at_least=1,
        at_most=4,
    )
    source: SourceConfig = field(default_factory=SourceConfig)  # --bbox, --aoi, z,x,y CSVs
    split: str = knob("", "Records input: split(s) a+b; default every split.")
    read_threads: int = knob(16, "Threads reading tile files.")

    def problems(self) -> list[str]:
        """A mask needs an area; so do windows (their neighbours come from the tile source)."""
        if self.mask and not (self.bbox or self.aoi):
            return ["--mask keeps tiles of an area: give --bbox or --aoi with it"]
        if self.context > 1 and self.input:
            return [
                f"--context={self.context} scores the windows of an area: give --bbox, --aoi or "
                "scenes as --tiles, not --input"
            ]
        return []

    @property
    def where(self) -> str:
        """The input as a person would name it."""
        return self.aoi or (f"bbox {list(self.bbox)}" if self.bbox else self.input)


@dataclass(frozen=True)
class PredictScoring(Config):
    """The model, where it runs, and how its probabilities become a score and a label."""

    model: str = knob("", MODEL_HELP)
    class_names: tuple[str, ...] = knob((), "Class names of a bare .keras model.")
    positive_class: str = knob(
        "", "Class whose probability is the score (binary: the second class)."
    )
    threshold: float = knob(0.5, "Binary: score at which the label flips.")
    threshold_from: str = knob(
        "", "Binary: use the threshold an evaluate report.json chose (e.g. precision@0.9 on val)."
    )
    batch_size: int = knob(128, BATCH_HELP, at_least=1)
    tta: str = knob("none", TTA_HELP, choices=TTA_MODES)
    localize: str = knob(
        "none",
        "cam: give each hit a point inside its tile (the peak of the class-activation map of "
        "the export's serving_cam signature), after scoring; rows gain peak_lon, peak_lat.",
        choices=("none", "cam"),
    )
    runtime: str = knob("auto", RUNTIME_HELP, choices=("auto", *RUNTIMES))
    strategy: str = knob("auto", "Distribution strategy.", choices=PREDICT_STRATEGIES)
    cpu_devices: int = knob(0, "Split the CPU into N logical devices.")
    mixed_precision: str = knob("auto", "Policy (.keras models).", choices=PRECISIONS)


@dataclass(frozen=True)
class PredictOutputs(Config):
    """What a predict run writes, and where."""

    output: str = knob("", "Output folder or gs:// prefix.")
    formats: tuple[str, ...] = knob(
        ("geojson", "csv"),
        "Any of geojson, csv, jsonl (merged when the run ends: small runs), parquet "
        "(GeoParquet, a file per chunk: any size) and raster (a score COG, a pixel per tile).",
        choices=PREDICT_FORMATS,
    )
    min_score: float = knob(0.0, "Keep only tiles scoring at least this (errors are all kept).")
    list_missing: bool = knob(
        True, "List missing tiles in errors.csv (--nolist_missing: only count them)."
    )
    chunk_size: int = knob(4096, "Tiles per resumable output chunk.", at_least=1)
    overwrite: bool = knob(False, OVERWRITE_HELP)

    def problems(self) -> list[str]:
        """Some format chosen."""
        if not self.formats:
            return [f"--formats: choose from {', '.join(PREDICT_FORMATS)}"]
        return []


@dataclass(frozen=True)
class PredictConfig(Config):
    """One prediction run: its inputs, the model's scoring, its outputs, and the engine.

    Flags and overrides are flat (`--zoom`, `--model`, `--formats`); `PredictConfig.make(...)`
    builds one from flat names. A function that needs one part takes that part.
    """

    inputs: PredictInputs = field(default_factory=PredictInputs)
    scoring: PredictScoring = field(default_factory=PredictScoring)
    outputs: PredictOutputs = field(default_factory=PredictOutputs)
    project_tiles: int = knob(
        COUNTRY_TILES, "Print the time a run of this many tiles would take (default: Colombia)."
    )
    dry_run: bool = knob(
        False, "Print the exact tile count, the input and the projected time; fetch nothing."
    )
    engine: str = knob("local", ENGINE_HELP, choices=ENGINES)
    beam_options: str = knob("", BEAM_OPTIONS_HELP)

    def problems(self) -> list[str]:
        """Model and output given (a dry run writes nothing)."""
        if not self.scoring.model or not (self.outputs.output or self.dry_run):
            return ["--model and --output are required"]
        return []

    def identity(self) -> dict[str, Any]:
        """The settings that decide what the output holds; a resumed run must match them."""
        o, s = self.outputs, self.scoring
        return {
            "formats": o.formats,
            "min_score": o.min_score,
            "threshold": s.threshold,
            "threshold_from": s.threshold_from,
            "positive_class": s.positive_class,
            "chunk_size": o.chunk_size,
            "list_missing": o.list_missing,
            "tta": s.tta,
            **({"localize": s.localize} if s.localize != "none" else {}),
        }
