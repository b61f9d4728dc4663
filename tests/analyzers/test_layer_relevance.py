"""``analyzer.analyze_layers(x, layers)``: relevance arriving at intermediate layers' outputs,
by hand on a tiny dense net, conserved layer by layer where the rule conserves, the input
relevance identical to ``analyze``, independent of the batch, and clear refusals."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import analyzers  # noqa: E402

L = keras.layers


def _tiny_dense():
    """x (3) -> Dense(2, relu, no bias) 'hidden' -> Dense(2, no bias) 'out'."""
    inputs = keras.Input((3,), name="x")
    h = L.Dense(2, activation="relu", use_bias=False, name="hidden")(inputs)
    out = L.Dense(2, use_bias=False, name="out")(h)
    model = keras.Model(inputs, out, name="tiny_dense")
    model.get_layer("hidden").set_weights([np.array([[1.0, -1.0], [2.0, 0.5], [-1.0, 1.0]],
                                                    np.float32)])
    model.get_layer("out").set_weights([np.array([[1.0, 2.0], [3.0, -1.0]], np.float32)])
    return model


def test_hand_computation_lrp_z():
    model = _tiny_dense()
    x = np.array([[1.0, 2.0, 0.5]], np.float32)
    w1 = model.get_layer("hidden").get_weights()[0]
    w2 = model.get_layer("out").get_weights()[0]
    a = np.maximum(x @ w1, 0)            # hidden activations
    logits = a @ w2
    k = int(logits.argmax())
    r_out = np.zeros(2)
    r_out[k] = logits[0, k]              # relevance at the output: the explained logit
    r_hidden = a[0] * w2[:, k] / logits[0, k] * r_out[k]     # z rule, Dense 'out'
    z = x[0][:, None] * w1                                    # contributions to 'hidden'
    r_x = (z / z.sum(axis=0) * r_hidden).sum(axis=1)          # z rule, Dense 'hidden'
    analyzer = analyzers.create_analyzer("lrp.z", model)
    got = analyzer.analyze_layers(x, ["out", "hidden", "x"])
    assert list(got) == ["out", "hidden", "x"]
    np.testing.assert_allclose(got["out"][0], r_out, rtol=1e-6)
    np.testing.assert_allclose(got["hidden"][0], r_hidden, rtol=1e-5)
    np.testing.assert_allclose(got["x"][0], r_x, rtol=1e-5)
    np.testing.assert_allclose(got["x"], analyzer.analyze(x), rtol=1e-6)
    assert analyzer.layer_names() == ["x", "hidden", "out"]


@pytest.fixture(scope="module")
def conv_model():
    keras.utils.set_random_seed(5)
    inputs = keras.Input((4, 8, 8, 2), name="clip")
    x = L.Conv3D(4, 3, padding="same", activation="relu", use_bias=False, name="conv1")(inputs)
    x = L.MaxPooling3D((1, 2, 2), name="pool1")(x)
    y = L.Conv3D(4, 3, padding="same", use_bias=False, name="conv2")(x)
    y = L.BatchNormalization(center=False, name="bn2")(y)
    y = L.ReLU(name="relu2")(y)
    x = L.Add(name="add")([x, y])
    x = L.GlobalAveragePooling3D(name="gap")(x)
    out = L.Dense(3, use_bias=False, name="logits")(x)
    model = keras.Model(inputs, out, name="tiny_res")
    bn = model.get_layer("bn2")
    bn.set_weights([np.linspace(0.5, 1.5, 4), np.zeros(4),  # no mean: no bias once folded
                    np.linspace(0.5, 2.0, 4)])
    return model


@pytest.mark.parametrize("name, kwargs", [("deep_taylor.bounded", {"low": -1.0, "high": 1.0}),
                                          ("lrp.z", {})])
def test_conserved_at_every_layer(conv_model, name, kwargs):
    x = np.random.default_rng(0).uniform(-1, 1, (3, 4, 8, 8, 2)).astype(np.float32)
    analyzer = analyzers.create_analyzer(name, conv_model, **kwargs)
    layers = ["clip", "conv1", "pool1", "add", "gap", "logits"]
    got = analyzer.analyze_layers(x, layers, neuron_selection=np.array([0, 1, 2]))
    logits = conv_model.predict(x, verbose=0)[np.arange(3), [0, 1, 2]]
    target = np.maximum(logits, 0) if name.startswith("deep_taylor") else logits
    for layer in layers:
        assert got[layer].shape[0] == 3
        totals = got[layer].reshape(3, -1).sum(axis=1)
        np.testing.assert_allclose(totals, target, rtol=1e-4, atol=1e-6, err_msg=layer)
    assert got["pool1"].shape == (3, 4, 4, 4, 4)
    # the branch and its folded BatchNormalization: relevance at the BN's output exists
    both = analyzer.analyze_layers(x, ["bn2", "relu2"], neuron_selection=np.array([0, 1, 2]))
    np.testing.assert_allclose(both["bn2"].reshape(3, -1).sum(1),
                               both["relu2"].reshape(3, -1).sum(1), rtol=1e-4, atol=1e-6)


def test_one_sample_does_not_depend_on_the_batch(conv_model):
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (5, 4, 8, 8, 2)).astype(np.float32)
    analyzer = analyzers.create_analyzer("lrp.epsilon", conv_model)
    whole = analyzer.analyze_layers(x, ["conv1", "add"], neuron_selection=1)
    chunked = analyzer.analyze_layers(x, ["conv1", "add"], neuron_selection=1, batch_size=2)
    alone = analyzer.analyze_layers(x[3:4], ["conv1", "add"], neuron_selection=1)
    for layer in ("conv1", "add"):
        scale = np.abs(whole[layer]).max()
        np.testing.assert_allclose(chunked[layer], whole[layer], atol=1e-6 * scale)
        np.testing.assert_allclose(alone[layer][0], whole[layer][3], atol=1e-6 * scale)


def test_refusals(conv_model):
    analyzer = analyzers.create_analyzer("lrp.z", conv_model)
    x = np.zeros((1, 4, 8, 8, 2), np.float32)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        analyzer.analyze_layers(x, ["nope"])
    with pytest.raises(ValueError, match="folded"):  # conv2's output is folded with bn2
        analyzer.analyze_layers(x, ["conv2"])
    assert "conv2" not in analyzer.layer_names() and "bn2" in analyzer.layer_names()
    with pytest.raises(ValueError, match="no relevance at intermediate layers"):
        analyzers.create_analyzer("gradient", conv_model).analyze_layers(x, ["conv1"])
