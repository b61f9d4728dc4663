"""A channelwise 3D convolution written as temporal taps, recognised as one grouped op.

A channelwise ``Conv3D(groups=channels)`` can be written in standard Keras layers that
TensorFlow runs fast on the CPU: per temporal tap ``dt`` a ``Cropping3D`` keeping frames
``dt .. dt + T' - 1`` of one (zero-padded) tensor, a ``TimeDistributed(DepthwiseConv2D)`` with
``padding="valid"``, and one ``Add`` over the taps (``kvlrp``'s X3D builder does). Explained
layer by layer, the ``Add`` would split relevance among the taps by their signed outputs and a
following BatchNormalization could not be folded: not the grouped convolution's rules.
:func:`merge_temporal_taps` finds that pattern in a list of graph steps and replaces it by one
step: a grouped ``Conv3D`` op (:class:`~analyzers.ops.kernel.ConvOp`, run by
:mod:`analyzers.ops.convolution.grouped`) whose kernel stacks the taps' kernels, so that every rule
acts on it as on ``Conv3D(groups=channels)`` (and BatchNormalization folds into it).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import keras
import tensorflow as tf

from analyzers.ops.kernel import ConvOp, DepthwiseConvOp
from analyzers.ops.structural import AddOp, LayerCallOp, TimeDistributedOp


def _temporal_crop(step: Any) -> tuple[int, int] | None:
    """``(before, after)`` of a channels-last ``Cropping3D`` that crops time only."""
    op = step.op
    if not isinstance(op, LayerCallOp) or not isinstance(op.layer, keras.layers.Cropping3D):
        return None
    layer = op.layer
    (before, after), height, width = layer.cropping
    if layer.data_format != "channels_last" or tuple(height) != (0, 0) \
            or tuple(width) != (0, 0):
        return None
    return int(before), int(after)


def _depthwise_config(op: Any) -> tuple | None:
    """Geometry of a linear ``TimeDistributed(DepthwiseConv2D, padding="valid")`` op."""
    if not isinstance(op, TimeDistributedOp) or not isinstance(op.inner, DepthwiseConvOp):
        return None
    inner = op.inner
    layer = inner.layer
    if (inner.activation is not None or inner.padding != "valid" or inner.rank != 2
            or inner.data_format != "channels_last"
            or inner.kernel_override is not None or inner.bias_override is not None):
        return None
    return (tuple(layer.kernel_size), tuple(inner.strides), tuple(inner.dilation_rate),
            int(layer.depth_multiplier), inner.bias_attr is not None)


def _taps_of(add_step: Any, producer: dict[int, Any], users: dict[int, int]
             ) -> tuple[int, list[Any], list[Any]] | None:
    """``(source tensor id, tap steps in tap order, crop steps)`` if the Add's inputs are
    the taps of one channelwise convolution, else ``None``."""
    if not isinstance(add_step.op, AddOp) or add_step.op.mean or len(add_step.inputs) < 2 \
            or add_step.op.activation is not None:
        return None
    n = len(add_step.inputs)
    taps, crops, configs, sources = {}, [], set(), set()
    for tensor in add_step.inputs:
        tap = producer.get(tensor)
        if tap is None or users.get(tensor) != 1 or len(tap.inputs) != 1:
            return None
        config = _depthwise_config(tap.op)
        crop = producer.get(tap.inputs[0])
        cropping = None if crop is None else _temporal_crop(crop)
        if config is None or cropping is None or users.get(tap.inputs[0]) != 1:
            return None
        before, after = cropping
        if before + after != n - 1 or before in taps:
            return None
        taps[before] = tap
        crops.append(crop)
        configs.add(config)
        sources.add(crop.inputs[0])
    if len(configs) != 1 or len(sources) != 1:
        return None
    return sources.pop(), [taps[dt] for dt in range(n)], crops


def _merged_op(add_op: Any, taps: list[Any]) -> ConvOp:
    """The grouped ``Conv3D`` op equal to the sum of the taps."""
    inner = [tap.op.inner for tap in taps]
    first = inner[0].layer
    channels, multiplier = (int(d) for d in inner[0].kernel.shape[-2:])
    layer = keras.layers.Conv3D(
        channels * multiplier, (len(taps), *first.kernel_size),
        strides=(1, *inner[0].strides), padding="valid",
        dilation_rate=(1, *inner[0].dilation_rate), groups=channels, use_bias=False,
        name=add_op.name)
    op = ConvOp(layer, add_op.name)

    def kernel() -> tf.Tensor:
        slices = [tf.reshape(tap.kernel, [1, *tap.kernel.shape[:2], 1, -1]) for tap in inner]
        return tf.concat(slices, axis=0)

    def bias() -> tf.Tensor | None:
        biases = [tap.bias for tap in inner if tap.bias is not None]
        return tf.add_n(biases) if biases else None

    op.kernel_override = kernel
    op.bias_override = bias
    op.support = inner[0].support
    return op


def merge_temporal_taps(steps: list[Any]) -> tuple[list[Any], list[str]]:
    """Replace every channelwise convolution written as temporal taps by one grouped op.

    Parameters
    ----------
    steps
        Graph steps (``op``, ``inputs``, ``output``) in execution order.

    Returns
    -------
    steps, notes
        The steps (the merged op at the ``Add``'s place, reading the tensor the crops read)
        and one note per merge.
    """
    producer = {step.output: step for step in steps}
    users: dict[int, int] = {}
    for step in steps:
        for tensor in step.inputs:
            users[tensor] = users.get(tensor, 0) + 1
    dropped: set[int] = set()
    merged: dict[int, Any] = {}
    notes = []
    for step in steps:
        found = _taps_of(step, producer, users)
        if found is None:
            continue
        source, taps, crops = found
        merged[id(step)] = replace(step, op=_merged_op(step.op, taps), inputs=(source,))
        dropped.update(id(s) for s in taps + crops)
        notes.append(f"temporal taps {', '.join(t.op.name for t in taps)} merged into the "
                     f"channelwise convolution '{step.op.name}'")
    out = [merged.get(id(step), step) for step in steps if id(step) not in dropped]
    return out, notes


__all__ = ["merge_temporal_taps"]
