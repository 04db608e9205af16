"""`TrainConfig`: everything a training run needs, frozen; JSON in and out; flat overrides."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from satx.augment import AugmentConfig
from satx.errors import InputError
from satx.models import ModelConfig

OPTIMIZERS = ("adam", "rmsprop")


@dataclass(frozen=True)
class TrainConfig:
    """A training run. Defaults follow the predecessor's train_config where it had one."""

    records: str
    workdir: str
    model: ModelConfig = field(default_factory=ModelConfig)
    batch_size: int = 32  # per replica; global batch = batch_size x replicas
    n_epo_phase1: int = 2
    n_epo_phase2: int = 10
    lr_phase1: float = 3e-4
    lr_phase2: float = 3e-5
    optimizer: str = "adam"
    freeze_cutoff: str = ""  # "" = the backbone's default cut point
    patience: int = 5
    min_delta: float = 0.01
    lr_patience: int = 3
    lr_factor: float = 0.2
    steps_per_epoch: int = 0  # 0 = one pass over the training split
    mixed_precision: str = "auto"
    strategy: str = "auto"
    cpu_devices: int = 0
    profile_batches: str = ""  # "START,END"
    seed: int = 42
    train_split: str = "train"
    val_split: str = "val"  # falls back to "test" when the records have no such split
    deterministic: bool = False
    cache: str = "auto"
    class_weight: tuple[float, ...] = ()
    resample_to: tuple[float, ...] = ()
    max_corrupt_fraction: float = 0.001
    monitor: str = "auto"  # auto: val_auc for binary, val_accuracy for multi-class
    export: bool = True
    export_dir: str = ""  # "" = WORKDIR/export
    tensorboard_images: int = 8

    def __post_init__(self) -> None:
        problems = []
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"--optimizer must be one of {OPTIMIZERS}")
        if min(self.n_epo_phase1, self.n_epo_phase2) < 0 or self.batch_size < 1:
            problems.append("epochs must be >= 0 and --batch_size >= 1")
        if min(self.lr_phase1, self.lr_phase2) <= 0:
            problems.append("learning rates must be > 0")
        try:
            self.profile_range()
        except ValueError:
            problems.append(f"--profile_batches={self.profile_batches!r}: expected START,END")
        if problems:
            raise InputError("; ".join(problems))

    def profile_range(self) -> tuple[int, int]:
        """(start, end) batches to profile, or (0, 0) for none."""
        if not self.profile_batches:
            return 0, 0
        start, end = (int(v) for v in self.profile_batches.split(","))
        if not 0 < start <= end:
            raise ValueError(self.profile_batches)
        return start, end

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Inverse of `to_dict` (nested model/augment dicts)."""
        values = dict(values)
        model = dict(values.pop("model", {}))
        augment = AugmentConfig(**_tuples(model.pop("augment", {})))
        return cls(**_tuples(values), model=ModelConfig(**model, augment=augment))

    def with_overrides(self, overrides: Mapping[str, Any]) -> TrainConfig:
        """Apply flat keys (`dropout`, `lr_phase1`, `zoom_max`, ...) to whichever level has them."""
        top, model, augment = {}, {}, {}
        names = {
            "top": {f.name for f in fields(TrainConfig)} - {"model"},
            "model": {f.name for f in fields(ModelConfig)} - {"augment"},
            "augment": {f.name for f in fields(AugmentConfig)},
        }
        unknown = []
        for key, value in overrides.items():
            for level, bucket in (("top", top), ("model", model), ("augment", augment)):
                if key in names[level]:
                    bucket[key] = value
                    break
            else:
                unknown.append(key)
        if unknown:
            raise InputError(f"unknown config keys {sorted(unknown)}")
        if "freeze_cutoff" in top:
            top["freeze_cutoff"] = str(top["freeze_cutoff"])
        new_augment = dataclasses.replace(self.model.augment, **_tuples(augment))
        new_model = dataclasses.replace(self.model, **model, augment=new_augment)
        return dataclasses.replace(self, **_tuples(top), model=new_model)


def _tuples(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
