"""What make_records reads: the input's listing (`satx.tiles`), made ready for hashing.

    list_input: a folder or gs:// tree, a labels CSV (path,label[,z,x,y][,split]), or labelled
        places (GeoJSON; a CSV of lon,lat,label or z,x,y,label): one `Listing`, validated;
        rows naming a missing file become `missing_file`; places are merged to one label per
        tile (`conflicting_labels` where they disagree) and have no file yet
    fetch_places: places' tiles fetched from `--tiles` (concurrently, retried, cached) into a
        folder; tiles without imagery or that could not be fetched become rejections
    mirror: gs:// files copied to a local folder for this machine's worker processes

Nothing is ever written blank: what cannot be used is rejected with its reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from satx.config import RecordsConfig
from satx.errors import InputError
from satx.io import storage
from satx.records.windows import fetch_windows, window_id
from satx.tiles.base import SceneSource, read_in_batches
from satx.tiles.kinds import ReadOptions, labelled_input
from satx.tiles.places import count_per_label, merge_places
from satx.tiles.refs import Listing, Rejection, TileRef
from satx.tiles.scene_list import is_scene_spec
from satx.tiles.sources import CachedSource, open_source
from satx.tiles.windows import shape_name

log = logging.getLogger(__name__)

# Tiles per call to the source, per fetch thread: the cache keeps a batch once it is complete,
# so a kill loses at most one batch; several tiles per thread keep the threads busy.
FETCH_BATCH_PER_THREAD = 4


def _missing_files(refs: tuple[TileRef, ...], csv_path: str) -> set[int]:
    """Positions of refs whose file does not exist (one listing of the folder on gs://)."""
    if storage.is_gcs(csv_path):
        store = storage.open_store(csv_path.rpartition("/")[0])
        present = {store.url(n) for n in store.list()}
        exists = present.__contains__
    else:
        exists = lambda location: Path(location).is_file()  # noqa: E731
    return {i for i, r in enumerate(refs) if r.location and not exists(r.location)}


def _read(config: RecordsConfig) -> Listing:
    if not config.zoom and is_scene_spec(config.source.tiles):
        from satx.tiles.scenes import native_zoom

        config = dataclasses.replace(config, zoom=native_zoom(config.source))
        log.info(
            "zoom %d: the ground resolution closest to the scene's (--zoom sets it)", config.zoom
        )
    options = ReadOptions(
        True, config.zoom, config.label_property, config.polygon_mode, config.context
    )
    kind, listing = labelled_input(config.input, options)
    if not kind.names_files:
        return listing
    gone = _missing_files(listing.refs, config.input)
    missing = [
        Rejection(r.source_id, r.label, "missing_file", f"{r.origin}: no file {r.location}")
        for i, r in enumerate(listing.refs)
        if i in gone
    ]
    refs = tuple(r for i, r in enumerate(listing.refs) if i not in gone)
    return dataclasses.replace(listing, refs=refs, rejected=(*listing.rejected, *missing))


def list_input(config: RecordsConfig) -> Listing:
    """The labelled tiles of `config.input` (see the module docstring); nothing is fetched.

    Raises:
        InputError: the input does not exist, has no recognisable layout or no tiles, or has
            places without `--tiles` (or `--zoom` where needed).
    """
    listing = _read(config)
    places = [r for r in listing.refs if r.location is None]
    if config.context > 1 and len(places) < len(listing.refs):
        raise InputError(
            f"--context={config.context}: {config.input} names tile files; context windows are "
            "made from labelled places (GeoJSON, or a CSV of lon,lat or z,x,y) and --tiles"
        )
    if places:
        if not config.source.tiles:
            raise InputError(
                f"--input={config.input}: labelled places need --tiles=SOURCE to fetch from"
            )
        merged, conflicts = merge_places(places)
        if config.context > 1:  # a window is known by its top-left tile and its side
            merged = [
                dataclasses.replace(r, source_id=window_id(r.tile, config.context))  # type: ignore[arg-type]
                for r in merged
            ]
        files = [r for r in listing.refs if r.location is not None]
        per_label = count_per_label(places, merged)
        log.info(
            "%d places gave %d tiles (%d with conflicting labels); per label: %s",
            sum(v["geometries"] for v in per_label.values()),
            len(merged),
            len(conflicts),
            per_label,
        )
        listing = dataclasses.replace(
            listing,
            refs=(*files, *merged),
            rejected=(*listing.rejected, *conflicts),
            layout="locations" if not files else listing.layout,
            per_label=per_label,
        )
    if not listing.refs and not listing.rejected:
        raise InputError(f"{config.input}: found no .jpg/.jpeg/.png tiles")
    return listing


def fetch_failure(ref: TileRef, error: tuple[str, str]) -> Rejection:
    """A tile the source could not deliver, in make_records' quarantine vocabulary."""
    reason, detail = error
    return Rejection(
        ref.source_id, ref.label, "no_imagery" if reason == "missing" else reason, detail
    )


def _fetch_tiles(
    todo: list[TileRef], source: CachedSource, folder: Path, step: int
) -> tuple[dict[str, TileRef], list[Rejection]]:
    """Each place's tile, read through the cache in `folder`: its file, or why not."""
    fetched, failed = {}, []
    read = read_in_batches(source, [r.tile for r in todo], step)  # type: ignore[misc]
    for ref, (_, error) in zip(todo, read, strict=True):
        if error is not None:
            failed.append(fetch_failure(ref, error))
            continue
        t = ref.tile
        location = str(folder / str(t.z) / str(t.x) / str(t.y))  # type: ignore[union-attr]
        fetched[ref.source_id] = dataclasses.replace(ref, location=location)
    return fetched, failed


def fetch_places(listing: Listing, config: RecordsConfig, fetch_dir: Path) -> Listing:
    """The listing with every place's tile fetched into `fetch_dir` (or the tile cache)."""
    todo = [r for r in listing.refs if r.location is None]
    if not todo:
        return listing
    inner = open_source(config.source)
    cached = config.source.tile_cache and not isinstance(inner, SceneSource)  # scenes: cut again
    folder = Path(config.source.tile_cache) if cached else fetch_dir
    source = inner if isinstance(inner, CachedSource) else CachedSource(inner, str(folder))
    step = FETCH_BATCH_PER_THREAD * config.source.fetch_threads
    try:
        if config.context > 1:
            fetched, failed = fetch_windows(todo, source, config, fetch_dir, step)
        else:
            fetched, failed = _fetch_tiles(todo, source, folder, step)
    finally:
        source.close()
    log.info(
        "fetched %d %s from %s (%d tiles were in the cache); %d without imagery or failed",
        len(fetched),
        f"{shape_name(config.context)} windows" if config.context > 1 else "tiles",
        source.description,
        source.hits,
        len(failed),
    )
    refs = tuple(
        r if r.location else fetched[r.source_id]
        for r in listing.refs
        if r.location or r.source_id in fetched
    )
    return dataclasses.replace(
        listing,
        refs=refs,
        rejected=(*listing.rejected, *failed),
        tile_source=source.description,
    )


def mirror(listing: Listing, cache_dir: Path) -> Listing:
    """The listing with its gs:// files copied under `cache_dir` (for local worker processes)."""
    remote = [i for i, r in enumerate(listing.refs) if r.location and storage.is_gcs(r.location)]
    if not remote:
        return listing
    log.info("downloading %d input files", len(remote))

    def copy(ref: TileRef) -> TileRef:
        url = ref.location or ""
        target = cache_dir / url.removeprefix("gs://")
        if not target.exists():
            folder, _, name = url.rpartition("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):  # hashing reports it as unreadable
                storage.open_store(folder).get_file(name, str(target))
        return dataclasses.replace(ref, location=str(target))

    refs = list(listing.refs)
    with ThreadPoolExecutor(max_workers=16) as pool:
        for i, local in zip(remote, pool.map(copy, [refs[i] for i in remote]), strict=True):
            refs[i] = local
    return dataclasses.replace(listing, refs=tuple(refs))
