"""Where tiles come from (`SourceConfig`), and the help texts several configs share.

`SourceConfig` is in every config that reads a tile source.

See `satx.config` for how configs nest and how flags and overrides reach them.
"""

from __future__ import annotations

from dataclasses import dataclass

from satx.config.base import Config, knob


@dataclass(frozen=True)
class SourceConfig(Config):
    """Where tiles are read from when an input names places rather than files."""

    tiles: str = knob(
        "",
        "Tile source: a path or gs:// template (DIR/{z}/{x}/{y}.jpg), an http(s) XYZ/TMS/WMS "
        "template ({z} {x} {y} {-y} {quadkey} {s} {bbox}; ${ENV} expanded), FILE.mbtiles, "
        "FILE.pmtiles (local or gs://), or scenes: a GeoTIFF/COG or .vrt (local, gs://, https://), "
        "a folder or glob of them, or a STAC Item/ItemCollection .json.",
    )
    stac_asset: str = knob("visual", "A STAC --tiles: the asset of each item that is the scene.")
    bands: tuple[int, ...] = knob(
        (),
        "Scenes: the 1-based bands shown as R,G,B (default: the RGB ones, else 1,2,3).",
        at_least=1,
    )
    rescale: tuple[float, ...] = knob(
        (),
        "Scenes not in uint8: MIN,MAX mapped to 0-255 (default: each band's 2nd-98th "
        "percentile, computed once per scene and recorded).",
    )
    tile_subdomains: tuple[str, ...] = knob((), "What {s} takes, e.g. a,b,c.")
    tile_header: tuple[str, ...] = knob(
        (),
        "'Name: value' sent with every tile request (repeatable; ${ENV} expanded; redacted "
        "everywhere).",
        repeat=True,
    )
    tile_cache: str = knob(
        "",
        "Folder keeping fetched tiles as {z}/{x}/{y}, so re-runs and later stages fetch nothing.",
    )
    fetch_threads: int = knob(32, "Tiles fetched at once.", at_least=1)
    max_rps: float = knob(0.0, "At most this many requests per second (0: no cap).", at_least=0)
    fetch_timeout: float = knob(15.0, "Seconds to connect, and to read a tile.", above=0)
    fetch_retries: int = knob(
        5,
        "Retries per tile on timeouts, connection errors, 429 and 5xx (with backoff).",
        at_least=0,
    )

    def problems(self) -> list[str]:
        """A rescale is two numbers, low below high."""
        if self.rescale and (len(self.rescale) != 2 or self.rescale[0] >= self.rescale[1]):
            return [f"--rescale={','.join(map(str, self.rescale))}: give MIN,MAX with MIN < MAX"]
        return []


ENGINE_HELP = "local: this machine's processes; beam: Apache Beam stages (see --beam_options)."
BEAM_OPTIONS_HELP = (
    "Beam pipeline options, e.g. '--runner=DataflowRunner --project=P --region=R "
    "--temp_location=gs://b/tmp'; default: Beam's local FnApiRunner in this process "
    "('--direct_num_workers=2 --direct_running_mode=multi_processing': 2 processes)."
)
OVERWRITE_HELP = "Replace a complete (or foreign partial) output instead of refusing."
