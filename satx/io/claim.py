"""One way for a stage to claim its output folder, and to delete only what it wrote there.

A folder is a stage's when it is new, empty (but for the lock), or carries that stage's marker
(`.satx-output.json`, written when the folder is first claimed). A folder an older satx wrote
has no marker; it is taken when it holds one of the stage's `legacy` files and nothing the
stage does not own. Anything else is refused with one line naming what is in the way:

- files satx did not write (a thesis, another tool's output, someone's tiles);
- another stage's output (`--output` of sites pointed at a predictions folder);
- an output that equals, contains or lies inside one of the run's inputs;
- a path that exists and is not a folder.

`--overwrite` goes through `remove_owned`, which deletes only names the stage's `Layout`
owns, at the depth the layout names them: `manifest.json` at the top, never `notes/manifest.json`.
A foreign file that a user added to a marked folder later is left where it is.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from satx.errors import InputError, OutputExistsError
from satx.io import storage

MARKER_NAME = ".satx-output.json"
LOCK_NAME = ".satx.lock"
_SHOWN = 4  # foreign names quoted in a refusal


@dataclass(frozen=True)
class Layout:
    """What one stage writes in its output folder.

    Attributes:
        stage: the stage's name, as the marker records it (`predict`, `sites`, ...).
        owned: names relative to the folder, `fnmatch` patterns matched part by part (so `*`
            never crosses a `/`); a pattern ending in `/` owns everything below that folder.
        legacy: names whose presence marks a folder that an older satx (no marker) wrote;
            none: a marker-less folder holding only owned names is taken (names specific
            enough to be satx's, like export's runtime folders).
    """

    stage: str
    owned: tuple[str, ...]
    legacy: tuple[str, ...] = ()

    def owns(self, name: str) -> bool:
        """Whether this stage wrote (or may write) `name`; temp files of its writers included."""
        if name in (MARKER_NAME, LOCK_NAME):
            return True
        parts = name.split("/")
        if _is_temp(parts[-1]) and self.owns("/".join([*parts[:-1], _untemp(parts[-1])])):
            return True
        return any(_matches(parts, pattern) for pattern in self.owned)


def _is_marker_temp(name: str) -> bool:
    return _is_temp(name) and _untemp(name) in (MARKER_NAME, LOCK_NAME)


def _is_temp(base: str) -> bool:
    return base.startswith(".") and (".tmp-" in base or base.endswith(".tmp"))


def _untemp(base: str) -> str:
    """A temp file's target name.

    `.report.json.tmp-1a2b` (atomic writes, export's folders) and `.predictions.csv.x8k2_a9q.tmp`
    (`storage.staged_file`) -> `report.json`, `predictions.csv`.
    """
    body = base[1:]
    if ".tmp-" in body:
        return body.split(".tmp-", 1)[0]
    return body[: -len(".tmp")].rpartition(".")[0]


def _matches(parts: list[str], pattern: str) -> bool:
    folder = pattern.endswith("/")
    wanted = pattern.rstrip("/").split("/")
    if folder:
        return len(parts) > len(wanted) and all(
            fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted, strict=False)
        )
    return len(parts) == len(wanted) and all(
        fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted, strict=True)
    )


def _local_names(root: Path) -> list[str]:
    """Every entry below `root` that is not a folder (links and special files included)."""
    names = []
    for folder, dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            names.append((rel / name).as_posix())
    return sorted(names)


def _names(store: storage.Store) -> list[str]:
    if isinstance(store, storage.LocalStore):
        return _local_names(Path(store.root))
    return store.list()


def stage_of(store: storage.Store) -> str | None:
    """The stage named by a folder's marker, or None without one."""
    try:
        marker = json.loads(store.read_bytes(MARKER_NAME))
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return None
    return marker.get("stage") if isinstance(marker, dict) else None


def _where(path: str) -> str:
    if storage.is_gcs(path):
        return path.rstrip("/")
    return os.path.realpath(os.path.expanduser(path))


def _inside(inner: str, outer: str) -> bool:
    if storage.is_gcs(inner) != storage.is_gcs(outer):
        return False
    return inner == outer or inner.startswith(outer.rstrip("/") + "/")


def refuse_overlap(output: str, inputs: Iterable[tuple[str, str]], flag: str = "--output") -> None:
    """Refuse an output that equals, contains or lies inside one of the run's inputs.

    Args:
        output: the output folder.
        inputs: (flag, path) of every local or gs:// input of the run (empty paths skipped).
        flag: the output's flag, for the message.
    """
    out = _where(str(output))
    for name, given in inputs:
        path = str(given or "")
        if not path or "://" in path and not storage.is_gcs(path):
            continue
        where = _where(path)
        if _inside(out, where) or _inside(where, out):
            relation = "is" if out == where else "contains" if _inside(where, out) else "lies in"
            raise InputError(
                f"{flag}={output} {relation} the run's input {name}={path}: writing there "
                "could destroy the input; choose an output folder outside every input"
            )


def template_root(template: str) -> str:
    """The local folder or file a tile source reads (`DIR` of `DIR/{z}/{x}/{y}.png`), or ''."""
    if not template or "://" in template and not storage.is_gcs(template):
        return ""
    head = template.split("{", 1)[0]
    if head == template:
        return template
    return head.rstrip("/") if head.endswith("/") else os.path.dirname(head)


def check(root: str, layout: Layout, inputs: Iterable[tuple[str, str]] = ()) -> None:
    """Refuse `root` unless `layout`'s stage may write there (reads only; see the module doc).

    Raises:
        InputError: the output overlaps an input, or exists and is not a folder.
        OutputExistsError: the folder holds foreign files or another stage's output.
    """
    refuse_overlap(root, inputs)
    if not storage.is_gcs(root):
        path = Path(root).expanduser()
        if path.is_symlink() and not path.is_dir() or path.exists() and not path.is_dir():
            raise InputError(f"--output={root} exists and is not a folder; choose a folder")
        if not path.exists():
            return
    store = storage.open_store(root)
    # A marker still being written by a run that just took the folder is not a file either
    names = [n for n in _names(store) if n != LOCK_NAME and not _is_marker_temp(n)]
    if not names:
        return
    found = stage_of(store)
    if found == layout.stage:
        return
    if found is not None:
        raise OutputExistsError(
            f"{root} holds the output of satx {found}, not of {layout.stage}: "
            f"choose another --output (satx never writes one stage's output over another's)"
        )
    foreign = [n for n in names if not layout.owns(n)]
    if foreign or layout.legacy and not any(store.exists(n) for n in layout.legacy):
        listed = foreign or names
        more = f", +{len(listed) - _SHOWN} more" if len(listed) > _SHOWN else ""
        raise OutputExistsError(
            f"{root} holds files satx did not write ({', '.join(listed[:_SHOWN])}{more}): "
            "choose a new or empty --output; satx deletes nothing it did not write"
        )


def mark(store: storage.Store, layout: Layout) -> None:
    """Write the stage's marker, unless the folder carries it already."""
    if stage_of(store) != layout.stage:
        store.write_bytes(MARKER_NAME, json.dumps({"stage": layout.stage}).encode())


def remove_owned(store: storage.Store, layout: Layout, keep: tuple[str, ...] = ()) -> list[str]:
    """Delete what `layout` owns in a claimed folder (an `--overwrite`); return the names.

    The marker, the lock and names matching `keep` stay; so does everything the layout does
    not own. Folders left empty by the deletions are removed (local folders only).
    """
    keep_layout = Layout(layout.stage, keep)
    removed = []
    for name in _names(store):
        if name in (MARKER_NAME, LOCK_NAME) or not layout.owns(name):
            continue
        if keep and keep_layout.owns(name):
            continue
        store.delete(name)
        removed.append(name)
    if isinstance(store, storage.LocalStore):
        _prune(Path(store.root), {str(Path(n).parent) for n in removed})
    return removed


def _prune(root: Path, folders: set[str]) -> None:
    """Remove the now-empty folders (deepest first) that held removed files."""
    candidates = set()
    for folder in folders:
        while folder not in ("", "."):
            candidates.add(folder)
            folder = str(Path(folder).parent)
    for folder in sorted(candidates, key=lambda f: f.count("/"), reverse=True):
        with contextlib.suppress(OSError):  # not empty: something kept or foreign lives there
            (root / folder).rmdir()
