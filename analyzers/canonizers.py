"""Canonizers: rewrite a model graph into an equivalent one that rules handle well.

:class:`BatchNormFolder` folds every BatchNormalization into the Dense / Conv /
ConvTranspose layer right before it (when that layer has a linear activation, the same
channel axis, and no other consumer of its output): ``W' = W * s``, ``b' = (b - mean) * s
+ beta`` with ``s = gamma / sqrt(var + eps)``. The folded graph computes the same
function (checked in ``tests/analyzers/test_api.py`` to atol 1e-5).

A BatchNormalization that cannot be folded backwards but whose output feeds only a Dense
or an ungrouped Conv with no zero padding (``valid``, or a kernel of size 1; pre-activation
blocks, input normalisation) is folded into that layer instead: ``W' = W * s`` along the
input channels, ``b' = b + sum(W * shift)`` (exact: every output sums whole input
channels' shifts). A BatchNormalization that cannot be folded (after a ReLU, before a
zero-padded convolution, after a pooling, ...) stays as an elementwise affine layer
``y = x * scale + shift``
(:class:`~analyzers.ops.kernel.AffineOp`); the composite's kernel rule is applied to it
as to a layer with a diagonal kernel: for the z / epsilon rules the shift acts as a bias
(and absorbs relevance), w^2 and flat pass relevance unchanged, z+ passes it where
``x * scale > 0`` and drops it elsewhere, z^B passes it unchanged.

:class:`CentredLayerNorm` (AttnLRP's view, used by ``attnlrp`` and ``cp_lrp``) holds only a
LayerNormalization's standard deviation constant, so its centring ``x - mean(x)`` stays a
linear map that carries relevance (the default holds the mean constant too).

Two canonizers give iNNvestigate 2.1.2's view (``compat="innvestigate"``):
:class:`TensorFlowTies` routes max pooling at tied maxima as TensorFlow's gradient does
(:mod:`analyzers.ops.pooling.ties`), :class:`InnvestigateBatchNorm` lets LRP rules decompose
iNNvestigate's surrogate of an unfolded BatchNormalization.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import tensorflow as tf

from analyzers.model.graph import Graph, annotate_steps
from analyzers.ops.base import LayerOp
from analyzers.ops.convolution.taps import merge_temporal_taps
from analyzers.ops.kernel import (
    AffineOp,
    ConvOp,
    ConvTransposeOp,
    DenseOp,
    DepthwiseConvOp,
    KernelOp,
    batch_norm_affine,
)
from analyzers.ops.normalization import LayerNormOp, StdHeldLayerNormOp
from analyzers.ops.pooling.layers import GlobalPoolOp, PoolOp
from analyzers.ops.pooling.ties import tensorflow_tie_rule
from analyzers.ops.structural import TimeDistributedOp


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
    """Fold BatchNormalization into the preceding kernel layer where possible (first
    merging channelwise convolutions written as temporal taps into one grouped op,
    :mod:`analyzers.ops.convolution.taps`)."""

    def apply(self, graph: Graph) -> Graph:
        steps, merged = merge_temporal_taps(list(graph.steps))  # BN may follow their Add
        graph = replace(graph, steps=steps)
        consumers = graph.consumers()
        notes = list(graph.notes) + merged
        producer = {step.output: k for k, step in enumerate(graph.steps)}
        drop: set[int] = set()
        rename: dict[int, int] = {}
        for k, step in enumerate(steps):
            if not isinstance(step.op, AffineOp):
                continue
            src = producer.get(step.inputs[0])
            if src is None:
                continue
            prev = steps[src]
            if not isinstance(prev.op, (DenseOp, ConvOp, ConvTransposeOp, DepthwiseConvOp)):
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
        kept = _fold_forward(kept, notes)
        kept = annotate_steps(kept, graph.input_id)
        return Graph(steps=kept, input_id=graph.input_id, output_id=graph.output_id,
                     input_shape=graph.input_shape, n_outputs=graph.n_outputs,
                     name=graph.name, notes=notes, layer_outputs=graph.layer_outputs)


def _fold(op: object, bn: object) -> object:
    """A copy of kernel op ``op`` whose kernel and bias include the BatchNormalization."""
    folded = copy.copy(op)
    folded.name = f"{op.name}+{bn.name}"
    def kernel() -> tf.Tensor:
        scale, _ = batch_norm_affine(bn)
        return op.scale_outputs(op.kernel, scale)

    def bias() -> tf.Tensor:
        scale, shift = batch_norm_affine(bn)
        b = op.bias
        return shift if b is None else b * scale + shift

    folded.kernel_override = kernel
    folded.bias_override = bias
    return folded


def _no_zero_padding(op: KernelOp) -> bool:
    """True if the kernel layer never reads zero padding (exact forward folding)."""
    if isinstance(op, DenseOp):
        return True
    if not isinstance(op, ConvOp) or op.groups != 1:
        return False
    if op.padding == "valid":
        return True
    return all(int(k) == 1 for k in op.kernel.shape[:-2])


def _fold_forward(steps: list, notes: list[str]) -> list:
    """Fold each remaining BatchNormalization into the kernel layer that alone reads it."""
    users: dict[int, list[int]] = {}
    for k, step in enumerate(steps):
        for i in step.inputs:
            users.setdefault(i, []).append(k)
    steps = list(steps)
    drop: set[int] = set()
    for k, step in enumerate(steps):
        if not isinstance(step.op, AffineOp) or len(users.get(step.output, [])) != 1:
            continue
        nxt_k = users[step.output][0]
        nxt = steps[nxt_k]
        if not (isinstance(nxt.op, KernelOp) and _no_zero_padding(nxt.op)
                and nxt.inputs == (step.output,)):
            continue
        if not _input_axis_matches(nxt.op, step.op.layer):
            continue
        steps[nxt_k] = replace(nxt, op=_fold_input(nxt.op, step.op.layer),
                               inputs=step.inputs)
        drop.add(k)
        notes.append(f"BatchNormalization '{step.op.name}' folded into the following "
                     f"'{nxt.op.name}'")
    return [s for k, s in enumerate(steps) if k not in drop]


def _input_axis_matches(op: KernelOp, bn_layer: object) -> bool:
    """True if the BatchNormalization normalizes the kernel layer's input channels."""
    return _channel_axis_matches(op, bn_layer)


def _fold_input(op: KernelOp, bn: object) -> KernelOp:
    """A copy of kernel op ``op`` reading the BatchNormalization's input directly."""
    folded = copy.copy(op)
    folded.name = f"{bn.name}+{op.name}"

    def kernel() -> tf.Tensor:
        scale, _ = batch_norm_affine(bn)
        w = op.kernel
        shape = [1] * len(w.shape)
        shape[op.kernel_input_axis % len(w.shape)] = -1
        return w * tf.reshape(scale, shape)

    def bias() -> tf.Tensor:
        _, shift = batch_norm_affine(bn)
        w = op.kernel
        w2 = tf.reshape(w, [-1, w.shape[-2], w.shape[-1]]) if len(w.shape) > 2 else w[None]
        extra = tf.einsum("kio,i->o", w2, shift)
        b = op.bias
        return extra if b is None else b + extra

    folded.kernel_override = kernel
    folded.bias_override = bias
    return folded


class CentredLayerNorm(Canonizer):
    """Every LayerNormalization with only its standard deviation held constant
    (:class:`~analyzers.ops.normalization.StdHeldLayerNormOp`): the same function, decomposed
    as AttnLRP does (the centring carries relevance)."""

    def apply(self, graph: Graph) -> Graph:
        steps = []
        for step in graph.steps:
            op = step.op
            if type(op) is LayerNormOp:
                held = StdHeldLayerNormOp(op.layer, op.name)
                held.support = op.support
                step = replace(step, op=held)
            steps.append(step)
        return replace(graph, steps=steps, notes=list(graph.notes))


def fold_batch_norm(graph: Graph) -> Graph:
    """Shortcut for ``BatchNormFolder().apply(graph)``."""
    return BatchNormFolder().apply(graph)


def _with_tensorflow_ties(op: LayerOp) -> LayerOp:
    if isinstance(op, TimeDistributedOp):
        inner = _with_tensorflow_ties(op.inner)
        if inner is op.inner:
            return op
        wrapped = copy.copy(op)
        wrapped.inner = inner
        return wrapped
    if isinstance(op, (PoolOp, GlobalPoolOp)) and op.is_max:
        tied = copy.copy(op)
        rank = len(op.layer.pool_size) if isinstance(op, PoolOp) else 0
        tied.ties = tensorflow_tie_rule(rank, is_global=isinstance(op, GlobalPoolOp))
        return tied
    return op


class TensorFlowTies(Canonizer):
    """Route max pooling at tied maxima as TensorFlow 2.14's gradient does: 3D max pooling
    to every input within 1e-5 of the maximum, 1D/2D to the first maximum, global max
    pooling evenly (:func:`analyzers.ops.pooling.ties.tensorflow_tie_rule`); the forward pass is
    unchanged."""

    def apply(self, graph: Graph) -> Graph:
        return replace(graph, steps=[replace(step, op=_with_tensorflow_ties(step.op))
                                     for step in graph.steps])


def innvestigate_batch_norm(layer: Any) -> tuple[tf.Tensor, tf.Tensor]:
    """iNNvestigate 2.1.2's linear surrogate of a BatchNormalization layer for its LRP rules:
    ``x * gamma / s + (beta - mean / s)`` with ``s = sqrt(var**2 + eps)`` (the variance
    squared, and no gamma in the shift: not the layer's own map)."""
    var = tf.convert_to_tensor(layer.moving_variance)
    s = tf.sqrt(tf.square(var) + layer.epsilon)
    gamma = tf.convert_to_tensor(layer.gamma) if layer.scale else tf.ones_like(var)
    beta = tf.convert_to_tensor(layer.beta) if layer.center else tf.zeros_like(var)
    return gamma / s, beta - tf.convert_to_tensor(layer.moving_mean) / s


class InnvestigateBatchNorm(Canonizer):
    """Leave BatchNormalization unfolded and let rules decompose iNNvestigate's surrogate
    (:func:`innvestigate_batch_norm`) in its place; the layer's output is unchanged."""

    def apply(self, graph: Graph) -> Graph:
        steps = []
        for step in graph.steps:
            if isinstance(step.op, AffineOp):
                op = copy.copy(step.op)
                op.decomposed = innvestigate_batch_norm
                step = replace(step, op=op)
            steps.append(step)
        return replace(graph, steps=steps)


__all__ = ["BatchNormFolder", "Canonizer", "CentredLayerNorm", "InnvestigateBatchNorm",
           "TensorFlowTies", "fold_batch_norm", "innvestigate_batch_norm"]
