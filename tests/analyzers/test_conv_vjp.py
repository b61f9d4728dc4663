"""The forward-convolution VJP of stride-1 / dilated convolutions equals the tape's VJP
(``Conv*DBackpropInput``) to 1e-5, patch embeddings as matrix products equal the convolution
and its VJP, and analyzers give the same relevance with them on or off."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import analyzers  # noqa: E402
from analyzers.ops.convolution import vjp as conv_vjp  # noqa: E402

CASES = [  # rank, kernel size, dilation, padding
    (1, (3,), (1,), "same"), (1, (4,), (2,), "valid"),
    (2, (3, 3), (1, 1), "valid"), (2, (2, 3), (2, 1), "same"),
    (3, (3, 3, 3), (1, 1, 1), "same"), (3, (3, 2, 3), (1, 2, 2), "same"),
    (3, (2, 3, 1), (1, 1, 1), "valid"), (3, (4, 4, 4), (1, 1, 1), "same"),
]


@pytest.mark.parametrize("rank, size, dilation, padding", CASES)
def test_forward_vjp_matches_the_tape(rank, size, dilation, padding):
    rng = np.random.default_rng(rank * 10 + size[0])
    x = tf.constant(rng.normal(size=(2, *([7] * rank), 3)).astype(np.float32))
    kernel = tf.constant(rng.normal(size=(*size, 3, 5)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        z_ref = keras.ops.conv(x, kernel, padding=padding, dilation_rate=dilation)
        z = conv_vjp.conv_forward_vjp(x, kernel, padding, dilation)
    seed = tf.constant(rng.normal(size=z_ref.shape).astype(np.float32))
    np.testing.assert_allclose(z.numpy(), z_ref.numpy(), rtol=1e-5, atol=1e-5)
    g_ref = tape.gradient(z_ref, x, output_gradients=seed).numpy()
    g = tape.gradient(z, x, output_gradients=seed).numpy()
    assert g.shape == x.shape
    np.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=1e-5 * np.abs(g_ref).max())


def test_supported_convolutions():
    assert conv_vjp.supports(3, (1, 1, 1), "same", "channels_last", 1)
    assert not conv_vjp.supports(3, (1, 2, 2), "same", "channels_last", 1)
    assert not conv_vjp.supports(2, (1, 1), "same", "channels_first", 1)
    assert not conv_vjp.supports(2, (1, 1), "same", "channels_last", 2)


def test_analyzers_agree_with_the_forward_vjp_on_and_off():
    keras.utils.set_random_seed(4)
    L = keras.layers
    model = keras.Sequential([
        keras.Input((6, 10, 10, 2)), L.Conv3D(4, 3, padding="same", activation="relu"),
        L.Conv3D(4, 3, dilation_rate=(1, 2, 2), padding="valid", activation="relu"),
        L.Conv3D(6, 3, strides=2, padding="same", activation="relu"),
        L.GlobalMaxPooling3D(), L.Dense(3)], name="vjp_model")
    x = np.random.default_rng(0).uniform(-1, 1, (2, 6, 10, 10, 2)).astype(np.float32)
    out = {}
    try:
        for enabled in (False, True):
            conv_vjp.set_forward_vjp(enabled)
            for name in ("gradient", "lrp.epsilon", "deep_taylor"):
                out[name, enabled] = analyzers.create_analyzer(name, model).analyze(x)
    finally:
        conv_vjp.set_forward_vjp(None)
    for name in ("gradient", "lrp.epsilon", "deep_taylor"):
        ref = out[name, False]
        assert np.abs(ref).max() > 0
        np.testing.assert_allclose(out[name, True], ref, rtol=1e-5,
                                   atol=1e-5 * np.abs(ref).max(), err_msg=name)


@pytest.mark.parametrize("shape, size", [((9, 3), (3,)), ((8, 10, 3), (4, 5)),
                                         ((4, 9, 8, 3), (2, 4, 4))])
def test_patch_embedding_as_a_matrix_product_matches_the_convolution(shape, size):
    """Strides = kernel size, ``valid``: the same values and VJP (a remainder is cropped)."""
    rng = np.random.default_rng(len(shape))
    x = tf.constant(rng.normal(size=(2, *shape)).astype(np.float32))
    kernel = tf.constant(rng.normal(size=(*size, 3, 5)).astype(np.float32))
    rank = len(size)
    assert conv_vjp.supports_patches(rank, size, size, "valid", (1,) * rank, "channels_last", 1)
    assert not conv_vjp.supports_patches(rank, size, (1,) * rank, "valid", (1,) * rank,
                                         "channels_last", 1)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        z_ref = keras.ops.conv(x, kernel, strides=size, padding="valid")
        z = conv_vjp.patch_conv(x, kernel)
    np.testing.assert_allclose(z.numpy(), z_ref.numpy(), rtol=1e-5, atol=1e-5)
    seed = tf.constant(rng.normal(size=z_ref.shape).astype(np.float32))
    g_ref = tape.gradient(z_ref, x, output_gradients=seed).numpy()
    g = tape.gradient(z, x, output_gradients=seed).numpy()
    np.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=1e-5 * np.abs(g_ref).max())
