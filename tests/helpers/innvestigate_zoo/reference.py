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
            f"`python tests/helpers/innvestigate_zoo/generate.py` in that environment"
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


class TableNoise:
    """Stands in for an analyzer's ``tf.random.Generator``: draw ``k`` of every call returns
    ``stddev * table[k % n]`` (``table`` ``[n, batch, *input]``), in a compiled loop too.

    ``smoothgrad`` draws one ``normal(shape(x))`` per noisy copy and ``random`` one per call;
    fed :func:`spec.make_noise` (the noise given to iNNvestigate by ``generate.py``), both
    libraries see the same noisy inputs, and everything else they do can be compared exactly.
    """

    def __init__(self, noise: np.ndarray) -> None:
        import tensorflow as tf

        self._tf = tf
        self.table = tf.constant(np.swapaxes(noise, 0, 1))  # [n, batch, ...]
        self.count = tf.Variable(0, dtype=tf.int64, trainable=False)

    def normal(self, shape: Any, stddev: float = 1.0, **_: Any) -> Any:
        k = self.count.assign_add(1) - 1
        draw = self._tf.gather(self.table, k % self.table.shape[0])
        return stddev * self._tf.reshape(draw, shape)


def with_fixed_noise(analyzer: Any, name: str) -> Any:
    """``analyzer`` drawing :func:`spec.make_noise` of zoo model ``name`` (if it draws noise)."""
    if not hasattr(analyzer, "_rng"):
        return analyzer
    noise = spec.make_noise(name)
    copies = getattr(analyzer, "augment_by_n", 1)  # random: one draw, iNNvestigate's copy 0
    if copies > spec.N_NOISE:
        raise ValueError(f"the zoo's fixed noise has {spec.N_NOISE} copies, not {copies}")
    analyzer._rng = TableNoise(noise[:, :copies])
    return analyzer


def create(name: str, analyzer_name: str, **options: Any) -> Any:
    """Our analyzer for zoo model ``name`` with the zoo's options and fixed noise."""
    import analyzers

    kwargs = {**spec.ANALYZER_KWARGS.get(analyzer_name, {}), **options}
    return with_fixed_noise(analyzers.create_analyzer(analyzer_name, model(name), **kwargs),
                            name)


@functools.cache
def ours(name: str, analyzer_name: str) -> Any:
    """Our analyzer (``analyzers`` package) for zoo model ``name`` (cached: one trace each)."""
    return create(name, analyzer_name)


def explain(name: str, analyzer_name: str, selection: str = "max") -> np.ndarray:
    """Our relevance for the stored inputs and selection (``max`` or ``min``) of ``name``."""
    data = load(name)
    return ours(name, analyzer_name).analyze(
        data["x"], neuron_selection=data[f"selection/{selection}"])
