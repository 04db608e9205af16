from collections import Counter, defaultdict

import numpy as np
import pytest

from satx.config import parse_split_spec
from satx.errors import InputError
from satx.records.splits import SplitItem, assign_splits

SPEC = (("train", 0.7), ("val", 0.15), ("test", 0.15))


def _items(n_blocks=200, per_block=(2, 15), seed=0, dup_every=0):
    rng = np.random.default_rng(seed)
    items = []
    for b in range(n_blocks):
        for k in range(int(rng.integers(*per_block))):
            label = int(rng.random() < 0.25)  # imbalanced, like school/not_school
            items.append(SplitItem(group=f"12/{b}/0", content=f"c{b}-{k}", label=label))
    if dup_every:  # copies of images sitting in other blocks
        for i in range(0, len(items), dup_every):
            src = items[i]
            items.append(
                SplitItem(group=f"12/{(i * 7) % n_blocks}/0", content=src.content, label=src.label)
            )
    return items


def test_parse_split_spec():
    assert parse_split_spec("train:0.8,val:0.2") == (("train", 0.8), ("val", 0.2))
    for bad in ["train", "train:0.5", "Train:1", "a:0.5,a:0.5", "a:x", "", "a:-1,b:2"]:
        with pytest.raises(InputError):
            parse_split_spec(bad)


def test_no_block_in_two_splits_and_ratios_within_tolerance():
    items = _items()
    names = assign_splits(items, SPEC, seed=1)
    blocks = defaultdict(set)
    for item, name in zip(items, names, strict=True):
        blocks[item.group].add(name)
    assert all(len(s) == 1 for s in blocks.values())
    counts = Counter(names)
    for name, fraction in SPEC:
        assert abs(counts[name] / len(items) - fraction) < 0.02
    for label in (0, 1):  # approximately stratified
        per = Counter(n for i, n in zip(items, names, strict=True) if i.label == label)
        total = sum(per.values())
        for name, fraction in SPEC:
            assert abs(per[name] / total - fraction) < 0.05


def test_duplicates_never_cross_splits():
    items = _items(dup_every=9)
    names = assign_splits(items, SPEC, seed=2)
    by_content = defaultdict(set)
    for item, name in zip(items, names, strict=True):
        by_content[item.content].add(name)
    assert any(Counter(i.content for i in items)[c] > 1 for c in by_content)
    assert all(len(s) == 1 for s in by_content.values())


def test_deterministic_from_seed():
    items = _items()
    assert assign_splits(items, SPEC, seed=5) == assign_splits(items, SPEC, seed=5)
    assert assign_splits(items, SPEC, seed=5) != assign_splits(items, SPEC, seed=6)


def test_without_geolocation_hashed_split_is_stable_as_data_grows():
    items = [SplitItem(None, f"h{i}", i % 3) for i in range(3000)]
    names = assign_splits(items, SPEC, seed=0)
    counts = Counter(names)
    for name, fraction in SPEC:
        assert abs(counts[name] / len(items) - fraction) < 0.03
    grown = items + [SplitItem(None, f"new{i}", 0) for i in range(500)]
    assert assign_splits(grown, SPEC, seed=0)[: len(items)] == names


def test_duplicate_without_geolocation_follows_its_geolocated_copy():
    items = [SplitItem(f"12/{b}/0", f"c{b}", 0) for b in range(50)]
    items += [SplitItem(None, f"c{b}", 0) for b in range(50)]
    names = assign_splits(items, SPEC, seed=0)
    assert names[:50] == names[50:]
