"""Rules that redistribute by modified weights alone, not by the inputs: deep Taylor w^2
and the flat rule."""

from __future__ import annotations

import tensorflow as tf

from analyzers.rules.base import Rule, Tensor, grads, stabilize


class _InputIndependentRule(Rule):
    """Shared part of w^2 and flat: redistribution by modified weights, not by inputs."""

    epsilon = 1e-12

    def _kernel(self, kernel: Tensor) -> Tensor:
        raise NotImplementedError

    def stand_in_inputs(self, x: Tensor) -> tuple[Tensor]:
        """The inputs the weights are applied to: ones."""
        return (tf.ones_like(x),)

    def __call__(self, op, xs, r, nonnegative=False, stand_ins=None):
        ones = ([stand_ins[0]] if stand_ins is not None
                else [self.stand_in_inputs(x)[0] for x in xs])
        kernel = self._kernel(op.kernel) if op.has_weights else None
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(ones)
            z = op.linear(ones, kernel, None) if op.has_weights else op.linear(ones)
        return grads(z, ones, tape, r / stabilize(z, self.epsilon))


class WSquareRule(_InputIndependentRule):
    """Deep Taylor w^2 rule (unbounded inputs): ``R_i = sum_j w_ij^2 / sum_i' w_i'j^2 R_j``.
    On weightless maps (pooling, Add) it splits evenly over each window."""

    name = "w_square"

    def __init__(self) -> None:
        pass

    def _kernel(self, kernel: Tensor) -> Tensor:
        return tf.square(kernel)


class FlatRule(_InputIndependentRule):
    """Flat rule: all weights set to one, ``R_i = sum_j R_j / n_j`` over the receptive field."""

    name = "flat"

    def __init__(self) -> None:
        pass

    def _kernel(self, kernel: Tensor) -> Tensor:
        return tf.ones_like(kernel)


__all__ = ["FlatRule", "WSquareRule"]
