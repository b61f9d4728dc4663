"""``TimeDistributed`` around a nested model (a per-frame CNN, issue 22): explained like the
same network written as one ``TimeDistributed`` per layer, for every relevance analyzer,
with an open time axis too; conservation through it; clear refusals of what it cannot do."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conservation import assert_conserved  # noqa: E402

import analyzers  # noqa: E402

L = keras.layers
FRAME = (8, 8, 2)


def _frame_layers():
    return [L.Conv2D(4, 3, padding="same", use_bias=False, name="conv_a"),
            L.BatchNormalization(center=False, name="bn"), L.ReLU(name="relu"),
            L.MaxPooling2D(2, name="pool"),
            L.Conv2D(4, 3, activation="relu", use_bias=False, name="conv_b"),
            L.Flatten(name="flat"), L.Dense(6, activation="relu", use_bias=False, name="fc")]


def _frame_model(kind: str) -> keras.Model:
    if kind == "sequential":
        return keras.Sequential([keras.Input(FRAME)] + _frame_layers(), name="frame_cnn")
    inp = keras.Input(FRAME)
    h = inp
    for layer in _frame_layers():
        h = layer(h)
    return keras.Model(inp, h, name="frame_cnn")


def _video_model(kind: str, frames: int | None = 3) -> keras.Model:
    """``TimeDistributed(frame model)`` (``kind``: sequential / functional) or, for
    ``kind="per_layer"``, one ``TimeDistributed`` per layer of the frame model."""
    inp = keras.Input((frames,) + FRAME)
    if kind == "per_layer":
        h = inp
        for layer in _frame_layers():
            h = L.TimeDistributed(layer, name=f"td_{layer.name}")(h)
    else:
        h = L.TimeDistributed(_frame_model(kind), name="per_frame")(inp)
    h = L.GlobalAveragePooling1D(name="gap")(h)
    return keras.Model(inp, L.Dense(3, use_bias=False, name="head")(h), name=f"video_{kind}")


def _copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Per-frame layers by name, whether wrapped one by one or as a model."""
    def layers(model):
        out = {}
        for layer in model.layers:
            inner = getattr(layer, "layer", None)
            if isinstance(inner, keras.Model):
                out.update({sub.name: sub for sub in inner.layers})
            elif inner is not None:
                out[inner.name] = inner
            else:
                out[layer.name] = layer
        return out
    src, dst = layers(source), layers(target)
    for name, layer in src.items():
        if layer.weights:
            dst[name].set_weights(layer.get_weights())


@pytest.fixture(scope="module")
def per_layer():
    keras.utils.set_random_seed(4)
    model = _video_model("per_layer")
    bn = model.get_layer("td_bn").layer
    rng = np.random.default_rng(0)
    bn.gamma.assign(rng.uniform(0.5, 1.5, 4).astype("float32"))
    bn.moving_variance.assign(rng.uniform(0.5, 2.0, 4).astype("float32"))
    head = model.get_layer("head")
    kernel = head.kernel.numpy()
    kernel[:, 2] = -kernel[:, 0]  # some logit is >= 0 (deep Taylor explains max(0, logit))
    head.kernel.assign(kernel)
    return model


NAMES = [("lrp.z", {}), ("lrp.alpha_2_beta_1", {}),
         ("deep_taylor.bounded", {"low": -1.0, "high": 1.0}), ("lrp.w_square", {}),
         ("lrp.sequential_preset_a_flat", {}), ("guided_backprop", {}), ("gradient", {})]


@pytest.fixture(scope="module")
def data(per_layer):
    """Inputs, selection and the relevance of the one-wrapper-per-layer network."""
    x = np.random.default_rng(1).uniform(-1, 1, (3, 3) + FRAME).astype(np.float32)
    selection = np.argmax(per_layer.predict(x, verbose=0), axis=1)
    expected = {name: analyzers.create_analyzer(name, per_layer, **kwargs).analyze(
        x, selection) for name, kwargs in NAMES}
    return x, selection, expected


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_time_distributed_model_explains_like_one_wrapper_per_layer(per_layer, data, kind):
    model = _video_model(kind)
    _copy_weights(per_layer, model)
    x, selection, expected = data
    np.testing.assert_allclose(model.predict(x, verbose=0), per_layer.predict(x, verbose=0),
                               atol=1e-5)
    for name, kwargs in NAMES:
        got = analyzers.create_analyzer(name, model, **kwargs).analyze(x, selection)
        scale = max(1e-6, float(np.abs(expected[name]).max()))
        np.testing.assert_allclose(got / scale, expected[name] / scale, atol=1e-5,
                                   err_msg=name)


def test_time_distributed_model_conserves_with_an_open_time_axis(per_layer):
    model = _video_model("functional", frames=None)
    _copy_weights(per_layer, model)
    graph = analyzers.build_graph(model)
    names = [step.op.name for step in graph.steps]
    assert "conv_a" in names and "fc" in names  # the nested model's own layer names
    rng = np.random.default_rng(2)
    for frames in (2, 5):
        x = rng.uniform(-1, 1, (2, frames) + FRAME).astype(np.float32)
        logits = graph.forward(x).numpy()
        selection = np.argmax(logits, axis=1)
        for name in ("lrp.z", "lrp.alpha_2_beta_1"):
            relevance = analyzers.create_analyzer(name, model).analyze(x, selection)
            assert_conserved(relevance, logits[np.arange(2), selection], rtol=1e-4,
                             err_msg=f"{name}, {frames} frames")


def _conserves_lrp_z(model, frames):
    x = np.random.default_rng(3).uniform(-1, 1, (2, frames) + FRAME).astype(np.float32)
    logits = model.predict(x, verbose=0)
    selection = np.argmax(logits, axis=1)
    relevance = analyzers.create_analyzer("lrp.z", model).analyze(x, selection)
    assert relevance.shape == x.shape
    assert_conserved(relevance, logits[np.arange(2), selection], rtol=1e-4)


def test_gates_and_nested_time_distributed_inside_are_explained():
    """Folding the frames into the batch runs the nested model's own steps: a sigmoid gate
    (``Multiply``) inside it and a TimeDistributed inside it are explained as anywhere."""
    frame = keras.Input(FRAME)
    gate = L.Conv2D(2, 1, activation="sigmoid")(frame)
    gated = keras.Model(frame, L.Flatten()(L.Multiply()([frame, gate])), name="gated")
    inp = keras.Input((3,) + FRAME)
    h = L.Dense(2)(L.Flatten()(L.TimeDistributed(gated)(inp)))
    _conserves_lrp_z(keras.Model(inp, h), 3)
    clip = keras.Input((2, 3) + FRAME)
    inner = keras.Sequential([keras.Input((3,) + FRAME),
                              L.TimeDistributed(L.Conv2D(2, 3)), L.Flatten()])
    h = L.Dense(2)(L.Flatten()(L.TimeDistributed(inner)(clip)))
    model = keras.Model(clip, h)
    x = np.random.default_rng(4).uniform(-1, 1, (2, 2, 3) + FRAME).astype(np.float32)
    logits = model.predict(x, verbose=0)
    selection = np.argmax(logits, axis=1)
    relevance = analyzers.create_analyzer("lrp.z", model).analyze(x, selection)
    assert_conserved(relevance, logits[np.arange(2), selection], rtol=1e-4)
