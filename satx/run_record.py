"""What every run writes about itself: versions of what ran, and atomic JSON files."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from satx.storage import atomic_write_local


def versions() -> dict[str, str]:
    """Versions of satx and the libraries whose behaviour shapes its output."""
    import keras
    import mercantile
    import numpy
    import PIL
    import tensorflow as tf

    import satx

    return {
        "satx": satx.__version__,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "mercantile": mercantile.__version__,
    }


def json_bytes(obj: Any) -> bytes:
    """`obj` as the indented, key-sorted JSON every run record uses."""
    return (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode()


def write_json(path: str | Path, obj: Any) -> None:
    """Write `obj` as indented JSON, atomically."""
    atomic_write_local(path, json_bytes(obj))
