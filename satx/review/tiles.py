"""Where the review reads tiles without `--tiles`: from what the predictions were made of.

- Predictions of a folder or a CSV listing: each tile's own file (`x-y-z.jpg` in class folders
  reads as well as a z/x/y tree), by its address; a neighbour is shown when the listing has it.
  A folder's files are confined to the folder, as a `--tiles` template's are.
- Predictions of an area: the tile source they were read from (scenes, a template, an archive)
  with its recorded settings, unless a secret was redacted from it (then `--tiles` is needed).
- Predictions of records: the tiles are inside TFRecords; `--tiles` is needed.

Paths are read as the predict run recorded them (relative ones from the working directory).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from satx.config import SourceConfig
from satx.errors import InputError
from satx.io import secrets, storage
from satx.predict.result import PredictRun
from satx.tiles.base import TileSource
from satx.tiles.kinds import input_rows
from satx.tiles.refs import TileRef
from satx.tiles.sources import ListedFiles, open_source

log = logging.getLogger(__name__)


def input_source(predictions: str) -> TileSource:
    """The tile source of the predictions folder `predictions` (see the module docstring)."""
    run = PredictRun.load(predictions)
    recorded = run.config.get("inputs", run.config)  # a flat config before 2026-12-07
    kind, listed = run.input.get("kind", ""), run.input.get("input", "")
    source = SourceConfig.from_dict(recorded.get("source", {}))
    if listed and kind != "records":
        return _listed(listed, recorded.get("zoom", 0), kind, predictions)
    redacted = any(secrets.REDACTED in s for s in (source.tiles, *source.tile_header))
    if source.tiles and not redacted:
        log.info("tiles from the predictions' source: %s", source.tiles)
        return open_source(source, confined=True)
    what = f"a tile source with a secret ({source.tiles})" if source.tiles else f"{kind} input"
    raise InputError(
        f"--predictions={predictions}: its tiles came from {what}; pass --tiles=SOURCE "
        "(the tiles' template, archive or scenes) to show them"
    )


def _listed(path: str, zoom: int, kind: str, predictions: str) -> ListedFiles:
    if not storage.is_gcs(path) and not Path(path).exists():
        raise InputError(
            f"--predictions={predictions}: its input {path} is not there (run the review from "
            "where predict ran, or pass --tiles=SOURCE)"
        )
    _, rows = input_rows(path, zoom)
    files: dict[Any, str] = {
        r.tile: r.location
        for r in rows
        if isinstance(r, TileRef) and r.tile is not None and r.location is not None
    }
    if not files:
        raise InputError(
            f"--predictions={predictions}: its input {path} names no tile file with an address; "
            "pass --tiles=SOURCE"
        )
    log.info("tiles from the predictions' input: %d files of %s", len(files), path)
    folder = path if kind == "folder" else ""
    return ListedFiles(files, path, confined_to=folder)
