"""Gradient-based analyzers, the gradient and its modified forms.

* gradient (and iNNvestigate's ``gradient.baseline``), input times gradient, SmoothGrad,
  integrated gradients, plus the ``input`` and ``random`` baselines: all differentiate the
  selected logit (softmax stripped) with respect to the input, in one compiled function, on
  any differentiable single-input Keras model (see :mod:`analyzers.model.logits`): no layer needs a
  relevance rule.
* deconvnet and guided backprop: the gradient with a modified backward pass at ReLUs. Both
  walk the model's layer graph backwards (:func:`analyzers.model.graph.build_graph`, so they accept
  the layers the relevance engine supports), passing the signal through each layer's
  vector-Jacobian product (through any other activation by its derivative), except at a ReLU
  (a layer with ``activation="relu"``, an ``Activation("relu")`` or a ``ReLU`` layer):

  - deconvnet (Zeiler & Fergus 2014): the backward signal is rectified, ``relu(s)``, instead
    of being masked by the forward activation;
  - guided backprop (Springenberg et al. 2015): both, ``relu(s) * (z > 0)``.

  The walk starts from 1 at the explained logit, as the gradient does. iNNvestigate 2.1.2
  starts it from the logit's value instead, which scales the map by that value and, for a
  negative logit, flips the sign before the first ReLU; for a positive logit theirs equals
  ours times the logit. ``compat="innvestigate"`` starts from the logit's value.

With ``compat="innvestigate"`` every analyzer here that walks or runs the layer graph
passes max pooling with TensorFlow's tie rule (:class:`analyzers.canonizers.
TensorFlowTies`; in a model that is no layer graph of ours, its max-pooling layers are
swapped for ours: :func:`analyzers.ops.pooling.ties.swap_max_pooling`), and integrated gradients
takes iNNvestigate's path points (below).

Each analyzer is registered under its iNNvestigate name; the classes are defined in the
order of :func:`analyzers.list_analyzers` (iNNvestigate's).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from analyzers.analyzer import Analyzer
from analyzers.canonizers import TensorFlowTies
from analyzers.model.logits import check_model, logit_function
from analyzers.ops.pooling.ties import swap_max_pooling
from analyzers.registry import register
from analyzers.settings import Settings, is_innvestigate

_ZERO = tf.UnconnectedGradients.ZERO


@register("input")
class InputAnalyzer(Analyzer):
    """iNNvestigate's ``input``: the input itself (a baseline for comparisons)."""

    name = "input"

    def __init__(self, model: Any, *, settings: Settings | None = None) -> None:
        check_model(model)
        super().__init__(model, None, needs_graph=False, settings=settings)

    def _explain(self, x, index):
        return tf.identity(x)


@register("random")
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

    def __init__(self, model: Any, stddev: float = 1.0, seed: int | None = None, *,
                 settings: Settings | None = None) -> None:
        if not stddev >= 0:
            raise ValueError(f"stddev must be >= 0, got {stddev}")
        self.stddev = float(stddev)
        self._rng = tf.random.Generator.from_seed(seed) if seed is not None else \
            tf.random.Generator.from_non_deterministic_state()
        check_model(model)
        super().__init__(model, None, needs_graph=False, settings=settings)

    def _explain(self, x, index):
        return x + self._rng.normal(tf.shape(x), stddev=self.stddev)


@register("gradient")
class Gradient(Analyzer):
    """The gradient of the selected logit with respect to the input.

    Parameters
    ----------
    postprocess
        ``None``, ``"abs"`` or ``"square"`` (as in iNNvestigate).
    """

    name = "gradient"

    def __init__(self, model: Any, postprocess: str | None = None, *,
                 settings: Settings | None = None) -> None:
        if postprocess not in (None, "abs", "square"):
            raise ValueError(f"postprocess must be None, 'abs' or 'square', got {postprocess!r}")
        self.postprocess = postprocess
        self._forward, graph = logit_function(model)
        if is_innvestigate(settings):  # TensorFlow's tie rule at max pooling
            if graph is not None:
                graph = TensorFlowTies().apply(graph)
                self._forward = graph.forward
            else:
                self._forward = logit_function(swap_max_pooling(model))[0]
        super().__init__(model, graph, needs_graph=False, settings=settings)

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


@register("gradient.baseline")
class BaselineGradient(Gradient):
    """iNNvestigate's ``gradient.baseline``: the gradient by the framework's automatic
    differentiation. Ours computes every gradient that way, so this equals ``gradient``."""

    name = "gradient.baseline"


@register("input_t_gradient")
class InputTimesGradient(Gradient):
    """``x * gradient``."""

    name = "input_t_gradient"

    def _explain(self, x, index):
        return self._post(x * self._gradient(x, index))


class _ReluBackward(Analyzer):
    """Shared backward walk; subclasses choose the ReLU backward rule."""

    #: True: also mask by the forward activation (guided backprop).
    mask_by_forward = False

    def __init__(self, model: Any, *, settings: Settings | None = None) -> None:
        super().__init__(model, settings=settings)
        if is_innvestigate(settings):
            self.graph = TensorFlowTies().apply(self.graph)

    def _relu_backward(self, z: tf.Tensor, s: tf.Tensor) -> tf.Tensor:
        s = tf.nn.relu(s)
        return s * tf.cast(z > 0, s.dtype) if self.mask_by_forward else s

    def _explain(self, x: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        graph = self.graph
        values = graph.forward_all(x)
        logits = values[graph.output_id]
        start = self._selected(logits, index)
        if is_innvestigate(self.settings):  # iNNvestigate: from the logit's value
            start = start * logits
        signal = {graph.output_id: start}
        for step in reversed(graph.steps):
            s = signal.pop(step.output, None)
            if s is None:
                continue
            xs = [values[i] for i in step.inputs]
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(xs)
                z = step.op.preactivation(xs)
            activation = step.op.activation
            if activation is tf.nn.relu:
                s = self._relu_backward(z, s)
            elif activation is not None:  # any other activation: its derivative, as the gradient
                with tf.GradientTape(watch_accessed_variables=False) as inner:
                    inner.watch(z)
                    y = activation(z)
                s = inner.gradient(y, z, output_gradients=s, unconnected_gradients=_ZERO)
            grads = tape.gradient(z, xs, output_gradients=s, unconnected_gradients=_ZERO)
            for i, g in zip(step.inputs, grads):
                signal[i] = signal[i] + g if i in signal else g
        result = signal.get(graph.input_id)
        return tf.zeros_like(x) if result is None else result


@register("deconvnet")
class Deconvnet(_ReluBackward):
    """Deconvnet: rectify the backward signal at every ReLU (see module docstring)."""

    name = "deconvnet"


@register("guided_backprop")
class GuidedBackprop(_ReluBackward):
    """Guided backprop: rectify the backward signal and mask it by the forward ReLU."""

    name = "guided_backprop"
    mask_by_forward = True


@register("integrated_gradients")
class IntegratedGradients(Gradient):
    """``(x - x0) * mean_k grad(x0 + k/steps (x - x0))``, ``k = 1..steps`` (right Riemann
    sum of the path integral from the reference ``x0``; ``k = 0..steps-1``, the left sum,
    with ``compat="innvestigate"``, as iNNvestigate 2.1.2).

    Parameters
    ----------
    reference_inputs
        The baseline ``x0`` (scalar or array broadcastable to ``x``; default 0).
    steps
        Number of points on the path (64, as iNNvestigate).
    """

    name = "integrated_gradients"

    def __init__(self, model: Any, reference_inputs: Any = 0.0, steps: int = 64,
                 postprocess: str | None = None, *, settings: Settings | None = None
                 ) -> None:
        if int(steps) < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.steps = int(steps)
        self.reference_inputs = np.asarray(reference_inputs, dtype=np.float32)
        super().__init__(model, postprocess=postprocess, settings=settings)

    def _explain(self, x, index):
        x0 = tf.broadcast_to(tf.constant(self.reference_inputs), tf.shape(x))
        clean_logits = self._forward(x)
        total = tf.zeros_like(x)
        first = 0 if is_innvestigate(self.settings) else 1  # (iNNvestigate: left sum)
        for k in tf.range(first, first + self.steps):
            alpha = tf.cast(k, x.dtype) / float(self.steps)
            total += self._gradient(x0 + alpha * (x - x0), index, select_at=clean_logits)
        return self._post((x - x0) * total / float(self.steps))


@register("smoothgrad")
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
                 seed: int | None = None, postprocess: str | None = None, *,
                 settings: Settings | None = None) -> None:
        if int(augment_by_n) < 1:
            raise ValueError(f"augment_by_n must be >= 1, got {augment_by_n}")
        if not noise_scale >= 0:
            raise ValueError(f"noise_scale must be >= 0, got {noise_scale}")
        self.augment_by_n = int(augment_by_n)
        self.noise_scale = float(noise_scale)
        self._rng = tf.random.Generator.from_seed(seed) if seed is not None else \
            tf.random.Generator.from_non_deterministic_state()
        super().__init__(model, postprocess=postprocess, settings=settings)

    def _explain(self, x, index):
        clean_logits = self._forward(x)
        total = tf.zeros_like(x)
        for _ in tf.range(self.augment_by_n):
            noisy = x + self._rng.normal(tf.shape(x), stddev=self.noise_scale)
            total += self._gradient(noisy, index, select_at=clean_logits)
        return self._post(total / float(self.augment_by_n))


__all__ = ["BaselineGradient", "Deconvnet", "Gradient", "GuidedBackprop", "InputAnalyzer",
           "InputTimesGradient", "IntegratedGradients", "RandomAnalyzer", "SmoothGrad"]
