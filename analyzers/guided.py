"""Deconvnet and guided backprop: the gradient with a modified backward pass at ReLUs.

Both walk the model's layer graph backwards (:func:`analyzers.graph.build_graph`, so they
accept the layers the relevance engine supports), passing the signal through each layer's
vector-Jacobian product (through any other activation by its derivative), except at a ReLU
(a layer with ``activation="relu"``, an ``Activation("relu")`` or a ``ReLU`` layer):

* deconvnet (Zeiler & Fergus 2014): the backward signal is rectified, ``relu(s)``, instead of
  being masked by the forward activation;
* guided backprop (Springenberg et al. 2015): both, ``relu(s) * (z > 0)``.

The walk starts from 1 at the explained logit, as the gradient does. iNNvestigate 2.1.2
starts it from the logit's value instead, which scales the map by that value and, for a
negative logit, flips the sign before the first ReLU; for a positive logit theirs equals
ours times the logit.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from analyzers.analyzer import Analyzer

_ZERO = tf.UnconnectedGradients.ZERO


class _ReluBackward(Analyzer):
    """Shared backward walk; subclasses choose the ReLU backward rule."""

    #: True: also mask by the forward activation (guided backprop).
    mask_by_forward = False

    def __init__(self, model: Any) -> None:
        super().__init__(model)

    def _relu_backward(self, z: tf.Tensor, s: tf.Tensor) -> tf.Tensor:
        s = tf.nn.relu(s)
        return s * tf.cast(z > 0, s.dtype) if self.mask_by_forward else s

    def _explain(self, x: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        graph = self.graph
        values = graph.forward_all(x)
        signal = {graph.output_id: self._selected(values[graph.output_id], index)}
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


class Deconvnet(_ReluBackward):
    """Deconvnet: rectify the backward signal at every ReLU (see module docstring)."""

    name = "deconvnet"


class GuidedBackprop(_ReluBackward):
    """Guided backprop: rectify the backward signal and mask it by the forward ReLU."""

    name = "guided_backprop"
    mask_by_forward = True


__all__ = ["Deconvnet", "GuidedBackprop"]
