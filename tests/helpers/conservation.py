"""One conservation check for every analyzers test: ``R.sum()`` against the explained logit.

A relevance total is a signed sum. Under the z, epsilon and alpha-beta rules its parts can be
far larger than the total (an untrained net's logit of 0.002 can be the difference of
relevance parts of magnitude 100), and float32 rounding is relative to those parts, not to
the total. So the tolerance has two terms:

* ``rtol * |target|``: what the rule itself may lose (epsilon's stabiliser, a leak the test
  documents); and
* ``ROUNDOFF * sum|R|``: float32 round-off. Each relevance-carrying step forms a share
  ``c_ij / z_j * R_j`` with a product, a quotient and a blocked sum (each at most the unit
  round-off ``u = 2**-24`` relative to the absolute relevance it carries); 64u covers the
  16 or so steps of the test models with room to spare. Measured: at most 2.2u of
  ``sum|R|`` on the untrained video builders under both TensorFlow kernel sets.

A check is only as sharp as its logit is large against ``sum|R|``: tests pick inputs with a
logit far from zero (:func:`ascent_inputs`) and :func:`assert_conserved` refuses a batch on
which the round-off term would swamp ``rtol * |target|`` by more than ``max_mass_ratio``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

#: float32 unit round-off.
UNIT_ROUNDOFF = 2.0 ** -24
#: round-off budget of a relevance total, relative to ``sum|R|`` (see the module docstring).
ROUNDOFF = 64 * UNIT_ROUNDOFF


def conservation_tolerance(relevance: np.ndarray, target: np.ndarray, rtol: float
                           ) -> np.ndarray:
    """Per-sample tolerance of ``|sum R - target|``: ``rtol * |target| + ROUNDOFF * sum|R|``."""
    mass = np.abs(relevance.reshape(len(relevance), -1)).astype(np.float64).sum(axis=1)
    return rtol * np.abs(np.asarray(target, np.float64)) + ROUNDOFF * mass


def assert_conserved(relevance: np.ndarray, target: np.ndarray, *, rtol: float = 1e-4,
                     max_mass_ratio: float | None = None, err_msg: str = "") -> None:
    """``relevance`` (batch first) sums to ``target`` per sample within
    :func:`conservation_tolerance`.

    ``max_mass_ratio``: if given, also assert that ``sum|R| / |target|`` stays below it for
    every sample, so that round-off cannot hide a loss much larger than ``rtol``.
    """
    relevance = np.asarray(relevance)
    target = np.asarray(target, np.float64)
    totals = relevance.reshape(len(relevance), -1).astype(np.float64).sum(axis=1)
    tolerance = conservation_tolerance(relevance, target, rtol)
    error = np.abs(totals - target)
    assert np.all(error <= tolerance), (
        f"{err_msg}: totals {totals} vs targets {target}: error {error} > tolerance "
        f"{tolerance} (rtol {rtol} of the target + {ROUNDOFF:.2e} of sum|R|)")
    if max_mass_ratio is not None:
        mass = np.abs(relevance.reshape(len(relevance), -1)).sum(axis=1)
        ratio = mass / np.maximum(np.abs(target), np.finfo(np.float64).tiny)
        assert np.all(ratio <= max_mass_ratio), (
            f"{err_msg}: sum|R| / |target| = {ratio} > {max_mass_ratio}: the logit is too "
            "close to zero for this check to be sharp; choose inputs with a larger logit")


def ascent_inputs(forward, x: np.ndarray, selection: np.ndarray, low: float, high: float,
                  steps: int = 3) -> np.ndarray:
    """Corners of the input box ``[low, high]`` that the selected logits' gradients point to.

    A few signed-gradient steps from ``x``: each sets every input to ``high`` where the
    selected logit grows with it and to ``low`` elsewhere. The logits of such inputs are far
    from zero against the relevance's absolute size, so a conservation check on them is sharp.
    """
    current = tf.constant(x)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(current)
            logits = forward(current)
            chosen = tf.reduce_sum(tf.gather(logits, selection, batch_dims=1))
        gradient = tape.gradient(chosen, current).numpy()
        current = tf.constant(np.where(gradient > 0, high, low).astype(np.float32))
    return current.numpy()
