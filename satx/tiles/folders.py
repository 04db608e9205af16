"""A folder or gs:// tree of tiles, listed once and classified once.

Labelled layouts (make_records):
- `ROOT/<class>/**/*.{jpg,jpeg,png}`;
- `ROOT/<split>/<class>/**/*` when every top-level folder is a split name (train, val, ...).
Unlabelled (predict): every tile file under ROOT. Tile addresses come from the file names
(`z/x/y`, `x-y-z`, `z_x_y`: `satx.geo.parse_tile_path`). Hidden files and folders are left
out; other files are listed as ignored. Names are relative POSIX paths, sorted by their parts.
"""

from __future__ import annotations

import os

from satx import geo
from satx.errors import InputError
from satx.io import storage
from satx.tiles.formats import is_image_name
from satx.tiles.refs import Listing, TileRef

SPLIT_FOLDER_NAMES = ("train", "val", "valid", "validation", "test", "eval", "dev")


def _visible_names(root: str) -> list[str]:
    """Every file under a local folder or gs:// prefix that no hidden part leads to, sorted.

    Local folders are walked with os.walk, pruning hidden folders (pathlib objects cost as
    much as hashing a small file).
    """
    store = storage.open_store(root)
    if isinstance(store, storage.LocalStore):
        names = []
        for top, dirs, files in os.walk(store.root):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel = os.path.relpath(top, store.root)
            prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            names += [prefix + name for name in files if not name.startswith(".")]
    else:
        names = [n for n in store.list() if not any(p.startswith(".") for p in n.split("/"))]
    return sorted(names, key=lambda name: name.split("/"))


def read_folder(root: str, labelled: bool) -> Listing:
    """The tiles of a folder tree (see the module docstring).

    Raises:
        InputError: nothing there, no tile files (unlabelled), or no class folders (labelled).
    """
    names = _visible_names(root)
    url = storage.open_store(root).url
    if not labelled:
        refs = [TileRef(n, geo.parse_tile_path(n), url(n)) for n in names if is_image_name(n)]
        if not refs:
            raise InputError(f"--input={root}: no .jpg/.jpeg/.png tiles in this folder")
        ignored = tuple(n for n in names if not is_image_name(n))
        return Listing("folder", tuple(refs), ignored=ignored)
    folders = sorted({n.split("/", 1)[0] for n in names if "/" in n})
    if not folders:
        raise InputError(
            f"{root}: no class folders; expected ROOT/<class>/*.jpg, ROOT/<split>/<class>/*.jpg "
            "or a labels CSV (path,label)"
        )
    presplit = all(name.lower() in SPLIT_FOLDER_NAMES for name in folders)
    refs, ignored = [], []
    for name in names:
        split, rel = name.split("/", 1) if presplit and "/" in name else (None, name)
        label, _, rest = rel.partition("/")
        if (presplit and split is None) or not rest or not is_image_name(rel):
            ignored.append(name)
            continue
        tile = geo.parse_tile_path(name)
        refs.append(TileRef(name, tile, url(name), label, split and split.lower()))
    layout = "folder_presplit" if presplit else "folder"
    return Listing(layout, tuple(refs), ignored=tuple(ignored))
