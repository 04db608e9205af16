"""How `satx.predict` writes: rows per format, resumable chunk parts, the merged files.

The folder's layout is `satx.predict.result`. A chunk without its `.done.json` is redone from
scratch on the next run and overwrites its parts, so a killed run never loses or duplicates a
tile. `Labeller` owns the rule that turns probabilities into a label, a score and a hit.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from satx.errors import InputError, OutputExistsError
from satx.io import claim, csv_out, failpoints, secrets, storage
from satx.io.lock import output_lock
from satx.predict.formats import FORMATS, ChunkRows, Merge, chunk_parts, concatenate, part_name
from satx.predict.result import CONFIG_NAME, ERRORS_NAME, LAYOUT, MASK_DIR, PROGRESS_NAME
from satx.predict.windows import WINDOWS_NAME, WINDOWS_PART
from satx.predict.windows import header as windows_header
from satx.tiles.refs import TileRef

log = logging.getLogger(__name__)

ERROR_COLUMNS = ["source_id", "z", "x", "y", "reason", "detail"]


@dataclass(frozen=True)
class Labeller:
    """Turns class probabilities into (label, score) for output rows.

    Binary: score = probability of the positive class (the second class unless named), label =
    positive when score >= threshold. Multi-class: score = probability of the named positive
    class, or of the top class when none is named; label = the top class.
    """

    class_names: tuple[str, ...]
    positive: int | None
    threshold: float

    @classmethod
    def make(cls, class_names: list[str], positive_class: str, threshold: float) -> Labeller:
        """Resolve the positive class name (empty: the second of two classes, else none)."""
        if positive_class and positive_class not in class_names:
            raise InputError(f"--positive_class={positive_class}: the model has {class_names}")
        positive = class_names.index(positive_class) if positive_class else None
        if positive is None and len(class_names) == 2:
            positive = 1
        return cls(tuple(class_names), positive, threshold)

    @property
    def positive_name(self) -> str | None:
        """The class whose probability is the score (None: the top class's)."""
        return None if self.positive is None else self.class_names[self.positive]

    def label_score(self, probs: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Labels and scores for probabilities [N, K]."""
        top = np.argmax(probs, axis=1)
        if self.positive is None:
            return [self.class_names[i] for i in top], probs[np.arange(len(top)), top]
        score = probs[:, self.positive]
        if len(self.class_names) == 2:
            other = 1 - self.positive
            picks = np.where(score >= self.threshold, self.positive, other)
            return [self.class_names[i] for i in picks], score
        return [self.class_names[i] for i in top], score

    def is_hit(self, score: float, label: str) -> bool:
        """Whether a row labelled by this rule is a hit of the positive class.

        Binary: its score reaches the threshold. Multi-class: its label is the positive class.
        """
        if len(self.class_names) == 2:
            return score >= self.threshold
        return self.positive is not None and label == self.class_names[self.positive]


def format_rows(
    tiles: list[TileRef],
    labels: list[str],
    scores: np.ndarray,
    probs: np.ndarray,
    class_names: tuple[str, ...],
    formats: Iterable[str],
) -> dict[str, str | bytes]:
    """One chunk's part per format, from its kept rows (the raster: every one of them)."""
    return chunk_parts(ChunkRows(tiles, labels, scores, probs, class_names), tuple(formats))


def format_errors(tiles: list[TileRef], errors: dict[int, tuple[str, str]]) -> str:
    """One chunk's errors as CSV lines (no header)."""
    out = io.StringIO()
    writer = csv_out.writer(out)
    for i in sorted(errors):
        t = tiles[i].tile
        reason, detail = errors[i]
        z, x, y = (t.z, t.x, t.y) if t is not None else ("", "", "")
        writer.writerow([tiles[i].source_id, z, x, y, reason, detail])
    return secrets.scrub(out.getvalue())


def _what_differs(found: str, wanted: str) -> str:
    """Which part of a run's identity changed, in words (a mask is named on its own)."""
    try:
        a, b = json.loads(found), json.loads(wanted)
    except ValueError:
        return "different model, input or settings"
    mask_keys = [k for k in set(a.get("input", {})) | set(b.get("input", {})) if "mask" in k]
    if any(a.get("input", {}).get(k) != b.get("input", {}).get(k) for k in mask_keys):
        return "a different --mask: its file's content, buffer or threshold changed"
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return f"different {', '.join(changed)}" if changed else "different settings"


def locked_output(config: Any) -> contextlib.AbstractContextManager:
    """Predict's output claimed (`satx.io.claim`) and locked: refused when it overlaps an input."""
    given = config.inputs
    inputs = (
        ("--input", given.input),
        ("--model", config.scoring.model),
        ("--mask", given.mask),
        ("--aoi", given.aoi),
        ("--tiles", claim.template_root(given.source.tiles)),
    )
    return output_lock(config.outputs.output, "predict", LAYOUT, inputs)


class PredictionOutput:
    """The output folder of one prediction run (see the module docstring)."""

    def __init__(
        self,
        root: str,
        formats: tuple[str, ...],
        class_names: tuple[str, ...],
        columns: tuple[str, ...] = (),
    ):
        self.root, self.formats, self.class_names = root, formats, class_names
        self.columns = columns  # the input's own columns in the rows (coverage, for scenes)
        self.store = storage.open_store(root)

    part = staticmethod(part_name)

    def start(self, identity: dict[str, Any], overwrite: bool) -> None:
        """Claim the folder for this run, or check that it already belongs to it (resume)."""
        wanted = secrets.scrub(json.dumps(identity, sort_keys=True, indent=2))
        if self.store.exists(CONFIG_NAME):
            found = self.store.read_bytes(CONFIG_NAME).decode()
            if found == wanted:
                return
            if not overwrite:
                raise OutputExistsError(
                    f"{self.store.url(CONFIG_NAME)}: this output belongs to another prediction run "
                    f"({_what_differs(found, wanted)}); pass --overwrite to replace it or "
                    "choose another --output"
                )
        elif self.store.list("parts") and not overwrite:
            raise OutputExistsError(
                f"{self.root}: holds parts but no {CONFIG_NAME}; use --overwrite"
            )
        if overwrite:  # the mask's tiles stay: they are named by their content
            claim.remove_owned(self.store, LAYOUT, keep=(f"{MASK_DIR}/",))
        self.store.write_bytes(CONFIG_NAME, wanted.encode())

    def done_chunks(self) -> set[int]:
        """Chunks with a done marker (one listing)."""
        return {
            int(name[len("parts/") :].split(".")[0])
            for name in self.store.list("parts")
            if name.endswith(".done.json")
        }

    def write_chunk(
        self, chunk: int, texts: dict[str, str | bytes], errors_text: str, stats: dict[str, Any]
    ) -> None:
        """Write a chunk's parts, then its done marker (the order is what makes resume exact).

        `texts` is keyed by format, or by a part's suffix (`windows.csv`, with `--context`).
        """
        for key, text in texts.items():
            data = text.encode() if isinstance(text, str) else text
            name = FORMATS[key].part_name(chunk) if key in FORMATS else self.part(chunk, key)
            self.store.write_bytes(name, data)
        self.store.write_bytes(self.part(chunk, "errors.csv"), errors_text.encode())
        failpoints.hit("predict.chunk_written")
        self.store.write_bytes(self.part(chunk, "done.json"), json.dumps(stats).encode())

    def write_progress(self, progress: dict[str, Any]) -> None:
        """Rewrite progress.json (atomic)."""
        self.store.write_bytes(PROGRESS_NAME, json.dumps(progress, indent=2).encode())

    def chunk_stats(self, chunks: int) -> list[dict[str, Any]]:
        """Every chunk's done marker, in order."""
        return [json.loads(self.store.read_bytes(self.part(k, "done.json"))) for k in range(chunks)]

    def merge(self, chunks: int, kept: int) -> dict[str, str]:
        """Every format's parts merged (`formats.FORMATS`) in chunk order; returns their URLs.

        `kept` is the rows the chunks hold in all (their done markers' sum). Every chunk is
        done by now, so a temp file left in `parts/` is a dead writer's (a worker killed
        mid-chunk, whose chunk another worker then wrote): it goes.
        """
        storage.delete_temps(self.store, "parts")
        merge = Merge(self.store, chunks, kept, self.class_names, self.columns)
        written = {}
        for fmt in self.formats:
            url = FORMATS[fmt].merge(FORMATS[fmt], merge)
            if url is not None:
                written[fmt] = url
        if chunks and self.store.exists(self.part(0, WINDOWS_PART)):  # --context
            parts = [self.part(k, WINDOWS_PART) for k in range(chunks)]
            concatenate(self.store, WINDOWS_NAME, parts, windows_header(self.class_names))
            written["windows"] = self.store.url(WINDOWS_NAME)
        errors = [self.part(k, "errors.csv") for k in range(chunks)]
        concatenate(self.store, ERRORS_NAME, errors, ",".join(ERROR_COLUMNS) + "\n")
        written["errors"] = self.store.url(ERRORS_NAME)
        return written
