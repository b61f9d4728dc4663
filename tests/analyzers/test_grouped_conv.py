"""Channelwise 3D convolutions as depthwise 2D convolutions per temporal tap
(:mod:`analyzers.ops.convolution.grouped`): forward and input VJP equal Keras'
``Conv3D(groups=...)`` to float32 round-off, and the engine's op for a grouped ``Conv3D`` uses
them."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from analyzers.ops import make_op  # noqa: E402
from analyzers.ops.convolution.grouped import channelwise_conv3d, supports  # noqa: E402

#: (id, channels, multiplier, kernel, strides, padding, dilation, input frames/height/width)
CASES = [
    ("333_same", 4, 1, (3, 3, 3), (1, 1, 1), "same", (1, 1, 1), (6, 9, 8)),
    ("333_s122_valid", 5, 1, (3, 3, 3), (1, 2, 2), "valid", (1, 1, 1), (5, 9, 10)),
    ("333_s122_same", 3, 1, (3, 3, 3), (1, 2, 2), "same", (1, 1, 1), (4, 7, 8)),
    ("511_same", 6, 1, (5, 1, 1), (1, 1, 1), "same", (1, 1, 1), (7, 5, 4)),
    ("233_same_even", 3, 1, (2, 3, 3), (1, 1, 1), "same", (1, 1, 1), (5, 6, 6)),
    ("multiplier2", 3, 2, (3, 3, 3), (1, 1, 1), "same", (1, 1, 1), (4, 6, 5)),
    ("temporal_stride", 4, 1, (3, 3, 3), (2, 1, 1), "same", (1, 1, 1), (7, 5, 5)),
    ("temporal_dilation", 2, 1, (3, 3, 3), (1, 1, 1), "valid", (2, 1, 1), (8, 6, 6)),
    ("spatial_dilation", 2, 1, (3, 3, 3), (1, 1, 1), "same", (1, 2, 2), (4, 8, 8)),
]


def _layer(channels, multiplier, kernel, strides, padding, dilation, shape):
    layer = keras.layers.Conv3D(channels * multiplier, kernel, strides=strides, padding=padding,
                                dilation_rate=dilation, groups=channels, use_bias=False)
    layer.build((None, *shape, channels))
    rng = np.random.default_rng(0)
    layer.kernel.assign(rng.normal(size=layer.kernel.shape).astype(np.float32))
    return layer


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_forward_and_vjp_equal_grouped_conv3d(case):
    _, channels, multiplier, kernel, strides, padding, dilation, shape = case
    layer = _layer(channels, multiplier, kernel, strides, padding, dilation, shape)
    assert supports((2, *shape, channels), channels, "channels_last", strides, dilation)
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(2, *shape, channels)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        expected = layer(x)
        got = channelwise_conv3d(x, tf.convert_to_tensor(layer.kernel), strides, padding,
                                 dilation)
    assert got.shape == expected.shape
    assert _relative(got.numpy(), expected.numpy()) < 1e-5
    seed = tf.constant(rng.normal(size=expected.shape).astype(np.float32))
    vjp_got = tape.gradient(got, x, output_gradients=seed).numpy()
    vjp_expected = tape.gradient(expected, x, output_gradients=seed).numpy()
    assert _relative(vjp_got, vjp_expected) < 1e-5


def test_engine_op_runs_grouped_conv3d_by_taps():
    """The engine's op for a channelwise Conv3D gives the layer's output (bias and
    activation included) and its graph holds depthwise convolutions, no grouped Conv3D."""
    layer = keras.layers.Conv3D(8, 3, padding="same", groups=4, activation="relu")
    layer.build((None, 4, 6, 6, 4))
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 4, 6, 6, 4)).astype(np.float32))
    op = make_op(layer)
    np.testing.assert_allclose(op.forward([x]).numpy(), layer(x).numpy(), rtol=1e-5,
                               atol=1e-6)
    graph = tf.function(lambda t: op.forward([t])).get_concrete_function(x).graph
    types = {o.type for o in graph.get_operations()}
    assert "DepthwiseConv2dNative" in types and "Conv3D" not in types


@pytest.mark.parametrize("shape,groups,data_format,strides,dilations,ok", [
    ((None, 4, 6, 6, 4), 4, "channels_last", (1, 2, 2), (1, 1, 1), True),
    ((None, 4, 6, 6, 8), 4, "channels_last", (1, 1, 1), (1, 1, 1), False),  # 2 per group
    ((None, 4, 6, 6, 4), 1, "channels_last", (1, 1, 1), (1, 1, 1), False),
    ((None, 4, 6, 6, 4), 4, "channels_first", (1, 1, 1), (1, 1, 1), False),
    ((None, None, 6, 6, 4), 4, "channels_last", (1, 1, 1), (1, 1, 1), False),
    ((None, 4, 6, 6, 4), 4, "channels_last", (1, 2, 2), (1, 2, 2), False),
    ((None, 6, 6, 4), 4, "channels_last", (1, 1), (1, 1), False),
])
def test_supports(shape, groups, data_format, strides, dilations, ok):
    assert supports(shape, groups, data_format, strides, dilations) is ok
