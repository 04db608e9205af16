"""Find labelled tiles in an input: a class-folder tree, a pre-split tree, or a labels CSV.

Layouts:
- `ROOT/<class>/**/*.{jpg,jpeg,png}`
- `ROOT/<split>/<class>/**/*` when every top-level folder is a split name (train, val, test, ...)
- a CSV with columns `path,label` and optionally `z,x,y` and `split`; relative paths are resolved
  against the CSV's folder.
`gs://` inputs are first mirrored to a local cache folder, keeping relative paths.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import logging
import os
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import mercantile

from satx import geo
from satx.errors import InputError
from satx.io import storage

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
SPLIT_FOLDER_NAMES = ("train", "val", "valid", "validation", "test", "eval", "dev")
_NAME_RE = re.compile(r"^[a-z0-9_]+$")


@dataclass(frozen=True)
class SourceTile:
    """One labelled input file."""

    source_id: str  # path relative to the input root (or as written in the CSV)
    location: str  # local path to read
    label_text: str
    split: str | None  # the input's own split, when it has one
    tile: mercantile.Tile | None


@dataclass(frozen=True)
class MissingTile:
    """A CSV row that names no readable file, or has no label."""

    source_id: str
    label_text: str
    reason: str
    detail: str


@dataclass(frozen=True)
class Discovery:
    """What an input holds."""

    layout: str  # "folder", "folder_presplit", "csv" or "locations"
    tiles: tuple[SourceTile, ...]
    missing: tuple[MissingTile, ...]
    ignored: tuple[str, ...]  # files that are not tiles (other extensions, outside class folders)
    tile_source: str = ""  # locations: where the tiles were fetched from (secrets redacted)
    geometries: dict[str, dict[str, int]] = field(default_factory=dict)  # label -> counts


def _visible_files(folder: Path) -> list[str]:
    """Files under `folder` as relative POSIX paths in path order, hidden ones left out.

    os.walk rather than Path.rglob: pathlib objects cost ~20 us a file, as much as hashing it.
    """
    found = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = os.path.relpath(top, folder)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        found += [prefix + name for name in files if not name.startswith(".")]
    return sorted(found, key=lambda rel: rel.split("/"))


def _class_folders(root: Path, split: str | None) -> tuple[list[SourceTile], list[str]]:
    tiles, ignored = [], []
    base = root / split if split else root
    for rel in _visible_files(base):
        source_id = f"{split}/{rel}" if split else rel
        label, _, rest = rel.partition("/")
        if not rest or os.path.splitext(rel)[1].lower() not in IMAGE_EXTENSIONS:
            ignored.append(source_id)
            continue
        location = os.path.join(base, *rel.split("/"))
        tiles.append(SourceTile(source_id, location, label, split, geo.parse_tile_path(source_id)))
    return tiles, ignored


def discover_folder(root: Path) -> Discovery:
    """Discover `ROOT/<class>/...` or `ROOT/<split>/<class>/...`."""
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise InputError(
            f"{root}: no class folders; expected ROOT/<class>/*.jpg, ROOT/<split>/<class>/*.jpg "
            "or a labels CSV (path,label)"
        )
    presplit = all(name.lower() in SPLIT_FOLDER_NAMES for name in folders)
    tiles: list[SourceTile] = []
    ignored: list[str] = []
    for split in folders if presplit else [None]:
        found, skipped = _class_folders(root, split)
        tiles += found
        ignored += skipped
    if presplit:
        tiles = [
            SourceTile(t.source_id, t.location, t.label_text, t.split.lower(), t.tile)
            for t in tiles
        ]
    return Discovery("folder_presplit" if presplit else "folder", tuple(tiles), (), tuple(ignored))


def _row_tile(row: dict[str, str], source_id: str, where: str) -> mercantile.Tile | None:
    zxy = [(row.get(k) or "").strip() for k in ("z", "x", "y")]
    if not any(zxy):
        return geo.parse_tile_path(source_id)
    try:
        tile = geo.make_tile(*(int(v) for v in zxy))
    except ValueError as err:
        raise InputError(f"{where}: z,x,y must be integers, got {zxy}") from err
    if tile is None:
        raise InputError(f"{where}: z,x,y = {zxy} is not a valid tile address")
    return tile


def _labels_csv(
    lines: Iterable[str], where: str, locate: Callable[[str], tuple[str, bool]]
) -> Discovery:
    """Tiles listed in a labels CSV (`path,label[,z,x,y][,split]`).

    `locate(path)` gives the file's location and whether it exists.
    """
    tiles: list[SourceTile] = []
    missing: list[MissingTile] = []
    reader = csv.DictReader(lines)
    columns = {c.strip().lower() for c in reader.fieldnames or []}
    if not {"path", "label"} <= columns:
        raise InputError(
            f"{where}: needs a header with at least 'path,label' "
            f"(optional z,x,y,split); found {sorted(columns)}"
        )
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        source_id, label = row["path"], row["label"]
        at = f"{where}:{line}"
        if not label:
            missing.append(MissingTile(source_id, "", "missing_label", f"{at}: empty label"))
            continue
        location, exists = locate(source_id)
        if not exists:
            missing.append(
                MissingTile(source_id, label, "missing_file", f"{at}: no file {location}")
            )
            continue
        split = row.get("split") or None
        tiles.append(SourceTile(source_id, location, label, split, _row_tile(row, source_id, at)))
    return Discovery("csv", tuple(tiles), tuple(missing), ())


def discover_csv(csv_path: Path) -> Discovery:
    """Discover tiles listed in a local labels CSV; relative paths are from its folder."""

    def locate(path: str) -> tuple[str, bool]:
        location = Path(path) if Path(path).is_absolute() else csv_path.parent / path
        return str(location), location.is_file()

    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        return _labels_csv(f, str(csv_path), locate)


def mirror_gcs(url: str, cache_dir: Path) -> Path:
    """Copy a gs:// folder (image and CSV files) or a gs:// CSV plus its files to `cache_dir`."""
    if url.lower().endswith(".csv"):
        folder, _, name = url.rstrip("/").rpartition("/")
        store = storage.open_store(folder)
        local_csv = cache_dir / name
        store.get_file(name, str(local_csv))
        with open(local_csv, newline="", encoding="utf-8-sig") as f:
            wanted = [
                r["path"].strip() for r in csv.DictReader(f) if not Path(r["path"]).is_absolute()
            ]
        _download_all(store, wanted, cache_dir)
        return local_csv
    store = storage.open_store(url)
    wanted = [n for n in store.list() if PurePosixPath(n).suffix.lower() in IMAGE_EXTENSIONS]
    if not wanted:
        raise InputError(f"{url}: no .jpg/.jpeg/.png objects under this prefix")
    _download_all(store, wanted, cache_dir)
    return cache_dir


def _download_all(store: storage.Store, names: list[str], cache_dir: Path) -> None:
    log.info("downloading %d input files from %s", len(names), store.root)

    def fetch(name: str) -> None:
        target = cache_dir / name
        if not target.exists():
            with contextlib.suppress(FileNotFoundError):  # reported later as a missing file
                store.get_file(name, str(target))

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(fetch, names))


def _classify_names(names: list[str], url_of: Callable[[str], str], where: str) -> Discovery:
    """The folder layouts of `discover_folder`, over a listing of relative names."""
    names = sorted(
        (n for n in names if not any(part.startswith(".") for part in n.split("/"))),
        key=lambda rel: rel.split("/"),
    )
    folders = sorted({n.split("/")[0] for n in names if "/" in n})
    if not folders:
        raise InputError(f"{where}: no class folders; expected <class>/*.jpg or <split>/<class>/")
    presplit = all(name.lower() in SPLIT_FOLDER_NAMES for name in folders)
    tiles, ignored = [], []
    for name in names:
        split, rel = name.split("/", 1) if presplit and "/" in name else (None, name)
        if presplit and split is None:
            continue  # a file beside the split folders: not part of any split
        label, _, rest = rel.partition("/")
        if not rest or os.path.splitext(rel)[1].lower() not in IMAGE_EXTENSIONS:
            ignored.append(name)
            continue
        tile = geo.parse_tile_path(name)
        tiles.append(SourceTile(name, url_of(name), label, split and split.lower(), tile))
    layout = "folder_presplit" if presplit else "folder"
    return Discovery(layout, tuple(tiles), (), tuple(ignored))


def discover_remote(url: str) -> Discovery:
    """A gs:// folder or labels CSV listed in place: tile locations stay gs:// URLs.

    For engines whose workers read the tiles themselves (Beam on a cluster): nothing is
    mirrored to this machine. Quarantine reasons are those of a mirrored input.
    """
    if url.lower().endswith(".csv"):
        folder, _, name = url.rstrip("/").rpartition("/")
        store = storage.open_store(folder)
        present = set(store.list())
        text = store.read_bytes(name).decode("utf-8-sig")
        return _labels_csv(text.splitlines(), url, lambda p: (store.url(p), p in present))
    store = storage.open_store(url)
    # as `mirror_gcs` does: only image files take part (a mirrored folder holds nothing else)
    names = [n for n in store.list() if PurePosixPath(n).suffix.lower() in IMAGE_EXTENSIONS]
    return _classify_names(names, store.url, url)


def discover(input_path: str, cache_dir: Path | None = None) -> Discovery:
    """Discover labelled tiles in a local folder, a CSV, or a gs:// prefix or CSV.

    Args:
        input_path: folder, `.csv` file, or `gs://` URL of either.
        cache_dir: where gs:// inputs are mirrored (required for gs://).

    Raises:
        InputError: when the input does not exist or has no recognisable layout.
    """
    if storage.is_gcs(input_path):
        if cache_dir is None:
            raise InputError("a gs:// input needs a local cache folder")
        local = mirror_gcs(input_path, cache_dir)
    else:
        local = Path(input_path).expanduser()
    if not local.exists():
        raise InputError(f"{input_path}: no such file or folder")
    found = discover_csv(local) if local.is_file() else discover_folder(local)
    if storage.is_gcs(input_path):  # name the object, not the mirror copy that is deleted
        folder = input_path.rstrip("/").rpartition("/")[0] if local.is_file() else input_path
        mirror = str(local.parent if local.is_file() else local)
        found = dataclasses.replace(
            found,
            missing=tuple(
                dataclasses.replace(m, detail=m.detail.replace(mirror, folder.rstrip("/")))
                for m in found.missing
            ),
        )
    for t in found.tiles:
        if t.split is not None and not _NAME_RE.match(t.split):
            raise InputError(f"{t.source_id}: split name {t.split!r} must match [a-z0-9_]+")
    if not found.tiles and not found.missing:
        raise InputError(f"{input_path}: found no .jpg/.jpeg/.png tiles")
    return found
