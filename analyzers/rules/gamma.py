"""LRP-gamma, generalised to signed inputs (Montavon et al. 2019; Andéol et al. 2021), the
form Zennit 1.0's ``Gamma`` computes and LXT applies to vision transformers."""

from __future__ import annotations

import tensorflow as tf

from analyzers.rules.base import Rule, grads, stabilize


def _boost(w: tf.Tensor, gamma: float, sign: int) -> tf.Tensor:
    """``w + gamma * w+`` (``sign=+1``) or ``w + gamma * w-`` (``sign=-1``)."""
    return w + gamma * (tf.nn.relu(w) if sign > 0 else tf.minimum(w, 0.0))


class GammaRule(Rule):
    """Gamma rule: contributions of the output's sign boosted by ``gamma``.

    Where the output ``z = x w + b`` is positive, relevance goes in proportion to
    ``x+ (w + gamma w+) + x- (w + gamma w-)`` (bias ``b + gamma b+``); where it is negative,
    to ``x+ (w + gamma w-) + x- (w + gamma w+)`` (bias ``b + gamma b-``); a neuron with
    ``z = 0`` passes none. ``gamma = 0`` is the epsilon rule; a large ``gamma`` approaches
    z+ on positive outputs. Denominators are stabilized by ``epsilon * sign``.

    Parameters
    ----------
    gamma
        Boost of the contributions that agree with the output's sign (>= 0).
    epsilon
        Stabilizer (> 0).
    bias
        Whether the (boosted) bias joins the denominators.
    """

    name = "gamma"

    def __init__(self, gamma: float = 0.25, epsilon: float = 1e-6, bias: bool = True) -> None:
        if not gamma >= 0:
            raise ValueError(f"gamma must be >= 0, got {gamma!r}")
        if not epsilon > 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
        self.gamma = float(gamma)
        self.epsilon = float(epsilon)
        self.bias = bool(bias)

    def __call__(self, op, xs, r, nonnegative=False, stand_ins=None):
        (x,) = xs
        kernel, b = op.kernel, (op.bias if self.bias else None)
        up, down = _boost(kernel, self.gamma, +1), _boost(kernel, self.gamma, -1)
        b_up = None if b is None else _boost(b, self.gamma, +1)
        b_down = None if b is None else _boost(b, self.gamma, -1)
        xp, xn = tf.nn.relu(x), tf.minimum(x, 0.0)
        z = op.linear([x], kernel, b)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([xp, xn])
            z_pos = op.linear([xp], up, b_up) + op.linear([xn], down, None)
            z_neg = op.linear([xp], down, b_down) + op.linear([xn], up, None)
        zero = tf.zeros_like(r)
        seeds = [tf.where(z > 0, r / stabilize(z_pos, self.epsilon), zero),
                 tf.where(z < 0, r / stabilize(z_neg, self.epsilon), zero)]
        g = grads([z_pos, z_neg], [xp, xn], tape, seeds)
        return [xp * g[0] + xn * g[1]]


__all__ = ["GammaRule"]
