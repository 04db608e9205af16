"""Training recipes as files: `configs/*.json`.

Read by `satx.train --config=FILE` and the quality benchmark (`satx.bench quality --recipe`).
A recipe is a JSON object with an `about` block (the command that runs it, the time it takes
on the machine it was measured on, the result it reached) and a `train` block, a partial
nested `TrainConfig`. The quality benchmark also reads an optional `view`: `{"positive":
CLASS, "negatives_per_positive": 9}` turns a multi-class folder tree into an imbalanced binary
task. A bare partial TrainConfig (no `train` key) is accepted too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from satx.config import TrainConfig
from satx.errors import InputError

RECIPE_KEYS = ("about", "train", "view")


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The recipe file's JSON object, with its `train` block checked."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: cannot read a recipe ({err})") from err
    if not isinstance(data, dict):
        raise InputError(f"{path}: a recipe is a JSON object")
    if "train" not in data:
        return {"about": {}, "train": data, "view": None}
    unknown = sorted(set(data) - set(RECIPE_KEYS))
    if unknown:
        raise InputError(f"{path}: unknown recipe keys {unknown}; use {list(RECIPE_KEYS)}")
    TrainConfig.from_dict(data["train"])  # fails here, naming the key, if the block is wrong
    return {"about": data.get("about", {}), "train": data["train"], "view": data.get("view")}


def recipe_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """The TrainConfig a recipe describes, with flat overrides (records, workdir, ...)."""
    return TrainConfig.from_dict(read_recipe(path)["train"]).with_overrides(overrides)
