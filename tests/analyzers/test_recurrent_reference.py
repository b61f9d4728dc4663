"""LSTM and GRU (both ``reset_after``) against a hand-written numpy reference of LRP for
recurrent nets (Arras et al. 2017), rule by rule in matrix form
(``tests/helpers/recurrent_reference.py``): two timesteps, so the first step (no state) and a
full step (state, sums of gated terms) are both covered; random biases."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import analyzers_reference as ref  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import recurrent_reference  # noqa: E402
import tensorflow as tf  # noqa: E402

import analyzers  # noqa: E402

L = keras.layers
STEPS, FEATURES, UNITS, CLASSES = 2, 3, 4, 3
LOW, HIGH = -1.0, 1.0


def _bounded(x, w, b, r):
    return ref.rule_bounded(x, w, b, r, np.full(len(x), LOW), np.full(len(x), HIGH))


#: analyzer -> (options, rule of the head and the linear parts, rule of the sums, rule of the
#: linear parts when the layer reads the model input, relu on the logit)
RULES = {
    "lrp.z": ({}, ref.rule_z, ref.rule_z, None, False),
    "lrp.epsilon": ({"epsilon": 0.01}, lambda *a: ref.rule_epsilon(*a, eps=0.01), ref.rule_z,
                    None, False),
    "lrp.alpha_1_beta_0": ({}, lambda *a: ref.rule_alpha_beta(*a, 1.0, 0.0), ref.rule_z,
                           None, False),
    "lrp.alpha_2_beta_1": ({}, lambda *a: ref.rule_alpha_beta(*a, 2.0, 1.0), ref.rule_z,
                           None, False),
    "lrp.z_plus": ({}, ref.rule_z_plus, ref.rule_z_plus, None, False),
    "lrp.w_square": ({}, ref.rule_w_square, ref.rule_z, None, False),
    "lrp.flat": ({}, ref.rule_flat, ref.rule_z, None, False),
    "deep_taylor.bounded": ({"low": LOW, "high": HIGH}, ref.rule_z_plus, ref.rule_z_plus,
                            _bounded, True),
}


@pytest.fixture(autouse=True, scope="module")
def _eager():
    """Run the analyzers' tf.function eagerly: the same code, without a trace per case."""
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


def _model(layer):
    keras.utils.set_random_seed(3)
    inp = keras.Input((STEPS, FEATURES))
    model = keras.Model(inp, L.Dense(CLASSES)(layer(inp)))
    rng = np.random.default_rng(7)
    model.set_weights([rng.normal(0.0, 0.6, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


CELLS = {
    "lstm": lambda: L.LSTM(UNITS),
    "gru_reset_after": lambda: L.GRU(UNITS, reset_after=True),
    "gru_reset_before": lambda: L.GRU(UNITS, reset_after=False),
}


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("name", list(RULES))
def test_recurrent_layer_matches_the_numpy_reference(cell, name):
    model = _model(CELLS[cell]())
    rnn, head = model.layers[1], model.layers[2]
    x = np.random.default_rng(1).uniform(LOW, HIGH, (2, STEPS, FEATURES)).astype(np.float32)
    logits = model(x).numpy()
    selection = np.argmax(logits, axis=1)
    options, linear, sum_rule, input_rule, relu = RULES[name]
    got = analyzers.create_analyzer(name, model, **options).analyze(x, selection)
    weights = [w.numpy().astype(np.float64) for w in rnn.weights]
    kernel, recurrent, bias = weights
    w_head, b_head = (w.numpy().astype(np.float64) for w in head.weights)
    for s in range(len(x)):
        xs = x[s].astype(np.float64)
        if cell == "lstm":
            _, h = recurrent_reference.lstm(xs, kernel, recurrent, bias, np.zeros(UNITS),
                                            linear, sum_rule)
        else:
            _, h = recurrent_reference.gru(xs, kernel, recurrent, bias, np.zeros(UNITS),
                                           linear, sum_rule, rnn.cell.reset_after)
        target = logits[s, selection[s]]
        r_out = np.zeros(CLASSES)
        r_out[selection[s]] = max(target, 0.0) if relu else target
        r_h = linear(h, w_head, b_head, r_out)
        if cell == "lstm":
            expected, _ = recurrent_reference.lstm(xs, kernel, recurrent, bias, r_h,
                                                   input_rule or linear, sum_rule)
        else:
            expected, _ = recurrent_reference.gru(xs, kernel, recurrent, bias, r_h,
                                                  input_rule or linear, sum_rule,
                                                  rnn.cell.reset_after, recurrent_rule=linear)
        scale = max(1e-3, float(np.abs(expected).max()))
        np.testing.assert_allclose(got[s] / scale, expected / scale, atol=2e-5,
                                   err_msg=f"{cell} {name} sample {s}")
