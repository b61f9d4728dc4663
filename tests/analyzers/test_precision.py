"""Models built under a mixed precision policy (issue 22) are explained in float32: the same
relevance as the float32 model with the same weights, conserved as there; their policies are
back as they were after each call; weights stored in half precision are refused clearly."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conservation import assert_conserved  # noqa: E402

import analyzers  # noqa: E402

L = keras.layers
POLICIES = ["mixed_float16", "mixed_bfloat16"]


def _video_net() -> keras.Model:
    """Bias-free: Conv3D, BatchNorm, ReLU, max pooling, a TimeDistributed Conv2D,
    LayerNorm (before a ReLU: its inputs are not zero, so its held mean takes no relevance
    under the rules without biases), a softmax head."""
    return keras.Sequential([
        keras.Input((4, 8, 8, 2)), L.Conv3D(4, 3, padding="same", use_bias=False),
        L.BatchNormalization(center=False), L.ReLU(), L.MaxPooling3D(2),
        L.TimeDistributed(L.Conv2D(3, 3, padding="same", use_bias=False)),
        L.LayerNormalization(center=False), L.ReLU(), L.Flatten(),
        L.Dense(5, activation="relu", use_bias=False),
        L.Dense(3, activation="softmax", use_bias=False)])


def _recurrent_net() -> keras.Model:
    """No layer graph of the relevance engine: the gradient family calls it."""
    return keras.Sequential([keras.Input((5, 3)), L.GRU(4), L.Dense(3)])


def _under(policy: str, make) -> keras.Model:
    keras.mixed_precision.set_global_policy(policy)
    try:
        return make()
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="module")
def float32_net():
    keras.utils.set_random_seed(0)
    return _video_net()


@pytest.mark.parametrize("policy", POLICIES)
def test_mixed_precision_model_is_explained_in_float32(float32_net, policy):
    model = _under(policy, _video_net)
    model.set_weights(float32_net.get_weights())
    assert model.layers[0].compute_dtype != "float32"
    x = np.random.default_rng(0).uniform(-1, 1, (3, 4, 8, 8, 2)).astype(np.float32)
    logits = analyzers.build_graph(float32_net).forward(x).numpy()
    selection = np.argmax(logits, axis=1)
    # (LayerNorm's held mean acts as a bias: the conserving rules ignore biases)
    for name, kwargs in [("lrp.z", {"bias": False}), ("lrp.alpha_2_beta_1_IB", {}),
                         ("deep_taylor.bounded", {"low": -1.0, "high": 1.0}),
                         ("guided_backprop", {}), ("gradient", {})]:
        got = analyzers.create_analyzer(name, model, **kwargs).analyze(x, selection)
        expected = analyzers.create_analyzer(name, float32_net, **kwargs).analyze(x, selection)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7, err_msg=name)
        if name in ("lrp.z", "lrp.alpha_2_beta_1_IB"):
            assert_conserved(got, logits[np.arange(3), selection], rtol=1e-4, err_msg=name)
    assert {layer.dtype_policy.name for layer in model.layers} == {policy}  # restored


@pytest.mark.parametrize("policy", POLICIES)
def test_gradient_of_a_called_mixed_precision_model_is_float32(policy):
    keras.utils.set_random_seed(1)
    reference = _recurrent_net()
    model = _under(policy, _recurrent_net)
    model.set_weights(reference.get_weights())
    x = np.random.default_rng(1).normal(size=(2, 5, 3)).astype(np.float32)
    for name in ("gradient", "integrated_gradients"):
        got = analyzers.create_analyzer(name, model).analyze(x, 0)
        expected = analyzers.create_analyzer(name, reference).analyze(x, 0)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7, err_msg=name)
    assert model.layers[0].dtype_policy.name == policy


def test_half_precision_weights_are_refused_clearly():
    model = _under("float16", lambda: keras.Sequential([keras.Input((4,)), L.Dense(2)]))
    with pytest.raises(ValueError) as info:
        analyzers.create_analyzer("lrp.z", model)
    message = str(info.value)
    assert "keeps weights in float16" in message and "set_weights" in message
    assert len(message) < 300
