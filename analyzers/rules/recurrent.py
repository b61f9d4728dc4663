"""LRP through a recurrent layer (Arras et al. 2017): the cell's loop walked backwards, gates
held constant, activations by the identity rule, the linear parts and the sums by the rules
the composite gives them.

The layer's op (:class:`analyzers.ops.recurrent.layers.RecurrentOp`) runs the loop forward;
this rule starts from the relevance of the output (every step's with ``return_sequences``,
else the last one's) and, from the last timestep to the first, asks the cell
(:meth:`analyzers.ops.recurrent.cells.Cell.relevance`) for the relevance of ``x_t`` and of the
previous state. A masked timestep passes the relevance of its state on unchanged and gives ``x_t``
none; at a sample's first step the zero initial state is no input, so nothing is absorbed there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from analyzers.rules.base import Rule, Tensor


def select(mask: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Per sample: ``a`` where ``mask`` (``[batch]``, bool) is True, else ``b``."""
    shape = tf.concat([tf.shape(mask), tf.ones([tf.rank(a) - 1], tf.int32)], axis=0)
    return tf.where(tf.reshape(mask, shape), a, b)


def _step(cell: Any, run: Any, t: int, r_state: tuple, rules: Mapping[str, Rule]
          ) -> tuple[Tensor, tuple]:
    """The cell's relevance at step ``t``; per sample where only some samples start there."""
    fresh = run.fresh[t]
    if isinstance(fresh, bool):
        return cell.relevance(run.weights, run.records[t], r_state, rules, fresh)
    first = cell.relevance(run.weights, run.records[t], r_state, rules, True)
    later = cell.relevance(run.weights, run.records[t], r_state, rules, False)
    return (select(fresh, first[0], later[0]),
            tuple(select(fresh, a, b) for a, b in zip(first[1], later[1])))


def walk(op: Any, run: Any, r: Tensor, rules: Mapping[str, Rule]) -> Tensor:
    """Relevance of a recurrent layer's input sequence (in input order) from the relevance
    ``r`` of its output, for one :class:`~analyzers.ops.recurrent.layers.Run`."""
    steps = len(run.records)
    r_out = tf.unstack(r, num=steps, axis=1) if op.return_sequences else \
        [None] * (steps - 1) + [r]
    r_state = tuple(tf.zeros_like(s) for s in run.state)
    r_x: list[Tensor] = [None] * steps
    for t in reversed(range(steps)):
        mask = None if run.masks is None else run.masks[t]
        if r_out[t] is not None:
            r_t = r_out[t]
            if mask is not None and op.zero_output_for_mask:  # a zero output: no relevance
                r_t = select(mask, r_t, tf.zeros_like(r_t))
            r_state = (r_state[0] + r_t,) + r_state[1:]
        r_x_t, r_prev = _step(op.cell, run, t, r_state, rules)
        if mask is not None:  # a masked step: the state passes its relevance on, x_t gets none
            r_x_t = select(mask, r_x_t, tf.zeros_like(r_x_t))
            r_prev = tuple(select(mask, a, b) for a, b in zip(r_prev, r_state))
        r_state = r_prev
        r_x[t] = r_x_t
    out = tf.stack(r_x, axis=1)
    return tf.reverse(out, [1]) if op.go_backwards else out


class RecurrentRule(Rule):
    """LRP for LSTM, GRU, SimpleRNN, ConvLSTM and Bidirectional (Arras et al. 2017).

    Gates are held constant (a gated product gives all relevance to the signal, none to the
    gate), the activations of the candidate and the output pass relevance unchanged, and the
    cell's parts get the rules in ``rules`` (the composite's choice for each part):
    ``"linear"`` for the pre-activations, linear maps of ``[x_t, h_{t-1}]`` (epsilon, z,
    alpha-beta, z+, ...), ``"sum"`` for the sums of gated terms (the ``Add`` rule), and for
    Bidirectional the same per direction (``"forward/linear"``, ...) plus ``"merge"`` for
    merge modes sum / ave. Made by :meth:`analyzers.composites.Composite.rule_for`.
    """

    name = "recurrent"

    def __init__(self, rules: Mapping[str, Rule]) -> None:
        self.rules = dict(rules)

    def _side(self, side: str) -> dict[str, Rule]:
        prefix = f"{side}/"
        return {k[len(prefix):]: v for k, v in self.rules.items() if k.startswith(prefix)}

    # plain Python over a fixed number of timesteps: no control flow for autograph to convert
    @tf.autograph.experimental.do_not_convert
    def __call__(self, op, xs, r, nonnegative=False, stand_ins=None):
        xs = list(xs)
        no_mask = [tf.zeros_like(m) for m in xs[1:]]  # a mask gets no relevance
        directions = getattr(op, "directions", None)
        if directions is None:
            return [walk(op, op.run(xs), r, self.rules)] + no_mask
        forward, backward = op.runs(xs)
        if op.merge_mode == "concat":
            r_f, r_b = tf.split(r, 2, axis=-1)
        else:
            r_f, r_b = self.rules["merge"](op.merge, [forward.output, op.aligned(backward)], r)
        if op.return_sequences:  # back into the backward layer's processing order
            r_b = tf.reverse(r_b, [1])
        return [walk(directions[0], forward, r_f, self._side("forward"))
                + walk(directions[1], backward, r_b, self._side("backward"))] + no_mask

    def __repr__(self) -> str:
        return "RecurrentRule(" + ", ".join(f"{k}={v!r}" for k, v in self.rules.items()) + ")"


__all__ = ["RecurrentRule", "select", "walk"]
