"""Gradient-based analyzers: gradient (and iNNvestigate's ``gradient.baseline``), input
times gradient, SmoothGrad, integrated gradients, plus the ``input`` and ``random``
baselines. All differentiate the selected logit (softmax stripped) with respect to the
input, in one compiled function, on any differentiable single-input Keras model (see
:mod:`analyzers.logits`): no layer needs a relevance rule."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from analyzers.analyzer import Analyzer
from analyzers.logits import check_model, logit_function


class Gradient(Analyzer):
    """The gradient of the selected logit with respect to the input.

    Parameters
    ----------
    postprocess
        ``None``, ``"abs"`` or ``"square"`` (as in iNNvestigate).
    """

    name = "gradient"

    def __init__(self, model: Any, postprocess: str | None = None) -> None:
        if postprocess not in (None, "abs", "square"):
            raise ValueError(f"postprocess must be None, 'abs' or 'square', got {postprocess!r}")
        self.postprocess = postprocess
        self._forward, graph = logit_function(model)
        super().__init__(model, graph, needs_graph=False)

    def _gradient(self, x: tf.Tensor, index: tf.Tensor, select_at: tf.Tensor | None = None
                  ) -> tf.Tensor:
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            logits = self._forward(x)
        mask = self._selected(logits if select_at is None else select_at, index)
        return tape.gradient(logits, x, output_gradients=mask)

    def _post(self, g: tf.Tensor) -> tf.Tensor:
        if self.postprocess == "abs":
            return tf.abs(g)
        if self.postprocess == "square":
            return tf.square(g)
        return g

    def _explain(self, x, index):
        return self._post(self._gradient(x, index))


class InputTimesGradient(Gradient):
    """``x * gradient``."""

    name = "input_t_gradient"

    def _explain(self, x, index):
        return self._post(x * self._gradient(x, index))


class SmoothGrad(Gradient):
    """Mean gradient over ``augment_by_n`` noisy copies ``x + N(0, noise_scale^2)``.

    The explained neuron is chosen on the clean input, as in iNNvestigate. Unlike there,
    ``noise_scale`` is used (iNNvestigate 2.1.2 stores it but always adds noise of std 1).

    Parameters
    ----------
    augment_by_n
        Number of noisy copies (64, as iNNvestigate).
    noise_scale
        Standard deviation of the Gaussian noise, in input units.
    seed
        Seed of the noise (``None``: different noise on every call).
    """

    name = "smoothgrad"

    def __init__(self, model: Any, augment_by_n: int = 64, noise_scale: float = 1.0,
                 seed: int | None = None, postprocess: str | None = None) -> None:
        if int(augment_by_n) < 1:
            raise ValueError(f"augment_by_n must be >= 1, got {augment_by_n}")
        if not noise_scale >= 0:
            raise ValueError(f"noise_scale must be >= 0, got {noise_scale}")
        self.augment_by_n = int(augment_by_n)
        self.noise_scale = float(noise_scale)
        self._rng = tf.random.Generator.from_seed(seed) if seed is not None else \
            tf.random.Generator.from_non_deterministic_state()
        super().__init__(model, postprocess=postprocess)

    def _explain(self, x, index):
        clean_logits = self._forward(x)
        total = tf.zeros_like(x)
        for _ in tf.range(self.augment_by_n):
            noisy = x + self._rng.normal(tf.shape(x), stddev=self.noise_scale)
            total += self._gradient(noisy, index, select_at=clean_logits)
        return self._post(total / float(self.augment_by_n))


class IntegratedGradients(Gradient):
    """``(x - x0) * mean_k grad(x0 + k/steps (x - x0))``, ``k = 1..steps`` (right Riemann
    sum of the path integral from the reference ``x0``).

    Parameters
    ----------
    reference_inputs
        The baseline ``x0`` (scalar or array broadcastable to ``x``; default 0).
    steps
        Number of points on the path (64, as iNNvestigate).
    """

    name = "integrated_gradients"

    def __init__(self, model: Any, reference_inputs: Any = 0.0, steps: int = 64,
                 postprocess: str | None = None) -> None:
        if int(steps) < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.steps = int(steps)
        self.reference_inputs = np.asarray(reference_inputs, dtype=np.float32)
        super().__init__(model, postprocess=postprocess)

    def _explain(self, x, index):
        x0 = tf.broadcast_to(tf.constant(self.reference_inputs), tf.shape(x))
        clean_logits = self._forward(x)
        total = tf.zeros_like(x)
        for k in tf.range(1, self.steps + 1):
            alpha = tf.cast(k, x.dtype) / float(self.steps)
            total += self._gradient(x0 + alpha * (x - x0), index, select_at=clean_logits)
        return self._post((x - x0) * total / float(self.steps))


class BaselineGradient(Gradient):
    """iNNvestigate's ``gradient.baseline``: the gradient by the framework's automatic
    differentiation. Ours computes every gradient that way, so this equals ``gradient``."""

    name = "gradient.baseline"


class InputAnalyzer(Analyzer):
    """iNNvestigate's ``input``: the input itself (a baseline for comparisons)."""

    name = "input"

    def __init__(self, model: Any) -> None:
        check_model(model)
        super().__init__(model, None, needs_graph=False)

    def _explain(self, x, index):
        return tf.identity(x)


class RandomAnalyzer(Analyzer):
    """iNNvestigate's ``random``: the input plus Gaussian noise ``N(0, stddev^2)``.

    Parameters
    ----------
    stddev
        Standard deviation of the noise (1, as iNNvestigate).
    seed
        Seed of the noise (``None``: different noise on every call; iNNvestigate has no
        seed).
    """

    name = "random"

    def __init__(self, model: Any, stddev: float = 1.0, seed: int | None = None) -> None:
        if not stddev >= 0:
            raise ValueError(f"stddev must be >= 0, got {stddev}")
        self.stddev = float(stddev)
        self._rng = tf.random.Generator.from_seed(seed) if seed is not None else \
            tf.random.Generator.from_non_deterministic_state()
        check_model(model)
        super().__init__(model, None, needs_graph=False)

    def _explain(self, x, index):
        return x + self._rng.normal(tf.shape(x), stddev=self.stddev)
