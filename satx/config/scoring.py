"""The configs of the stages that use a trained model: evaluate, export, sites, review, bench.

See `satx.config` for how they nest and how flags and overrides reach them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from satx.config.base import (
    ENGINES,
    EXPORT_RUNTIMES,
    RUNTIMES,
    TTA_MODES,
    Config,
    knob,
)
from satx.config.source import SourceConfig

MODEL_HELP = "Export folder (or one version of it) or .keras."
BATCH_HELP = "Tiles per model call (over all devices)."
TTA_HELP = "Test-time augmentation: dihedral averages over the tile's 8 symmetries (8x the work)."
RUNTIME_HELP = (
    "Inference runtime: tf, one satx.export wrote (onnx, openvino, litert; -int8, openvino-bf16), "
    "or auto: the fastest the export measured and allows, else tf."
)


@dataclass(frozen=True)
class EvaluateConfig(Config):
    """Score one split of a records folder with a trained model."""

    model: str = knob("", MODEL_HELP)
    records: str = knob("", "Records folder holding the split.")
    output: str = knob("", "Folder for report.json and report.md.")
    split: str = knob("test", "Split to evaluate (a+b for a union).")
    threshold: str = knob(
        "0.5",
        "Binary: a number, youden, topleft, f2 (max F2, recall-weighted), precision@P, recall@R, "
        "budget@N (at most N hits per million tiles) or budget@Nsites (at most N sites per "
        "million tiles); modes are chosen on --threshold_split and applied to --split.",
    )
    threshold_split: str = knob(
        "val", "Split a threshold mode is chosen on (when the records have it)."
    )
    scores_out: str = knob("", "CSV with one row per tile.")
    batch_size: int = knob(64, BATCH_HELP)
    tta: str = knob("none", TTA_HELP, choices=TTA_MODES)
    runtime: str = knob("auto", RUNTIME_HELP, choices=("auto", *RUNTIMES))

    def problems(self) -> list[str]:
        """The model, the records and the output are required."""
        if not (self.model and self.records and self.output):
            return ["--model, --records and --output are required"]
        return []


@dataclass(frozen=True)
class ExportConfig(Config):
    """Convert an export for other inference runtimes, optionally in int8, and check them."""

    model: str = knob("", "Export folder (satx.train's export/: its newest version) or a version.")
    to: tuple[str, ...] = knob(EXPORT_RUNTIMES, "Runtimes to convert for.", choices=EXPORT_RUNTIMES)
    int8: bool = knob(
        False, "Also int8 models: static post-training quantisation (per-channel weights)."
    )
    calibration: str = knob(
        "",
        "Records folder: int8 calibration tiles (--calibration_split) and the agreement check "
        "(--agreement_split); without it float models are checked on random tiles.",
    )
    calibration_split: str = knob("val", "Split int8 models are calibrated on.")
    calibration_tiles: int = knob(256, "Tiles of it used to calibrate.", at_least=8)
    agreement_split: str = knob("test", "Split each runtime is compared with TensorFlow on.")
    agreement_tiles: int = knob(0, "Compare on at most this many of its tiles (0: all).")
    threshold: float = knob(0.5, "Binary: the decision whose flips are counted.")
    threshold_from: str = knob("", "Binary: the threshold an evaluate report.json chose.")
    max_auc_drop: float = knob(
        0.005,
        "An int8 or bf16 model whose ROC AUC drops more than this is not picked by "
        "--runtime=auto (it can still be asked for by name).",
        at_least=0,
    )
    float_tolerance: float = knob(
        1e-4, "A float model whose scores differ from TensorFlow's by more is not picked by auto."
    )
    batch_size: int = knob(32, BATCH_HELP, at_least=1)

    def problems(self) -> list[str]:
        """A model, a runtime, and records to calibrate int8 on."""
        problems = []
        if not self.model:
            problems.append("--model is required (an export folder made by satx.train)")
        if not self.to:
            problems.append(f"--to: choose from {', '.join(EXPORT_RUNTIMES)}")
        if self.int8 and not self.calibration:
            problems.append("--int8 needs --calibration=RECORDS (tiles to calibrate on)")
        if self.threshold_from and self.threshold != 0.5:
            problems.append("--threshold and --threshold_from: give one, not both")
        return problems


@dataclass(frozen=True)
class BenchConfig(Config):
    """What `satx.bench` measures and on what."""

    data: str = knob("", "Tile folder to measure on; default: generated tiles.")
    image_size: int = knob(256, "Tile side in pixels (records are made at this size).")
    num_tiles: int = knob(
        4096, "Generated tiles (more than the 2048-tile shuffle buffer; predict: --predict_tiles)."
    )
    backbones: tuple[str, ...] = knob(
        (), "Backbones to measure; default every listed one.", flag="backbone"
    )
    batch_size: int = knob(8, "train: batch size.")
    steps: int = knob(5, "train: timed steps per measurement, at least.")
    train_seconds: float = knob(2.0, "train: each timed measurement lasts at least this long.")
    input_seconds: float = knob(
        2.0, "input: each timed measurement runs whole passes for at least this long."
    )
    predict_batch_size: int = knob(32, "predict: batch size.")
    predict_tiles: int = knob(512, "predict: tiles scored per backbone.")
    runtimes: tuple[str, ...] = knob(
        ("tf",),
        "predict: inference runtimes to compare (tf, onnx, openvino, openvino-bf16, litert), "
        "each converted by satx.export; with --int8 also their int8 models.",
        choices=RUNTIMES,
        flag="runtime",
    )
    int8: bool = knob(False, "predict --runtime: also the runtimes' int8 models.")
    model: str = knob(
        "",
        "predict --runtime: also convert this trained export and report each runtime's "
        "agreement (ROC AUC, decisions flipped) on --records' test split.",
    )
    masked_tiles: int = knob(
        0, "predict: also project a country run over this many tiles (what a --mask keeps)."
    )
    fetch_thread_counts: tuple[int, ...] = knob(
        (32, 128), "fetch: concurrent requests to measure with."
    )
    fetch_latency_ms: float = knob(50.0, "fetch: latency the tile server adds per request.")
    scene: str = knob(
        "",
        "fetch: tiles cut from this scene (a GeoTIFF/COG; `mosaic`: the bench's tiles written "
        "as one) against a folder of the same tiles and the scene over HTTP.",
        flag="tiles",
    )
    engine: str = knob(
        "local", "beam: records and predict also on Beam (1 and 2 processes).", choices=ENGINES
    )
    dask_scheduler: str = knob(
        "",
        "beam: also on a Dask cluster, this scheduler (tcp://HOST:8786), or `local` for one "
        "started here (a scheduler and 2 worker processes on loopback).",
    )
    repeats: int = knob(3, "Alternating measurements behind each headline ratio (medians).")
    records: str = knob(
        "", "tune_memory: records folder; predict --model: the records it is checked on."
    )
    trials: int = knob(20, "tune_memory: trials in the search.")
    recipe: str = knob("", "quality: a recipe file (configs/*.json).")
    train_share: float = knob(
        1.0,
        "quality: train on this share of the training split (label efficiency); validation "
        "and test stay the same tiles.",
        above=0,
        at_most=1,
    )
    hits: int = knob(
        1_000_000,
        "sites: synthetic hit tiles to group; outputs: rows to write; mask: footprints.",
        at_least=1,
    )
    known_schools: int = knob(10_000, "sites: known schools to match them against.", at_least=0)
    workdir: str = knob("", "quality: keep records, runs and reports here (default: a temp dir).")
    json_out: str = knob("", "Write the results as JSON here.")


@dataclass(frozen=True)
class SitesConfig(Config):
    """A prediction run's hit tiles -> candidate sites, matched against known ones."""

    predictions: str = knob("", "A finished satx.predict output folder (or gs:// prefix).")
    output: str = knob("", "Folder for sites.csv/.geojson, site_tiles.csv and the report.")
    min_score: float = knob(
        -1.0, "Score at which a tile is a hit (below 0: the predictions' threshold)."
    )
    threshold_from: str = knob("", "Use the threshold an evaluate report.json chose.")
    positive_class: str = knob("", "Class whose score makes hits (default: the predictions').")
    connectivity: int = knob(
        8, "8: hits touching at an edge or a corner join one site; 4: at an edge only."
    )
    max_gap: int = knob(
        0, "Also join hits up to this many tiles apart (a gap without hits).", at_least=0, at_most=8
    )
    max_sites: int = knob(
        0, "Raise the threshold until at most this many sites remain (0: no limit).", at_least=0
    )
    known: str = knob("", "Known schools: GeoJSON points/polygons, or CSV with lon,lat[,id].")
    known_radius_m: float = knob(
        150.0, "A site within this many metres of a known school is known.", above=0
    )
    polygons: bool = knob(
        True, "Also write sites_polygons.geojson (each site's tiles as one shape)."
    )
    overwrite: bool = knob(False, "Replace an output folder that holds other sites.")

    def problems(self) -> list[str]:
        """Predictions and output given; a valid connectivity; one threshold source."""
        problems = []
        if not (self.predictions and self.output):
            problems.append("--predictions and --output are required")
        if self.connectivity not in (4, 8):
            problems.append(f"--connectivity={self.connectivity}: use 4 or 8")
        if self.threshold_from and self.min_score >= 0:
            problems.append("--min_score and --threshold_from: give one threshold, not both")
        return problems


REVIEW_ORDERS = ("score", "uncertain", "random")


@dataclass(frozen=True)
class ReviewConfig(Config):
    """The mappers' review of one prediction run (`satx.review`), or an export of its labels."""

    predictions: str = knob("", "A finished satx.predict output folder (or gs:// prefix).")
    sites: str = knob(
        "", "A finished satx.sites output: review its sites (yes / unrecognized / no), not tiles."
    )
    source: SourceConfig = field(default_factory=SourceConfig)  # where the tiles' images are
    db: str = knob("", "The review's SQLite file (created; reopened to continue).")
    host: str = knob("127.0.0.1", "Address to listen on; off loopback a token is required.")
    port: int = knob(
        8765, "Port to listen on (0: any free port, printed).", at_least=0, at_most=65535
    )
    token: str = knob(
        "",
        "Required on every request (Authorization: Bearer, or the cookie /?token= sets); "
        "generated and printed when --host is not loopback and none is given.",
    )
    order: str = knob(
        "score",
        "score: highest first (validate hits); uncertain: nearest the threshold first (active "
        "learning); random: an unbiased precision estimate.",
        choices=REVIEW_ORDERS,
    )
    min_score: float = knob(0.0, "Tiles scoring below this are not in the queue.")
    threshold: float = knob(
        -1.0, "Score at which a tile counts as a hit (below 0: the predictions' threshold)."
    )
    positive_class: str = knob("", "The class mappers confirm (default: the predictions').")
    negative_class: str = knob(
        "", "Label of rejected tiles (default: the other class, or not_<positive>)."
    )
    reviewer: str = knob("", "Your name on each decision (default: the OS user).")
    lease_seconds: float = knob(
        300.0, "How long a tile handed out stays with its reviewer.", above=0
    )
    seed: int = knob(42, "Seed of the random order.")
    export: str = knob("", "Write the decisions to this .csv or .geojson and stop.")

    def problems(self) -> list[str]:
        """The database, and predictions (or an export file) are given."""
        problems = []
        if not self.db:
            problems.append("--db is required (the review's SQLite file)")
        if not self.export and not (self.predictions or self.sites):
            problems.append("--predictions (or --sites) is required (or --export with --db)")
        if self.predictions and self.sites:
            problems.append("--predictions and --sites: review one (sites name their predictions)")
        if self.export and not self.export.lower().endswith((".csv", ".geojson")):
            problems.append(f"--export={self.export}: name a .csv or .geojson file")
        for flag in ("positive_class", "negative_class"):
            name = getattr(self, flag)
            if name and not (name[0].isalnum() or name[0] == "_"):
                problems.append(
                    f"--{flag}={name}: a class name starts with a letter, digit or _ "
                    "(it becomes a label in exported CSVs)"
                )
        return problems
