"""runtimes.json as a table: each runtime's rate against TensorFlow's and its agreement."""

from __future__ import annotations

from typing import Any


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(manifest: dict[str, Any]) -> str:
    """One line per runtime: tiles/s, ratio to TF, max |diff|, AUC before/after, flips, auto."""
    tf_rate = manifest.get("tf_tiles_per_s") or 0.0
    lines = [
        f"agreement on {manifest.get('agreement_on')}; model alone at "
        f"{manifest.get('image_size')} px, batches of {manifest['config'].get('batch_size')}",
        f"{'runtime':<14} {'tiles/s':>8} {'vs tf':>6} {'max|diff|':>10} {'AUC tf':>7} "
        f"{'AUC':>7} {'flipped':>8}  auto",
        f"{'tf':<14} {tf_rate:>8.1f} {1:>6.2f} {'-':>10} {'':>7} {'':>7} {'':>8}  reference",
    ]
    for name, entry in manifest["runtimes"].items():
        a = entry["agreement"]
        ratio = entry["tiles_per_s"] / tf_rate if tf_rate else 0.0
        auto = "yes" if entry["default_ok"] else f"no: {entry['not_default_because']}"
        lines.append(
            f"{name:<14} {entry['tiles_per_s']:>8.1f} {ratio:>6.2f} {a['max_abs_diff']:>10.2e} "
            f"{_number(a['roc_auc_tf'], '.4f'):>7} {_number(a['roc_auc'], '.4f'):>7} "
            f"{a['flipped_share']:>8.2%}  {auto}"
        )
    return "\n".join(lines)
