"""Run a rewritten call inside the analyzer's graph: relevance of its inputs."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from analyzers.tracing.gradients import IDENTITY_EPSILON
from analyzers.tracing.rewrite import ModifiedGraph


def _relevance(graph: ModifiedGraph, tensors: Sequence[tf.Tensor], feed: Sequence[int],
               weights: Sequence[tf.Tensor], r: tf.Tensor, wanted: Sequence[int]
               ) -> list[tf.Tensor]:
    """Relevance of ``tensors[k]`` for each ``k`` in ``wanted``; input ``i`` of the graph is
    fed ``tensors[feed[i]]`` (graph mode)."""
    input_map = {name: tensors[k] for name, k in zip(graph.inputs, feed)}
    input_map.update(zip(graph.weights, weights))
    input_map.update((name, tf.convert_to_tensor(value)) for name, value in graph.captures)
    (y,) = tf.graph_util.import_graph_def(graph.graph_def, input_map=input_map,
                                          return_elements=[graph.output],
                                          name="traced_relevance")
    seed = r / tf.where(y >= 0, y + IDENTITY_EPSILON, y - IDENTITY_EPSILON)
    targets = [tensors[k] for k in wanted]
    g = tf.gradients(y, targets, grad_ys=seed, unconnected_gradients="zero")
    return [x * gk for x, gk in zip(targets, g)]


def traced_relevance(graph: ModifiedGraph, xs: Sequence[tf.Tensor],
                     weights: Sequence[tf.Tensor], r: tf.Tensor) -> list[tf.Tensor | None]:
    """Relevance of each input ``xs`` of the call rewritten as ``graph``, given the
    relevance ``r`` of its output: ``x * gradient`` of the rewritten graph seeded with
    ``r / y`` (the output's relevance as a gradient). ``None`` for an input that gets no
    relevance: not a signal, held, or a tensor given a second time (self-attention's query
    and value are one tensor, which gets its relevance once).

    Runs in graph mode (``tf.gradients`` sees the imported graph's modified gradients, a
    ``tf.GradientTape`` would not); called eagerly, it compiles itself.
    """
    xs = list(xs)
    tensors: list[tf.Tensor] = []
    feed: list[int] = []
    for x in xs:
        k = next((k for k, t in enumerate(tensors) if t is x), None)
        if k is None:
            k = len(tensors)
            tensors.append(x)
        feed.append(k)
    wanted = sorted({feed[i] for i, relevant in enumerate(graph.relevant_inputs) if relevant})
    if not wanted:
        return [None] * len(xs)
    if tf.executing_eagerly():
        fn = tf.function(lambda a, b, c: _relevance(graph, a, feed, b, c, wanted),
                         autograph=False)
        found = fn(tensors, list(weights), r)
    else:
        found = _relevance(graph, tensors, feed, list(weights), r, wanted)
    by_tensor = dict(zip(wanted, found))
    out: list[tf.Tensor | None] = []
    for k in feed:
        out.append(by_tensor.pop(k, None))  # a tensor given twice: relevance once
    return out


__all__ = ["traced_relevance"]
