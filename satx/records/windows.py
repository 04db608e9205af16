"""make_records `--context=C`: each labelled place stored as the C x C window of tiles around it.

The places name windows by their top-left tiles (`satx.tiles.windows`: a point's window is the
one centred nearest it). Every tile of every window is read once through the tile source and
its cache; each window becomes one image (`images.mosaic`: C x `--image_size` px a side) in
the fetch folder, and from there a record like any tile, with `tile/window` = C so its
geolocation (centre, bounds) is the window's.

A window is kept only whole: one tile without imagery, or that cannot be read or decoded,
quarantines the window, naming the tile. Filling the gap with black would teach the model
that black corners are a class's trait.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mercantile

from satx import geo
from satx.config import RecordsConfig
from satx.io import storage
from satx.records import images
from satx.tiles.base import MISSING, TileSource, read_in_batches
from satx.tiles.refs import Rejection, TileRef
from satx.tiles.windows import Window


def window_id(tile: mercantile.Tile, size: int) -> str:
    """How a window's record is known: its top-left tile and its side (`18/77153/127657+2x2`)."""
    return Window.of(tile, size).name


def _window(ref: TileRef, size: int) -> Window:
    assert ref.tile is not None
    return Window.of(ref.tile, size)


def window_image(
    ref: TileRef,
    window: Window,
    found: dict[mercantile.Tile, bytes],
    failed: dict[mercantile.Tile, tuple[str, str]],
    image_size: int,
) -> images.PreparedImage | Rejection:
    """A place's window made from its tiles' bytes, or why not (the first tile it lacks).

    Either engine makes a window with this, so both give the same bytes and reasons.
    """
    gap = next((t for t in window.tiles if t not in found), None)
    if gap is not None:
        reason, detail = failed[gap]
        why = "no_imagery" if reason == MISSING else reason
        where = f"window {ref.source_id}: tile {geo.tile_key(gap)}"
        return Rejection(ref.source_id, ref.label, why, f"{where}: {detail}")
    try:
        return images.mosaic([found[t] for t in window.tiles], window.size, image_size)
    except images.ImageRejected as err:
        return Rejection(
            ref.source_id, ref.label, err.reason, f"window {ref.source_id}: {err.detail}"
        )


def fetch_windows(
    refs: list[TileRef], source: TileSource, config: RecordsConfig, folder: Path, step: int
) -> tuple[dict[str, TileRef], list[Rejection]]:
    """Each place's window as an image file in `folder`, or the reason it is not one.

    Returns the refs by source id, their `location` set, and the quarantined windows.
    """
    size = config.context
    windows = {r.source_id: _window(r, size) for r in refs}
    wanted = sorted({t for w in windows.values() for t in w.tiles}, key=lambda t: (t.x, t.y))
    found, failed = {}, {}
    for tile, (data, error) in zip(wanted, read_in_batches(source, wanted, step), strict=True):
        if error is None:
            found[tile] = data
        else:
            failed[tile] = error
    made: dict[str, TileRef] = {}
    rejected: list[Rejection] = []
    for ref in refs:
        window = windows[ref.source_id]
        image = window_image(ref, window, found, failed, config.image_size)
        if isinstance(image, Rejection):
            rejected.append(image)
            continue
        suffix = "jpg" if image.image_format == "jpeg" else "png"
        tile = window.top_left
        path = folder / "windows" / str(tile.z) / str(tile.x) / f"{tile.y}+{size}.{suffix}"
        storage.atomic_write_local(path, image.encoded)
        made[ref.source_id] = dataclasses.replace(ref, location=str(path))
    return made, rejected
