"""absl flags shared by several CLIs, and how flags become configs.

A flag that sets a config field takes its default from the config dataclass (`define(...,
config=TrainConfig)`), so every default is written once, in `satx.config`. absl refuses a flag
defined twice in one process, so flags used by several CLIs are defined here, once.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from absl import flags

from satx.config import (
    ENGINES,
    TTA_MODES,
    Config,
    PredictConfig,
    RecordsConfig,
    SourceConfig,
    TrainConfig,
    default_of,
)

FLAGS = flags.FLAGS
C = TypeVar("C", bound=Config)
_DEFINE = {
    "integer": flags.DEFINE_integer,
    "float": flags.DEFINE_float,
    "string": flags.DEFINE_string,
    "boolean": flags.DEFINE_boolean,
    "enum": flags.DEFINE_enum,
    "list": flags.DEFINE_list,
    "multi_string": flags.DEFINE_multi_string,
}


def define(
    kind: str,
    name: str,
    help_text: str,
    config: type[Config] | None = None,
    field: str | None = None,
    **kwargs: Any,
) -> flags.FlagHolder:
    """Define a flag; with `config`, its default is that config's `field` (default: `name`).

    Args:
        kind: integer, float, string, boolean, enum (pass `enum_values`) or list.
        name: the flag name.
        help_text: the --help line.
        config: the config class whose field the flag sets.
        field: the config's flat field name when it differs from the flag's.
        **kwargs: `default` (without `config`), `enum_values`, ... for absl.
    """
    if config is not None:
        default = default_of(config, field or name)
        kwargs["default"] = list(default) if isinstance(default, tuple) else default
    # absl files a flag under the module that defines it, and --help lists the CLI's modules:
    # name the caller (absl's rule: the main module is named by sys.argv[0]).
    caller = sys._getframe(1).f_globals["__name__"]
    kwargs.setdefault("module_name", sys.argv[0] if caller == "__main__" else caller)
    return _DEFINE[kind](name, help=help_text, **kwargs)


def config_from_flags(cls: type[C], renamed: Mapping[str, str] | None = None, **values: Any) -> C:
    """A `cls` config from the flags named like its fields (lists become tuples).

    Args:
        cls: the config class.
        renamed: field -> flag name, where they differ.
        **values: fields set here rather than from a flag (parsed or computed values).

    A flag left at None keeps the config's default.
    """
    renamed = renamed or {}
    from_flags = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        flag = renamed.get(f.name, f.name)
        if f.name not in values and flag in FLAGS and FLAGS[flag].value is not None:
            from_flags[f.name] = FLAGS[flag].value
    return cls.from_dict({**from_flags, **values})


def present(names: Iterable[str]) -> dict[str, Any]:
    """The values of those flags that were given on the command line."""
    return {name: FLAGS[name].value for name in names if FLAGS[name].present}


SEED = define(
    "integer",
    "seed",
    "Random seed; same inputs and seed give the same output.",
    TrainConfig,
)
OVERWRITE = define(
    "boolean",
    "overwrite",
    "Replace a complete (or foreign partial) output instead of refusing.",
    default=False,
)
WORKERS = define("integer", "workers", "Worker processes; 0 means one per CPU core.", RecordsConfig)
IMAGE_SIZE = define(
    "integer",
    "image_size",
    "Tile side in pixels (make_records: stored size, default 256; train: model input, default "
    "the backbone's; bench: tile and records size, default 256).",
    default=None,
)
ZOOM = define(
    "integer",
    "zoom",
    "Zoom of the tiles: of --bbox or --aoi, of lon,lat CSV rows, of labelled places.",
    RecordsConfig,
)

# Where tiles come from when an input names places (predict's --bbox/--aoi/CSV rows,
# make_records' GeoJSON and CSV locations).
SOURCE_FLAGS = (
    define(
        "string",
        "tiles",
        "Tile source: a path or gs:// template (DIR/{z}/{x}/{y}.jpg), an http(s) XYZ/TMS/WMS "
        "template ({z} {x} {y} {-y} {quadkey} {s} {bbox}; ${ENV} expanded), FILE.mbtiles, or "
        "FILE.pmtiles (local or gs://).",
        SourceConfig,
    ),
    define("list", "tile_subdomains", "What {s} takes, e.g. a,b,c.", SourceConfig),
    define(
        "multi_string",
        "tile_header",
        "'Name: value' sent with every tile request (repeatable; ${ENV} expanded; redacted "
        "everywhere).",
        SourceConfig,
    ),
    define(
        "string",
        "tile_cache",
        "Folder keeping fetched tiles as {z}/{x}/{y}, so re-runs and later stages fetch nothing.",
        SourceConfig,
    ),
    define("integer", "fetch_threads", "Tiles fetched at once.", SourceConfig),
    define("float", "max_rps", "At most this many requests per second (0: no cap).", SourceConfig),
    define("float", "fetch_timeout", "Seconds to connect, and to read a tile.", SourceConfig),
    define(
        "integer",
        "fetch_retries",
        "Retries per tile on timeouts, connection errors, 429 and 5xx (with backoff).",
        SourceConfig,
    ),
)


def source_config_from_flags() -> SourceConfig:
    """The tile source the --tiles flags describe."""
    return config_from_flags(SourceConfig)


# Where make_records and predict run: this machine's processes, or Apache Beam.
ENGINE_FLAGS = (
    define(
        "enum",
        "engine",
        "local: this machine's processes; beam: Apache Beam stages (see --beam_options).",
        RecordsConfig,
        enum_values=list(ENGINES),
    ),
    define(
        "string",
        "beam_options",
        "Beam pipeline options, e.g. '--runner=DataflowRunner --project=P --region=R "
        "--temp_location=gs://b/tmp'; default: Beam's local FnApiRunner in this process "
        "('--direct_num_workers=2 --direct_running_mode=multi_processing': 2 processes).",
        RecordsConfig,
    ),
)

TTA = define(
    "enum",
    "tta",
    "Test-time augmentation: dihedral averages over the tile's 8 symmetries (8x the model time).",
    PredictConfig,
    enum_values=list(TTA_MODES),
)
