"""The trained model as one thing: an export's version folder (or a `.keras` file), opened once.

    EXPORT/1/saved_model.pb, variables/   the SavedModel (`saved_model.py`; TF Serving reads it)
    EXPORT/1/class_names.json             the classes, in output order
    EXPORT/1/calibration.json             the temperature and class bias in `probabilities`
    EXPORT/1/runtimes/<name>/<file>       the same model for another runtime (`runtimes.py`)
    EXPORT/1/runtimes.json                each one's file, rate and agreement (`conversion.py`)

`open_artifact(--model)` checks the path without loading any model (so a wrong one is one line
before devices are set up), reads the small files, and answers which runtime a run uses
(`resolve_runtime`: `auto` picks the fastest one the export measured that is installed here and
allowed as a default). `Scorer(artifact, ...)` then loads it.
"""

from __future__ import annotations

import json
import logging
import re
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from satx.artifact import runtimes
from satx.artifact.calibration import Calibration
from satx.errors import InputError

log = logging.getLogger(__name__)

CLASS_NAMES_FILE = "class_names.json"
CALIBRATION_FILE = "calibration.json"
RUNTIMES_FILE = "runtimes.json"
EXPECTED_MODEL = (
    "expected an export folder (satx.train's export/, newest version used), one SavedModel "
    "version folder, or a .keras zip (model.save)"
)


def latest_version(export_root: str | Path) -> int:
    """The highest numeric version folder under `export_root` (TF Serving's layout), or 0."""
    root = Path(export_root)
    versions = (
        [int(p.name) for p in root.iterdir() if re.fullmatch(r"\d+", p.name)]
        if root.exists()
        else []
    )
    return max(versions, default=0)


def _newest_version(path: Path) -> Path:
    """`path` itself when it holds a SavedModel, else its highest numbered version folder."""
    if (path / "saved_model.pb").exists():
        return path
    version = latest_version(path)
    if not version:
        raise InputError(
            f"--model={path}: a folder without saved_model.pb or numbered versions; "
            f"{EXPECTED_MODEL}"
        )
    return path / str(version)


def model_path(path: str | Path) -> Path:
    """The SavedModel folder or .keras file `--model` names, checked without loading it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"--model={path}: no such file or folder; {EXPECTED_MODEL}")
    if path.is_dir():
        return _newest_version(path)
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        what = (
            "not a zip archive" if path.suffix == ".keras" else f"a {path.suffix or 'plain'} file"
        )
        raise InputError(f"--model={path}: {what}; {EXPECTED_MODEL}")
    return path


@dataclass(frozen=True)
class RuntimeEntry:
    """One converted runtime in runtimes.json."""

    file: str  # relative to the version folder
    sha256: str
    bytes: int
    convert_seconds: float
    tiles_per_s: float  # model alone, at export
    agreement: dict[str, Any]  # with TensorFlow: `satx.artifact.agreement`
    default_ok: bool  # may `--runtime=auto` pick it
    not_default_because: str | None = None


@dataclass
class RuntimesRecord:
    """runtimes.json: the export's runtimes, TensorFlow's rate, and the run that made them."""

    runtimes: dict[str, RuntimeEntry] = field(default_factory=dict)
    image_size: int | None = None
    num_classes: int | None = None
    tf_tiles_per_s: float | None = None
    agreement_on: str | None = None
    run: dict[str, Any] = field(default_factory=dict)  # the run record: command, config, ...

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (its keys in the order satx has always written them)."""
        head = {"runtimes": {name: asdict(e) for name, e in self.runtimes.items()}}
        head.update(
            image_size=self.image_size,
            num_classes=self.num_classes,
            tf_tiles_per_s=self.tf_tiles_per_s,
            agreement_on=self.agreement_on,
        )
        return {**head, **self.run}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuntimesRecord:
        """From the JSON object."""
        data = dict(data)
        entries = {name: RuntimeEntry(**e) for name, e in data.pop("runtimes", {}).items()}
        own = {k: data.pop(k, None) for k in ("image_size", "num_classes", "tf_tiles_per_s")}
        return cls(entries, **own, agreement_on=data.pop("agreement_on", None), run=data)

    @classmethod
    def read(cls, version: Path) -> RuntimesRecord:
        """An export's runtimes.json (empty when only TensorFlow's model was exported)."""
        path = version / RUNTIMES_FILE
        if not path.exists():
            return cls()
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (ValueError, TypeError) as err:
            raise InputError(f"{path}: not satx.export's runtimes.json ({err}); re-run it") from err


def _json_near(name: str, *folders: Path) -> Any:
    for folder in folders:
        if (folder / name).exists():
            return json.loads((folder / name).read_text())
    return None


@dataclass(frozen=True)
class Artifact:
    """An export's version folder, or a `.keras` file, with its small files read."""

    path: Path
    class_names: list[str] | None
    calibration: Calibration  # what the export's probabilities are calibrated by
    runtimes: RuntimesRecord
    _resolved: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_keras(self) -> bool:
        """A `.keras` file: TensorFlow only, no runtimes, no calibration file."""
        return self.path.is_file()

    def resolve_runtime(self, requested: str) -> str:
        """The runtime a run uses: `requested`, checked, or auto's pick (nothing loaded).

        Raises InputError naming the missing package or file.
        """
        if requested not in self._resolved:
            self._resolved[requested] = self._resolve(requested)
        return self._resolved[requested]

    def _resolve(self, requested: str) -> str:
        if requested == "tf" or (requested == "auto" and self.is_keras):
            return "tf"
        if requested == "auto":
            return self._auto()
        spec, _ = runtimes.parse(requested)
        if self.is_keras:
            raise InputError(
                f"--runtime={requested}: {self.path} is a .keras file; score an export folder "
                f"made by satx.train and `python -m satx.export --to={spec.family}`"
            )
        file = runtimes.model_file(self.path, requested)
        if not file.exists():
            raise InputError(
                f"--runtime={requested}: {file} does not exist; make it with `python -m "
                f"satx.export --model={self.path} --to={spec.family}"
                + (" --int8 --calibration=RECORDS`" if requested.endswith("int8") else "`")
            )
        if not runtimes.installed(requested):
            raise InputError(
                f"--runtime={requested}: the {spec.pip} package is not installed; "
                "pip install 'satx[runtimes]'"
            )
        return requested

    def _auto(self) -> str:
        record = self.runtimes
        best, best_rate = "tf", float(record.tf_tiles_per_s or 0)
        for name, entry in record.runtimes.items():
            if not entry.default_ok:
                log.info("runtime %s not used by auto: %s", name, entry.not_default_because)
                continue
            if not runtimes.installed(name):
                log.info(
                    "runtime %s exported but %s is not installed", name, runtimes.parse(name)[0].pip
                )
                continue
            if runtimes.model_file(self.path, name).exists() and entry.tiles_per_s > best_rate:
                best, best_rate = name, entry.tiles_per_s
        if best != "tf":
            log.info(
                "runtime auto: %s (%.0f tiles/s model alone at export, TensorFlow %.0f)",
                best,
                best_rate,
                record.tf_tiles_per_s or 0,
            )
        return best


def open_artifact(model: str | Path | Artifact) -> Artifact:
    """`--model` opened: checked and its small files read, nothing loaded (an Artifact: itself).

    Raises:
        InputError: no such path, not an export or `.keras` file, or an unreadable record.
    """
    if isinstance(model, Artifact):
        return model
    path = model_path(model)
    if path.is_file():  # a .keras file: its class names may sit beside it or one folder up
        names = _json_near(CLASS_NAMES_FILE, path.parent, path.parent.parent)
        return Artifact(path, names, Calibration(), RuntimesRecord())
    calibration = _json_near(CALIBRATION_FILE, path)
    return Artifact(
        path,
        _json_near(CLASS_NAMES_FILE, path),
        Calibration.from_dict(calibration) if calibration else Calibration(),
        RuntimesRecord.read(path),
    )


def report_threshold(path: str, class_names: list[str]) -> tuple[float, dict[str, Any]]:
    """The binary threshold an evaluate report.json chose, and the report.

    Raises:
        InputError: unreadable, or not a binary evaluation of these classes.
    """
    try:
        report = json.loads(Path(path).expanduser().read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"--threshold_from={path}: cannot read ({err})") from err
    if report.get("threshold") is None or report.get("class_names") != list(class_names):
        raise InputError(
            f"--threshold_from={path}: not a binary evaluation of classes "
            f"{list(class_names)} (found {report.get('class_names')})"
        )
    return float(report["threshold"]), report
