"""Split assignment: the split names, the default val/test fractions, and assigning
train/val/test per class (:func:`stratified_splits`) or by whole groups (:func:`group_splits`,
videos of one group never straddle splits)."""

from __future__ import annotations

import numpy as np

#: Split names a manifest may use.
SPLITS = ("train", "val", "test")

#: Fractions of each class given to val and test when a manifest (or synth) assigns splits.
VAL_FRACTION = 0.2
TEST_FRACTION = 0.2


def stratified_splits(
    labels: list[str], keys: list[str], seed: int = 0,
    val_fraction: float = VAL_FRACTION, test_fraction: float = TEST_FRACTION,
) -> list[str]:
    """Assign train/val/test per class, deterministically from ``seed`` and the sort ``keys``.

    Within each class the videos (sorted by key) are shuffled with ``seed``; the first
    ``round(val_fraction * n)`` go to val, the next ``round(test_fraction * n)`` to test, the rest
    to train. A class of at least three videos gets at least one of each.
    """
    splits = [""] * len(labels)
    rng = np.random.default_rng(seed)
    for label in sorted(set(labels)):
        members = sorted((k, i) for i, (lab, k) in enumerate(zip(labels, keys)) if lab == label)
        order = [members[j][1] for j in rng.permutation(len(members))]
        n = len(order)
        n_val = int(round(val_fraction * n))
        n_test = int(round(test_fraction * n))
        if n >= 3:
            n_val, n_test = max(n_val, 1), max(n_test, 1)
        for rank, index in enumerate(order):
            splits[index] = "val" if rank < n_val else "test" if rank < n_val + n_test else "train"
    return splits


def group_splits(
    labels: list[str], groups: list[str], keys: list[str], fractions: dict[str, float],
    seed: int = 0, rest: str = "train",
) -> list[str]:
    """Assign whole groups to splits, stratified by each group's most common label.

    Videos without a group are their own group (keyed by ``keys``). Per label, the groups
    (sorted, then shuffled with ``seed``) fill each split of ``fractions`` in order until it
    holds ``round(fraction * n)`` of that label's ``n`` videos (at least one group when the
    label has three groups or more); the rest go to ``rest``. So no group straddles splits.
    """
    unit = [g if g else f"\0{k}" for g, k in zip(groups, keys)]
    members: dict[str, list[int]] = {}
    for i, g in enumerate(unit):
        members.setdefault(g, []).append(i)
    by_label: dict[str, list[str]] = {}
    for g, idx in members.items():
        values, counts = np.unique([labels[i] for i in idx], return_counts=True)
        by_label.setdefault(str(values[np.argmax(counts)]), []).append(g)
    out = [rest] * len(labels)
    rng = np.random.default_rng(seed)
    for label in sorted(by_label):
        names = sorted(by_label[label])
        names = [names[j] for j in rng.permutation(len(names))]
        n = sum(len(members[g]) for g in names)
        cursor = 0
        for split, fraction in fractions.items():
            want = int(round(fraction * n))
            if len(names) >= len(fractions) + 1:
                want = max(want, 1)
            taken = 0
            while cursor < len(names) - 1 and taken < want:
                for i in members[names[cursor]]:
                    out[i] = split
                taken += len(members[names[cursor]])
                cursor += 1
    return out
