"""Trace a TensorFlow callable once into a graph whose weights are explicit inputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import tensorflow as tf
from tensorflow.core.framework import graph_pb2


@dataclass(frozen=True)
class TensorInfo:
    """Static dtype and shape of one tensor of a traced graph (``None`` for unknown dims)."""

    dtype: tf.DType
    shape: tuple[int | None, ...] | None


@dataclass(frozen=True)
class Trace:
    """One call of a function, as a graph.

    Parameters
    ----------
    graph_def
        The traced graph.
    inputs
        Tensor names of the call's tensor inputs (where relevance is wanted), in order.
    weights
        Tensor names of the weight placeholders, in the order of the weights given to
        :func:`trace_function`.
    captures
        ``(tensor name, value)`` of the constants the function captured (fed back when the
        graph is run).
    outputs
        Tensor names of the outputs.
    tensors
        Dtype and static shape of every tensor, by name.
    """

    graph_def: graph_pb2.GraphDef
    inputs: tuple[str, ...]
    weights: tuple[str, ...]
    captures: tuple[tuple[str, Any], ...]
    outputs: tuple[str, ...]
    tensors: dict[str, TensorInfo] = field(repr=False, default_factory=dict)


def _shape(t: tf.Tensor) -> tuple[int | None, ...] | None:
    return None if t.shape.rank is None else tuple(t.shape.as_list())


def trace_function(fn: Callable[[list[tf.Tensor], list[tf.Tensor]], Any],
                   input_specs: Sequence[tf.TensorSpec],
                   weight_specs: Sequence[tf.TensorSpec]) -> Trace:
    """Trace ``fn(inputs, weights)`` (graph mode, once) for inputs and weights of the given
    specs.

    ``fn`` must return one tensor (or a one-element list/tuple). Weights are placeholders,
    so the graph computes with whatever weight values it is given when it runs.
    """
    n_in, n_w = len(input_specs), len(weight_specs)

    def body(*flat: tf.Tensor) -> tf.Tensor:
        out = fn(list(flat[:n_in]), list(flat[n_in:]))
        if isinstance(out, (list, tuple)):
            if len(out) != 1:
                raise ValueError(f"the traced call returns {len(out)} tensors; one is needed")
            out = out[0]
        return tf.identity(tf.convert_to_tensor(out))

    concrete = tf.function(body, autograph=False).get_concrete_function(
        *input_specs, *weight_specs)
    graph = concrete.graph
    placeholders = concrete.inputs
    captured = list(zip(graph.internal_captures, concrete.captured_inputs))
    tensors = {t.name: TensorInfo(t.dtype, _shape(t))
               for op in graph.get_operations() for t in op.outputs}
    return Trace(graph_def=graph.as_graph_def(),
                 inputs=tuple(t.name for t in placeholders[:n_in]),
                 weights=tuple(t.name for t in placeholders[n_in:n_in + n_w]),
                 captures=tuple((inner.name, value) for inner, value in captured),
                 outputs=tuple(t.name for t in concrete.outputs),
                 tensors=tensors)


__all__ = ["TensorInfo", "Trace", "trace_function"]
