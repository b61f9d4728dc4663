"""Canonizers: rewrite a model graph into an equivalent one that rules handle well.

:class:`BatchNormFolder` folds every BatchNormalization into the Dense / Conv /
ConvTranspose layer right before it (when that layer has a linear activation, the same
channel axis, and no other consumer of its output): ``W' = W * s``, ``b' = (b - mean) * s
+ beta`` with ``s = gamma / sqrt(var + eps)``. The folded graph computes the same
function (checked in ``tests/test_analyzers_api.py`` to atol 1e-5).

A BatchNormalization that cannot be folded (first layer, after a ReLU, after a pooling,
after an Add, ...) stays as an elementwise affine layer ``y = x * scale + shift``
(:class:`~analyzers.ops.kernel.AffineOp`); the composite's kernel rule is applied to it
as to a layer with a diagonal kernel: for the z / epsilon rules the shift acts as a bias
(and absorbs relevance), w^2 and flat pass relevance unchanged, z+ passes it where
``x * scale > 0`` and drops it elsewhere, z^B passes it unchanged.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import tensorflow as tf

from analyzers.graph import Graph, annotate_steps
from analyzers.ops.kernel import AffineOp, ConvOp, ConvTransposeOp, DenseOp, batch_norm_affine


class Canonizer:
    """Base class: ``apply(graph) -> graph`` returning an equivalent graph."""

    def apply(self, graph: Graph) -> Graph:  # pragma: no cover - interface
        raise NotImplementedError


def _channel_axis_matches(kernel_op: object, bn_layer: object) -> bool:
    """True if the BatchNormalization normalizes the kernel layer's channel axis."""
    axis = int(bn_layer.axis)
    ndim = bn_layer.input_spec.ndim if bn_layer.input_spec is not None else None
    if ndim is not None and axis >= 0:
        axis = axis - ndim  # as a negative axis
    layer = kernel_op.layer
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return ndim is not None and axis == 1 - ndim
    return axis == -1


class BatchNormFolder(Canonizer):
    """Fold BatchNormalization into the preceding kernel layer where possible."""

    def apply(self, graph: Graph) -> Graph:
        consumers = graph.consumers()
        notes = list(graph.notes)
        producer = {step.output: k for k, step in enumerate(graph.steps)}
        steps = list(graph.steps)
        drop: set[int] = set()
        rename: dict[int, int] = {}
        for k, step in enumerate(steps):
            if not isinstance(step.op, AffineOp):
                continue
            src = producer.get(step.inputs[0])
            if src is None:
                continue
            prev = steps[src]
            if not isinstance(prev.op, (DenseOp, ConvOp, ConvTransposeOp)):
                continue
            if prev.op.activation is not None or len(consumers.get(prev.output, [])) != 1:
                continue
            if not _channel_axis_matches(prev.op, step.op.layer):
                continue
            steps[src] = replace(prev, op=_fold(prev.op, step.op.layer), output=step.output)
            drop.add(k)
            rename[prev.output] = step.output
            notes.append(f"BatchNormalization '{step.op.name}' folded into "
                               f"'{prev.op.name}'")
        kept = [s for k, s in enumerate(steps) if k not in drop]
        kept = annotate_steps(kept, graph.input_id)
        return Graph(steps=kept, input_id=graph.input_id, output_id=graph.output_id,
                     input_shape=graph.input_shape, n_outputs=graph.n_outputs,
                     name=graph.name, notes=notes)


def _fold(op: object, bn: object) -> object:
    """A copy of kernel op ``op`` whose kernel and bias include the BatchNormalization."""
    folded = copy.copy(op)
    folded.name = f"{op.name}+{bn.name}"
    axis = op.output_axis
    base_kernel = type(op).kernel.fget
    base_bias = type(op).bias.fget

    def kernel() -> tf.Tensor:
        scale, _ = batch_norm_affine(bn)
        w = base_kernel(op)
        rank = len(w.shape)
        shape = [1] * rank
        shape[axis % rank] = -1
        return w * tf.reshape(scale, shape)

    def bias() -> tf.Tensor:
        scale, shift = batch_norm_affine(bn)
        b = base_bias(op)
        return shift if b is None else b * scale + shift

    folded.kernel_override = kernel
    folded.bias_override = bias
    return folded


def fold_batch_norm(graph: Graph) -> Graph:
    """Shortcut for ``BatchNormFolder().apply(graph)``."""
    return BatchNormFolder().apply(graph)


__all__ = ["BatchNormFolder", "Canonizer", "fold_batch_norm"]
