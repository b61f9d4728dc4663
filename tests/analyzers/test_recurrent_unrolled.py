"""Each recurrent layer explains exactly like its unrolled twin built from layers the engine
already trusts (``tests/helpers/recurrent_unrolled.py``: Cropping / Reshape per frame,
Concatenate, Dense or Conv2D per pre-activation with the kernels stacked, Multiply by sigmoid
gates, Add, tanh), weights copied, under every named rule: LSTM, GRU (``reset_after`` True and
False), SimpleRNN and ConvLSTM2D, with random biases and bias-free."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from recurrent_unrolled import unrolled  # noqa: E402

import analyzers  # noqa: E402

L = keras.layers

#: (analyzer, options): every named rule family, input-layer rules included
NAMES = [
    ("lrp.z", {}), ("lrp.epsilon", {"epsilon": 0.01}), ("lrp.alpha_1_beta_0", {}),
    ("lrp.alpha_2_beta_1", {}), ("lrp.z_plus", {}), ("deep_taylor", {}),
    ("deep_taylor.bounded", {"low": -1.0, "high": 1.0}), ("lrp.w_square", {}),
    ("lrp.sequential_preset_a", {}), ("guided_backprop", {}),
]
#: With biases, the first GRU step (reset_after) has a constant recurrent term r * b'; the
#: twin makes it with a zero-kernel Dense on x_0, which the flat rule (weights set to one)
#: would treat as an input: the flat rule is compared on the bias-free models.
BIAS_FREE_NAMES = [("lrp.flat", {}), ("lrp.w_square", {}), ("lrp.z", {})]
#: w^2 and flat pass relevance that does not shrink with the cell state, so a sum of gated
#: terms that nearly cancels (in the LSTM case f c' + i g = -0.0013 from terms of 0.13)
#: amplifies float32 rounding of the two models' differently ordered sums: both lie within
#: 1e-4 of a float64 reference there (``recurrent_reference``), not of each other.
TOLERANCE = {"lrp.w_square": 2e-4, "lrp.flat": 2e-4}

CELLS = {
    "lstm": (lambda bias: L.LSTM(4, use_bias=bias), (3, 2)),
    "gru_reset_after": (lambda bias: L.GRU(4, use_bias=bias), (3, 2)),
    "gru_reset_before": (lambda bias: L.GRU(4, reset_after=False, use_bias=bias), (3, 2)),
    "simple_rnn": (lambda bias: L.SimpleRNN(4, use_bias=bias), (3, 2)),
    "conv_lstm2d": (lambda bias: L.ConvLSTM2D(2, 3, padding="same", use_bias=bias),
                    (3, 4, 4, 1)),
}


@pytest.fixture(autouse=True, scope="module")
def _eager():
    """Run the analyzers' tf.function eagerly: the same code, without a trace per case."""
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


def _model(layer, shape):
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape)
    h = layer(inp)
    if len(h.shape) > 2:
        h = L.Flatten()(h)
    model = keras.Model(inp, L.Dense(3, use_bias=layer.use_bias)(h))
    rng = np.random.default_rng(5)
    model.set_weights([rng.normal(0.0, 0.6, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "bias_free"])
@pytest.mark.parametrize("cell", list(CELLS))
def test_recurrent_layer_explains_like_its_unrolled_twin(cell, bias):
    make, shape = CELLS[cell]
    model = _model(make(bias), shape)
    twin = unrolled(model)
    x = np.random.default_rng(0).uniform(-1.0, 1.0, (2,) + shape).astype(np.float32)
    logits = model(x).numpy()
    np.testing.assert_allclose(twin(x).numpy(), logits, atol=1e-5)
    selection = np.argmax(logits, axis=1)
    for name, options in NAMES if bias else BIAS_FREE_NAMES:
        got = analyzers.create_analyzer(name, model, **options).analyze(x, selection)
        expected = analyzers.create_analyzer(name, twin, **options).analyze(x, selection)
        scale = max(1e-3, float(np.abs(expected).max()))
        np.testing.assert_allclose(got / scale, expected / scale,
                                   atol=TOLERANCE.get(name, 2e-5), err_msg=f"{cell} {name}")
