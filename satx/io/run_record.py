"""What every run writes about itself: versions of what ran, and atomic JSON files."""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from satx.io.secrets import scrub
from satx.io.storage import atomic_write_local

# module -> the distributions that may provide it (tensorflow-cpu installs `tensorflow`)
_LIBRARIES = {
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "keras": ("keras",),
    "numpy": ("numpy",),
    "PIL": ("pillow",),
    "mercantile": ("mercantile",),
}


def _version(module: str, distributions: tuple[str, ...]) -> str:
    # Read from package metadata unless already imported: make_records never imports
    # TensorFlow or Keras, and importing them only to print a version costs ~2 s.
    if module in sys.modules:
        return str(sys.modules[module].__version__)
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def versions() -> dict[str, str]:
    """Versions of satx and the libraries whose behaviour shapes its output."""
    import satx

    found = {
        ("pillow" if module == "PIL" else module): _version(module, dists)
        for module, dists in _LIBRARIES.items()
    }
    return {"satx": satx.__version__, "python": platform.python_version(), **found}


def json_bytes(obj: Any) -> bytes:
    """`obj` as the indented, key-sorted JSON every run record uses (secrets scrubbed)."""
    return (scrub(json.dumps(obj, indent=2, sort_keys=True, default=str)) + "\n").encode()


def write_json(path: str | Path, obj: Any) -> None:
    """Write `obj` as indented JSON, atomically."""
    atomic_write_local(path, json_bytes(obj))
