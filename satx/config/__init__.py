"""Every frozen run configuration of satx, and the choices a user can make in them.

One tree: `TrainConfig` nests `DataConfig` and `ModelConfig` (which nests `AugmentConfig`);
`TuneConfig` nests the `TrainConfig` every trial starts from and its `SearchSpace`;
`PredictConfig` nests `PredictInputs` (with its `SourceConfig`), `PredictScoring` and
`PredictOutputs`. Each config validates itself on construction, turns into JSON-ready dicts and
back (`to_dict`, `from_dict`), and takes flat overrides (`with_overrides({"dropout": 0.1,
"seed": 7})`): every field name is unique across a tree, so a flat key names exactly one field
(`Config.make(**flat)` builds one from such names). Each field is declared with
`knob(default, help, ...)`: the CLIs generate their flags from that (`satx.cli.flags`), so a
new knob is one field. Library code never reads flags.
Nothing here imports TensorFlow: the registries the choices come from (runtimes, output
formats) import numpy, which every stage loads anyway (`import satx.config` ~0.1-0.2 s).

Batch sizes: a bare `batch_size` is always the global batch (tiles per step over all devices);
the training run's own is `per_replica_batch_size`, spelled out.
"""

from satx.config.base import (
    CACHE_MODES,
    COMPRESSIONS,
    COUNTRY_TILES,
    ENGINES,
    EXPORT_BEST_ON,
    EXPORT_RUNTIMES,
    LR_SCHEDULES,
    OPTIMIZERS,
    PRECISIONS,
    PREDICT_FORMATS,
    PREDICT_STRATEGIES,
    RUNTIMES,
    SIZE_MISMATCH_MODES,
    STRATEGIES,
    TTA_MODES,
    Config,
    Leaf,
    default_of,
    knob,
    parse_duration,
    parse_split_spec,
    searched,
)
from satx.config.predict import PredictConfig, PredictInputs, PredictOutputs, PredictScoring
from satx.config.runs import (
    NO_AUGMENT,
    POLYGON_MODES,
    AugmentConfig,
    DataConfig,
    ModelConfig,
    RecordsConfig,
    SearchSpace,
    TrainConfig,
    TuneConfig,
)
from satx.config.scoring import (
    REVIEW_ORDERS,
    BenchConfig,
    EvaluateConfig,
    ExportConfig,
    ReviewConfig,
    SitesConfig,
)
from satx.config.source import SourceConfig

__all__ = [
    "CACHE_MODES",
    "COMPRESSIONS",
    "COUNTRY_TILES",
    "EXPORT_BEST_ON",
    "EXPORT_RUNTIMES",
    "LR_SCHEDULES",
    "NO_AUGMENT",
    "OPTIMIZERS",
    "ENGINES",
    "POLYGON_MODES",
    "PRECISIONS",
    "PREDICT_FORMATS",
    "PREDICT_STRATEGIES",
    "RUNTIMES",
    "SIZE_MISMATCH_MODES",
    "STRATEGIES",
    "TTA_MODES",
    "AugmentConfig",
    "BenchConfig",
    "Config",
    "Leaf",
    "DataConfig",
    "EvaluateConfig",
    "ExportConfig",
    "ModelConfig",
    "PredictConfig",
    "PredictInputs",
    "PredictOutputs",
    "PredictScoring",
    "RecordsConfig",
    "REVIEW_ORDERS",
    "ReviewConfig",
    "SearchSpace",
    "SitesConfig",
    "SourceConfig",
    "TrainConfig",
    "TuneConfig",
    "default_of",
    "knob",
    "parse_duration",
    "parse_split_spec",
    "searched",
]
