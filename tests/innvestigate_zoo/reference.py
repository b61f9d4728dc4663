"""Read the stored iNNvestigate references and compare relevance maps (Keras 3 side)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from . import build_keras3, spec

REFERENCE_DIR = Path(__file__).resolve().parent / "references"

#: Agreement tolerance of the cross-check: ``relative_difference(ours, theirs) <= RTOL``.
RTOL = 1e-4


def relative_difference(ours: np.ndarray, theirs: np.ndarray) -> float:
    """``max |ours - theirs| / max |theirs|`` over the whole batch.

    Scaled by the largest reference value rather than elementwise, so that near-zero
    voxels (most of a relevance map) do not turn float32 round-off into large ratios. An
    all-zero reference gives the absolute ``max |ours|``.
    """
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    if ours.shape != theirs.shape:
        raise ValueError(f"shapes differ: ours {ours.shape}, reference {theirs.shape}")
    scale = float(np.max(np.abs(theirs)))
    diff = float(np.max(np.abs(ours - theirs)))
    return diff / scale if scale > 0 else diff


def per_sample_sum(relevance: np.ndarray) -> np.ndarray:
    """Total relevance of each sample, ``[batch]``."""
    relevance = np.asarray(relevance, np.float64)
    return relevance.reshape(len(relevance), -1).sum(axis=1)


@functools.cache
def load(name: str) -> dict[str, np.ndarray]:
    """All arrays stored for zoo model ``name`` (cached; treat as read-only)."""
    path = REFERENCE_DIR / f"{name}.npz"
    if not path.exists():
        raise FileNotFoundError(
            f"no iNNvestigate reference {path}; run `tox -e innvestigate` after "
            f"`python tests/innvestigate_zoo/generate.py` in that environment"
        )
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def weights(name: str) -> dict[str, list[np.ndarray]]:
    """The weights stored with model ``name``."""
    return spec.unflatten_weights(load(name))


@functools.cache
def model(name: str) -> Any:
    """Zoo model ``name`` built with Keras 3 from its stored weights (cached)."""
    return build_keras3.build(name, weights(name))


def selected_logits(name: str, selection: str = "max") -> np.ndarray:
    """The stored (iNNvestigate-side) logit explained for each sample."""
    data = load(name)
    index = data[f"selection/{selection}"]
    return data["logits"][np.arange(len(index)), index].astype(np.float64)


def stored_cases(names=None) -> list[tuple[str, str, str]]:
    """``(model, analyzer, selection)`` of every stored relevance map."""
    cases = []
    for name in names or spec.REFERENCE_MODELS:
        for key in sorted(load(name)):
            if key.startswith("relevance/"):
                _, analyzer, selection = key.split("/")
                cases.append((name, analyzer, selection))
    return cases


@functools.cache
def ours(name: str, analyzer_name: str) -> Any:
    """Our analyzer (``analyzers`` package) for zoo model ``name`` (cached: one trace each)."""
    import analyzers

    kwargs = spec.ANALYZER_KWARGS.get(analyzer_name, {})
    return analyzers.create_analyzer(analyzer_name, model(name), **kwargs)


def explain(name: str, analyzer_name: str, selection: str = "max") -> np.ndarray:
    """Our relevance for the stored inputs and selection (``max`` or ``min``) of ``name``."""
    data = load(name)
    return ours(name, analyzer_name).analyze(
        data["x"], neuron_selection=data[f"selection/{selection}"])
