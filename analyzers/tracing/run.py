"""Run a rewritten call inside the analyzer's graph: its output, and the relevance of its
inputs (``x`` times the rewritten graph's gradient, seeded with the output's relevance over
the output)."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from analyzers.tracing.gradients import IDENTITY_EPSILON
from analyzers.tracing.rewrite import ModifiedGraph


def _distinct(xs: Sequence[tf.Tensor]) -> tuple[list[tf.Tensor], list[int]]:
    """The distinct tensors of ``xs`` (by identity) and, per input, its index among them:
    self-attention's query and value are one tensor."""
    tensors: list[tf.Tensor] = []
    feed: list[int] = []
    for x in xs:
        k = next((k for k, t in enumerate(tensors) if t is x), None)
        if k is None:
            k = len(tensors)
            tensors.append(x)
        feed.append(k)
    return tensors, feed


def traced_output(graph: ModifiedGraph, xs: Sequence[tf.Tensor],
                  weights: Sequence[tf.Tensor]) -> tf.Tensor:
    """The call's output, computed by the rewritten graph imported into the current graph
    (graph mode): the same values as the call, with the modified gradients attached."""
    tensors, feed = _distinct(xs)
    input_map = {name: tensors[k] for name, k in zip(graph.inputs, feed)}
    input_map.update(zip(graph.weights, weights))
    input_map.update((name, tf.convert_to_tensor(value)) for name, value in graph.captures)
    (y,) = tf.graph_util.import_graph_def(graph.graph_def, input_map=input_map,
                                          return_elements=[graph.output],
                                          name="traced_relevance")
    return y


def relevance_at(graph: ModifiedGraph, y: tf.Tensor, xs: Sequence[tf.Tensor], r: tf.Tensor
                 ) -> list[tf.Tensor | None]:
    """Relevance of each input ``xs`` given the relevance ``r`` of ``y``, an output of
    :func:`traced_output` for these inputs (graph mode); ``None`` for an input that gets
    none (not a signal, held, or a tensor given a second time: it gets it once)."""
    tensors, feed = _distinct(xs)
    wanted = sorted({feed[i] for i, relevant in enumerate(graph.relevant_inputs) if relevant})
    if not wanted:
        return [None] * len(xs)
    seed = r / tf.where(y >= 0, y + IDENTITY_EPSILON, y - IDENTITY_EPSILON)
    targets = [tensors[k] for k in wanted]
    g = tf.gradients(y, targets, grad_ys=seed, unconnected_gradients="zero")
    by_tensor = {k: x * gk for k, x, gk in zip(wanted, targets, g)}
    return [by_tensor.pop(k, None) for k in feed]


def traced_relevance(graph: ModifiedGraph, xs: Sequence[tf.Tensor],
                     weights: Sequence[tf.Tensor], r: tf.Tensor) -> list[tf.Tensor | None]:
    """Relevance of each input ``xs`` of the call rewritten as ``graph``, given the relevance
    ``r`` of its output (:func:`traced_output`, then :func:`relevance_at`).

    Runs in graph mode (``tf.gradients`` sees the imported graph's modified gradients, a
    ``tf.GradientTape`` would not); called eagerly, it compiles itself.
    """
    xs = list(xs)
    if tf.executing_eagerly():
        tensors, feed = _distinct(xs)

        def run(ts: list[tf.Tensor], ws: list[tf.Tensor], rt: tf.Tensor) -> list:
            inner = [ts[k] for k in feed]
            return relevance_at(graph, traced_output(graph, inner, ws), inner, rt)

        found = tf.function(run, autograph=False)(tensors, list(weights), r)
        return list(found)
    return relevance_at(graph, traced_output(graph, xs, weights), xs, r)


__all__ = ["relevance_at", "traced_output", "traced_relevance"]
