"""satx: image classifiers for satellite map tiles, from labelled tiles to country-scale maps."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__version__ = "0.1.0"


def lazy_exports(package: str, public: Mapping[str, str]) -> Callable[[str], Any]:
    """A package's `__getattr__` that imports each public name from its module on first use.

    So `from satx.predict import predict` works, while `import satx.predict.result` (review
    reads predict's result types) does not load TensorFlow with the package.
    """

    def __getattr__(name: str) -> Any:
        if name in public:
            return getattr(importlib.import_module(public[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
