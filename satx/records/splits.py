"""Assign tiles to named splits: spatially blocked, class-stratified, deterministic from a seed.

Tiles with geolocation are grouped by their parent tile at the split zoom (so neighbours never
straddle two splits), groups that share an identical image are merged (so duplicates never
straddle either), and the resulting blocks are placed one by one, in seeded order, into the split
whose per-class targets they help most. Tiles without geolocation are split by hashing their
content with the seed: stable as the dataset grows, and duplicates land together by construction.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SplitItem:
    """What the splitter needs to know about one tile."""

    group: str | None  # spatial block key (parent tile), or None without geolocation
    content: str  # content hash
    label: int


def seeded_unit(seed: int, key: str) -> float:
    """A uniform number in [0, 1) determined by (seed, key) alone."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _components(items: Sequence[SplitItem]) -> list[list[int]]:
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_seen: dict[str, int] = {}
    for i, item in enumerate(items):
        for key in (f"g:{item.group}" if item.group else None, f"c:{item.content}"):
            if key is None:
                continue
            j = first_seen.setdefault(key, i)
            parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(items)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


class _Balancer:
    """Greedy placement minimising squared deviation from per-class and total targets."""

    def __init__(self, fractions: Sequence[float], class_totals: Counter):
        self.fractions = list(fractions)
        self.totals = class_totals
        self.grand = max(sum(class_totals.values()), 1)
        self.counts = [Counter() for _ in fractions]
        self.sizes = [0] * len(fractions)

    def _delta(self, s: int, block: Counter) -> float:
        f, n = self.fractions[s], self.counts[s]
        delta = 0.0
        for c, g in block.items():
            target = f * self.totals[c]
            delta += ((n[c] + g - target) ** 2 - (n[c] - target) ** 2) / max(self.totals[c], 1)
        size, target = self.sizes[s], f * self.grand
        g = sum(block.values())
        return delta + ((size + g - target) ** 2 - (size - target) ** 2) / self.grand

    def place(self, block: Counter) -> int:
        s = min(range(len(self.fractions)), key=lambda k: self._delta(k, block))
        self.counts[s].update(block)
        self.sizes[s] += sum(block.values())
        return s


def assign_splits(
    items: Sequence[SplitItem], splits: Sequence[tuple[str, float]], seed: int
) -> list[str]:
    """Return the split name of every item (same order as `items`)."""
    names = [n for n, _ in splits]
    fractions = [f for _, f in splits]
    edges = [sum(fractions[: i + 1]) for i in range(len(fractions))]
    result: list[str] = [""] * len(items)
    spatial: list[list[int]] = []
    for comp in _components(items):
        if any(items[i].group for i in comp):
            spatial.append(comp)
            continue
        u = seeded_unit(seed, min(items[i].content for i in comp))
        name = names[next((k for k, e in enumerate(edges) if u < e), len(names) - 1)]
        for i in comp:
            result[i] = name
    totals = Counter(items[i].label for comp in spatial for i in comp)
    balancer = _Balancer(fractions, totals)

    def order(comp: list[int]) -> float:
        return seeded_unit(seed, min(items[i].group or "" for i in comp if items[i].group))

    for comp in sorted(spatial, key=order):
        s = balancer.place(Counter(items[i].label for i in comp))
        for i in comp:
            result[i] = names[s]
    return result
