"""X3D's channelwise convolutions as temporal taps of standard layers
(``channelwise="taps"``, the default) against the grouped ``Conv3D`` formulation
(``channelwise="conv3d"``): the same function, saved as a plain Keras model, and explained by
``analyzers`` as the grouped convolution (same relevance, same conservation)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import analyzers  # noqa: E402
from kvlrp.models.builders.common import (  # noqa: E402
    channelwise_conv3d,
    copy_channelwise_weights,
)
from kvlrp.models.builders.x3d import x3d_small  # noqa: E402

SHAPE = (8, 16, 16, 3)
KW = {"width_factor": 0.5, "depth_factor": 0.5, "head_dim": 16}


@pytest.fixture(scope="module")
def pair():
    keras.utils.set_random_seed(0)
    grouped = x3d_small(4, frames=SHAPE[0], size=SHAPE[1], bias=False, channelwise="conv3d",
                        **KW)
    taps = x3d_small(4, frames=SHAPE[0], size=SHAPE[1], bias=False, **KW)
    copy_channelwise_weights(grouped, taps)
    rng = np.random.default_rng(0)
    for model in (grouped, taps):  # non-trivial BatchNorm statistics
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                n = layer.moving_mean.shape[0]
                r = np.random.default_rng(abs(hash(layer.name)) % 2**32)
                layer.moving_mean.assign(r.normal(0, 0.1, n).astype("float32"))
                layer.moving_variance.assign(r.uniform(0.5, 1.5, n).astype("float32"))
    del rng
    return grouped, taps


def test_taps_layer_is_the_grouped_convolution():
    x = keras.Input((5, 7, 6, 4))
    grouped = keras.Model(x, channelwise_conv3d(x, (3, 3, 3), (1, 2, 2), name="c",
                                                formulation="conv3d"))
    taps = keras.Model(x, channelwise_conv3d(x, (3, 3, 3), (1, 2, 2), name="c"))
    assert not any(isinstance(layer, keras.layers.Conv3D) for layer in taps.layers)
    copy_channelwise_weights(grouped, taps)
    clip = np.random.default_rng(1).normal(size=(2, 5, 7, 6, 4)).astype("float32")
    expected = grouped(clip).numpy()
    np.testing.assert_allclose(taps(clip).numpy(), expected, rtol=1e-5,
                               atol=1e-5 * np.abs(expected).max())


def test_x3d_taps_equal_grouped_forward(pair):
    grouped, taps = pair
    assert not any(isinstance(layer, keras.layers.Conv3D) and layer.groups > 1
                   for layer in taps.layers)
    assert grouped.count_params() == taps.count_params()
    x = np.random.default_rng(2).uniform(-1, 1, (2,) + SHAPE).astype("float32")
    np.testing.assert_allclose(taps(x).numpy(), grouped(x).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method, kwargs, low", [
    ("deep_taylor.bounded", {"low": -1.0, "high": 1.0}, -1.0),
    ("lrp.epsilon", {}, -1.0),
    ("gradient", {}, -1.0),
])
def test_x3d_taps_explained_as_the_grouped_convolution(pair, method, kwargs, low):
    grouped, taps = pair
    x = np.random.default_rng(3).uniform(low, 1.0, (2,) + SHAPE).astype("float32")
    a_grouped = analyzers.create_analyzer(method, grouped, **kwargs)
    a_taps = analyzers.create_analyzer(method, taps, **kwargs)
    selection = np.argmax(grouped.predict(x, verbose=0), axis=1)
    expected = a_grouped.analyze(x, neuron_selection=selection)
    got = a_taps.analyze(x, neuron_selection=selection)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(got.sum(), expected.sum(), rtol=1e-5, atol=1e-6 * scale)
    if method != "gradient":
        names = [name for name, _ in a_taps.layer_rules()]
        assert any(name.startswith("s1_b1_conv_b+") for name in names)  # BN folded
        assert not any("_t0" in name for name in names)  # taps merged


def test_x3d_taps_model_loads_as_plain_keras(pair, tmp_path):
    _, taps = pair
    path = tmp_path / "x3d_taps.keras"
    taps.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    x = np.random.default_rng(4).uniform(-1, 1, (1,) + SHAPE).astype("float32")
    np.testing.assert_allclose(loaded(x).numpy(), taps(x).numpy(), rtol=1e-6, atol=1e-7)


def test_unknown_formulation_is_refused():
    with pytest.raises(ValueError, match="channelwise must be one of"):
        x3d_small(3, channelwise="grouped")
