"""Activations as layers of their own (``keras.layers.ReLU()``, ``Activation("relu")``)
explain like the same activation fused into the layer before (issue 22):

* every analyzer works at any batch size, whatever batch came first (a relevance that lost
  its static shape behind a max pooling was refused by the identity rule of the ReLU layer);
* deconvnet and guided backprop rectify at a ``ReLU`` layer as at a fused ReLU (they used to
  pass it by its derivative, returning the plain gradient).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import analyzers  # noqa: E402

L = keras.layers

#: How the ReLU after each convolution is written.
RELUS = {
    "fused": lambda: None,
    "relu_layer": L.ReLU,
    "activation_layer": lambda: L.Activation("relu"),
}


def _vgg_like(rank: int, relu: str, seed: int = 0) -> keras.Model:
    """``Conv -> ReLU -> MaxPool`` twice, then ``Flatten -> Dense`` (VGG style)."""
    conv, pool = {2: (L.Conv2D, L.MaxPooling2D), 3: (L.Conv3D, L.MaxPooling3D)}[rank]
    shape = {2: (8, 8, 2), 3: (4, 8, 8, 2)}[rank]
    keras.utils.set_random_seed(seed)
    layers: list = [keras.Input(shape)]
    for filters in (4, 6):
        separate = RELUS[relu]()
        layers.append(conv(filters, 3, padding="same",
                           activation="relu" if separate is None else None))
        if separate is not None:
            layers.append(separate)
        layers.append(pool(2))
    layers += [L.Flatten(), L.Dense(3)]
    return keras.Sequential(layers, name=f"vgg{rank}d_{relu}")


def _inputs(model: keras.Model, n: int = 5) -> np.ndarray:
    shape = (n,) + tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)


@pytest.mark.parametrize("relu", ["relu_layer", "activation_layer"])
@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("name", ["lrp.epsilon", "deep_taylor", "lrp.alpha_2_beta_1"])
def test_separate_relu_works_at_every_batch_size(rank, relu, name):
    model = _vgg_like(rank, relu)
    x = _inputs(model)
    analyzer = analyzers.create_analyzer(name, model)
    first = analyzer.analyze(x[:2])          # traced for a batch of 2
    whole = analyzer.analyze(x)              # another batch size: traced again
    single = analyzer.analyze(x[4:5])
    scale = max(1e-6, float(np.abs(whole).max()))
    np.testing.assert_allclose(first / scale, whole[:2] / scale, atol=1e-5)
    np.testing.assert_allclose(single / scale, whole[4:5] / scale, atol=1e-5)


@pytest.mark.parametrize("relu", ["relu_layer", "activation_layer"])
@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("name", ["deconvnet", "guided_backprop", "lrp.z", "gradient"])
def test_separate_relu_explains_like_the_fused_relu(rank, relu, name):
    fused = _vgg_like(rank, "fused")
    separate = _vgg_like(rank, relu)
    separate.set_weights(fused.get_weights())
    x = _inputs(fused)
    expected = analyzers.create_analyzer(name, fused).analyze(x)
    got = analyzers.create_analyzer(name, separate).analyze(x)
    scale = max(1e-6, float(np.abs(expected).max()))
    np.testing.assert_allclose(got / scale, expected / scale, atol=1e-5)
    if name in ("deconvnet", "guided_backprop"):  # and it is not the plain gradient
        gradient = analyzers.create_analyzer("gradient", separate).analyze(x)
        assert np.abs(got - gradient).max() > 1e-3 * scale


@pytest.mark.parametrize("fused, layer", [("relu6", lambda: L.ReLU(max_value=6.0)),
                                          ("leaky_relu", lambda: L.LeakyReLU(0.2))])
def test_clipped_and_leaky_relu_layers_explain_like_their_fused_forms(fused, layer):
    """A ReLU layer with a ceiling or a slope is not a plain ReLU: deconvnet passes it by its
    derivative, as it does ``activation="relu6"`` / ``"leaky_relu"``."""
    keras.utils.set_random_seed(0)
    a = keras.Sequential([keras.Input((6,)), L.Dense(4, activation=fused), L.Dense(2)])
    b = keras.Sequential([keras.Input((6,)), L.Dense(4), layer(), L.Dense(2)])
    b.set_weights(a.get_weights())
    x = np.random.default_rng(0).uniform(-8, 8, (5, 6)).astype(np.float32)
    for name in ("deconvnet", "guided_backprop"):
        np.testing.assert_allclose(analyzers.create_analyzer(name, b).analyze(x),
                                   analyzers.create_analyzer(name, a).analyze(x), atol=1e-6)
