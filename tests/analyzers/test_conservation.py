"""Relevance conservation through whole models: for bias-free networks and conserving
rules, ``R.sum()`` equals the explained logit (deep Taylor: ``max(0, logit)``) within 1e-4
relative, through Conv3D/pooling stacks, residual Add, Concatenate, folded
BatchNormalization and TimeDistributed; plus property-based random Conv3D stacks, and random
stacks of grouped / channelwise Conv3D, squeeze-excitation gates, swish / gelu, BatchNorm and
LayerNorm (checked against the dense block-diagonal twin too)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conservation import assert_conserved  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import analyzers  # noqa: E402

L = keras.layers
SHAPE = (4, 8, 8, 2)


def _conv(filters, kernel=3, **kw):
    kw.setdefault("padding", "same")
    kw.setdefault("activation", "relu")
    return L.Conv3D(filters, kernel, use_bias=False, **kw)


def c3d_like():
    """Conv3D / MaxPooling3D stack in the C3D layout (pool1 spatial only)."""
    return keras.Sequential([
        keras.Input(SHAPE), _conv(4), L.MaxPooling3D((1, 2, 2)), _conv(6),
        L.MaxPooling3D(2), _conv(6, (3, 1, 1)), L.Flatten(),
        L.Dense(8, activation="relu", use_bias=False), L.Dense(3, use_bias=False),
    ], name="c3d_like")


def residual():
    inp = keras.Input(SHAPE)
    a = _conv(4)(inp)
    b = _conv(4, (1, 3, 3))(a)
    s = L.Add()([a, b])
    c = _conv(4, (3, 1, 1))(s)
    s = L.Add()([s, c])
    h = L.AveragePooling3D(2)(s)
    h = L.GlobalAveragePooling3D()(h)
    return keras.Model(inp, L.Dense(3, use_bias=False)(h), name="residual")


def concat_branches():
    inp = keras.Input(SHAPE)
    a = _conv(3, (1, 3, 3))(inp)
    b = _conv(3, (3, 1, 1))(inp)
    h = L.Concatenate()([a, b])
    h = L.MaxPooling3D(2)(h)
    h = _conv(4, strides=(1, 2, 2))(h)
    h = L.Flatten()(h)
    return keras.Model(inp, L.Dense(3, use_bias=False)(h), name="concat")


def batch_norm():
    """Conv -> BN (no shift, zero mean: bias-free after folding) -> ReLU blocks."""
    inp = keras.Input(SHAPE)
    h = _conv(4, activation=None)(inp)
    h = L.BatchNormalization(center=False)(h)
    h = L.ReLU()(h)
    h = L.MaxPooling3D(2)(h)
    h = _conv(4, activation=None)(h)
    h = L.BatchNormalization(center=False)(h)
    h = L.Activation("relu")(h)
    h = L.Flatten()(h)
    model = keras.Model(inp, L.Dense(3, use_bias=False)(h), name="batch_norm")
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, n).astype("float32"))
    return model


def time_distributed():
    inner = L.Conv2D(4, 3, padding="same", activation="relu", use_bias=False)
    return keras.Sequential([
        keras.Input(SHAPE), L.TimeDistributed(inner), _conv(4), L.MaxPooling3D(2),
        L.Flatten(), L.Dense(3, activation="softmax", use_bias=False),
    ], name="time_distributed")


def nested():
    block = keras.Sequential([keras.Input((4, 8, 8, 4)), _conv(4), _conv(4, (3, 1, 1))],
                             name="block")
    inp = keras.Input(SHAPE)
    h = _conv(4)(inp)
    h = block(h)
    h = L.GlobalMaxPooling3D()(h)
    return keras.Model(inp, L.Dense(3, use_bias=False)(h), name="nested")


def shape_layers():
    """Padding, up-sampling, cropping, transposed convolution, dropout, reshape, permute,
    causal Conv1D and global max pooling."""
    inp = keras.Input(SHAPE)
    h = L.ZeroPadding3D((1, 1, 1))(inp)
    h = L.Conv3D(3, 3, activation="relu", use_bias=False)(h)
    h = L.UpSampling3D((1, 2, 2))(h)
    h = L.Cropping3D((0, 1, 1))(h)
    h = L.Conv3DTranspose(2, (1, 3, 3), strides=(1, 2, 2), activation="relu",
                          use_bias=False)(h)
    h = L.Dropout(0.5)(h)
    h = L.Reshape((4, -1))(h)
    h = L.Permute((2, 1))(h)
    h = L.Conv1D(3, 3, padding="causal", activation="relu", use_bias=False)(h)
    h = L.GlobalMaxPooling1D()(h)
    return keras.Model(inp, L.Dense(3, use_bias=False)(h), name="shape_layers")


MODELS = {f.__name__: f for f in (c3d_like, residual, concat_branches, batch_norm,
                                  time_distributed, nested, shape_layers)}

#: (analyzer, kwargs, input range, explains relu(logit), models it conserves on)
CONSERVING = [
    ("lrp.z", {}, (-1, 1), False, None),
    ("lrp.epsilon", {"epsilon": 1e-9}, (-1, 1), False, None),
    ("lrp.z_plus", {}, (0, 1), False, None),
    ("deep_taylor", {}, (0, 1), True, None),
    ("deep_taylor.bounded", {"low": -1.0, "high": 1.0}, (-1, 1), True, None),
    ("lrp.alpha_1_beta_0", {}, (-1, 1), False, None),
    ("lrp.alpha_2_beta_1", {}, (-1, 1), False, None),
    # w^2 and flat spread relevance to neurons that did not fire; a proportional layer
    # (Add, average pooling) then has nothing to split it by: only max-pooling stacks.
    ("lrp.w_square", {}, (-1, 1), False, ("c3d_like", "time_distributed", "nested",
                                          "batch_norm")),
    ("lrp.flat", {}, (-1, 1), False, ("c3d_like", "time_distributed", "nested",
                                      "batch_norm")),
    ("deep_taylor", {"input_rule": "w_square"}, (-1, 1), True, None),
]


def _logits(model, x):
    return analyzers.build_graph(model).forward(x).numpy()


def _assert_conserved(analyzer, model, x, relu_output, selection):
    relevance = analyzer.analyze(x, neuron_selection=selection)
    logits = _logits(model, x)
    target = logits[np.arange(len(x)), selection]
    if relu_output:
        target = np.maximum(target, 0.0)
    assert_conserved(relevance, target, rtol=1e-4)
    return relevance.reshape(len(x), -1).sum(axis=1)


def _mirror_last_output(model):
    """Make output 2 the negative of output 0, so that the top logit is positive (deep
    Taylor explains ``max(0, logit)``; a negative top logit would make the check trivial)."""
    dense = model.layers[-1]
    kernel = dense.kernel.numpy()
    kernel[:, 2] = -kernel[:, 0]
    dense.kernel.assign(kernel)
    return model


@pytest.fixture(scope="module")
def built_models():
    keras.utils.set_random_seed(11)
    return {name: _mirror_last_output(make()) for name, make in MODELS.items()}


@pytest.mark.parametrize("model_name", list(MODELS))
def test_conservation_on_model(built_models, model_name):
    model = built_models[model_name]
    rng = np.random.default_rng(1)
    for name, kwargs, (lo, hi), relu_output, only in CONSERVING:
        if only is not None and model_name not in only:
            continue
        x = rng.uniform(lo, hi, (2,) + SHAPE).astype(np.float32)
        logits = _logits(model, x)
        selection = np.argmax(logits, axis=1)
        analyzer = analyzers.create_analyzer(name, model, **kwargs)
        totals = _assert_conserved(analyzer, model, x, relu_output, selection)
        assert np.all(np.abs(totals) > 0), f"{name} on {model_name}: trivial zero relevance"


def test_batch_norm_is_folded_in_conservation_model(built_models):
    analyzer = analyzers.create_analyzer("lrp.z", built_models["batch_norm"])
    folded = [note for note in analyzer.graph.notes if "folded" in note]
    assert len(folded) == 2


# -- property-based: random Conv3D stacks --------------------------------------------
KERNELS = [(1, 3, 3), (3, 1, 1), (3, 3, 3), (2, 2, 2), (1, 1, 1)]
conv_cfg = st.fixed_dictionaries({
    "kernel": st.sampled_from(KERNELS),
    "strides": st.sampled_from([(1, 1, 1), (1, 2, 2)]),
    "padding": st.sampled_from(["same", "valid"]),
    "dilation": st.sampled_from([(1, 1, 1), (2, 1, 1)]),
    "filters": st.integers(2, 5),
    "bn": st.booleans(),
})
model_cfg = st.fixed_dictionaries({
    "convs": st.lists(conv_cfg, min_size=1, max_size=3),
    "pool": st.sampled_from(["max", "avg", "global_max", "global_avg", "none"]),
    "residual": st.booleans(),
    "seed": st.integers(0, 10_000),
})


def _random_model(cfg):
    keras.utils.set_random_seed(cfg["seed"])
    inp = keras.Input((6, 10, 10, 2))
    h = inp
    for c in cfg["convs"]:
        strides = c["strides"] if c["dilation"] == (1, 1, 1) else (1, 1, 1)
        before = h
        h = L.Conv3D(c["filters"], c["kernel"], strides=strides, padding=c["padding"],
                     dilation_rate=c["dilation"], use_bias=False,
                     activation=None if c["bn"] else "relu")(h)
        if c["bn"]:
            h = L.BatchNormalization(center=False)(h)
            h = L.ReLU()(h)
        if (cfg["residual"] and before.shape == h.shape):
            h = L.Add()([before, h])
    if cfg["pool"] == "max":
        h = L.MaxPooling3D((1, 2, 2), padding="same")(h)
    elif cfg["pool"] == "avg":
        h = L.AveragePooling3D((1, 2, 2), padding="same")(h)
    elif cfg["pool"] == "global_max":
        h = L.GlobalMaxPooling3D()(h)
    elif cfg["pool"] == "global_avg":
        h = L.GlobalAveragePooling3D()(h)
    if len(h.shape) > 2:
        h = L.Flatten()(h)
    return _mirror_last_output(keras.Model(inp, L.Dense(3, use_bias=False)(h)))


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(model_cfg)
def test_conservation_random_conv3d_stacks(cfg):
    model = _random_model(cfg)
    rng = np.random.default_rng(cfg["seed"])
    x = rng.uniform(0, 1, (2, 6, 10, 10, 2)).astype(np.float32)
    selection = np.argmax(_logits(model, x), axis=1)
    for name, kwargs, relu_output in (("lrp.z", {}, False),
                                      ("deep_taylor.bounded", {"low": 0.0, "high": 1.0}, True),
                                      ("lrp.alpha_2_beta_1", {}, False)):
        analyzer = analyzers.create_analyzer(name, model, **kwargs)
        _assert_conserved(analyzer, model, x, relu_output, selection)


# -- property-based: random stacks of the second-release layers --------------------------
#: Bias-free conserving rules for stacks with signed hidden tensors (swish, LayerNorm):
#: the z-family without bias terms (LayerNorm's held mean acts as a bias) and alpha-beta.
SIGNED_RULES = (("lrp.z", {"bias": False}), ("lrp.epsilon", {"epsilon": 1e-9, "bias": False}),
                ("lrp.alpha_beta", {"alpha": 2.0, "beta": 1.0, "bias": False}))
block_cfg = st.fixed_dictionaries({
    "conv": st.sampled_from(["dense", "grouped", "channelwise"]),
    "kernel": st.sampled_from([(3, 3, 3), (1, 3, 3), (3, 1, 1)]),
    "wide": st.booleans(),
    "act": st.sampled_from(["relu", "swish", "gelu"]),
    "se": st.booleans(),
    "norm": st.sampled_from(["none", "layer", "batch"]),
})
new_model_cfg = st.fixed_dictionaries({
    "blocks": st.lists(block_cfg, min_size=1, max_size=3),
    "seed": st.integers(0, 10_000),
})
NEW_SHAPE = (3, 6, 6, 4)
#: Each example builds and explains several models: report the failing one, do not shrink.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


def _block_diagonal(kernel: np.ndarray, groups: int) -> np.ndarray:
    """``[*k, in/g, out]`` grouped kernel -> dense ``[*k, in, out]``."""
    cin_g, cout = kernel.shape[-2:]
    dense = np.zeros(kernel.shape[:-2] + (cin_g * groups, cout), kernel.dtype)
    cout_g = cout // groups
    for g in range(groups):
        dense[..., g * cin_g:(g + 1) * cin_g, g * cout_g:(g + 1) * cout_g] = \
            kernel[..., g * cout_g:(g + 1) * cout_g]
    return dense


def _new_layers_model(cfg, dense_convs=False):
    """A random stack of (grouped / channelwise) Conv3D, BatchNorm or LayerNorm, relu /
    swish / gelu and squeeze-excitation gates. ``dense_convs=True``: the same network with
    every grouped convolution as a dense one (the block-diagonal kernel is set by
    :func:`_dense_twin`)."""
    inp = keras.Input(NEW_SHAPE)
    h, channels = inp, NEW_SHAPE[-1]
    for k, b in enumerate(cfg["blocks"]):
        filters = channels if b["conv"] == "channelwise" else (8 if b["wide"] else 4)
        groups = {"dense": 1, "grouped": 2, "channelwise": channels}[b["conv"]]
        h = L.Conv3D(filters, b["kernel"], padding="same", use_bias=False,
                     groups=1 if dense_convs else groups, name=f"conv{k}")(h)
        if b["norm"] == "batch":
            h = L.BatchNormalization(center=False, name=f"bn{k}")(h)
        elif b["norm"] == "layer":
            h = L.LayerNormalization(center=False, name=f"ln{k}")(h)
        h = L.Activation(b["act"], name=f"act{k}")(h)
        if b["se"]:
            g = L.GlobalAveragePooling3D(name=f"se{k}_pool")(h)
            g = L.Dense(2, activation="relu", name=f"se{k}_fc1")(g)
            g = L.Dense(filters, activation="sigmoid", name=f"se{k}_fc2")(g)
            g = L.Reshape((1, 1, 1, filters), name=f"se{k}_reshape")(g)
            h = L.Multiply(name=f"se{k}_gate")([h, g])
        channels = filters
    h = L.GlobalAveragePooling3D(name="pool")(h)
    return keras.Model(inp, L.Dense(3, use_bias=False, name="head")(h))


def _randomise(model, seed):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, (L.BatchNormalization, L.LayerNormalization)):
            layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape).astype("float32"))
        if isinstance(layer, L.BatchNormalization):
            layer.moving_variance.assign(
                rng.uniform(0.5, 2.0, layer.moving_variance.shape).astype("float32"))
    return model


def _dense_twin(model, cfg):
    twin = _new_layers_model(cfg, dense_convs=True)
    for layer in model.layers:
        weights = layer.get_weights()
        if isinstance(layer, L.Conv3D) and layer.groups > 1:
            weights = [_block_diagonal(weights[0], layer.groups)]
        if weights:
            twin.get_layer(layer.name).set_weights(weights)
    return twin


@settings(max_examples=4, deadline=None, derandomize=True, phases=NO_SHRINK,
          suppress_health_check=[HealthCheck.too_slow])
@given(new_model_cfg)
def test_conservation_random_stacks_of_new_layers(cfg):
    """Conservation (to 1e-4) on random stacks of grouped / channelwise convolutions,
    squeeze-excitation gates, swish / gelu, BatchNorm and LayerNorm; and where a stack has
    grouped convolutions, the same relevance as its dense block-diagonal twin."""
    keras.utils.set_random_seed(cfg["seed"])
    model = _mirror_last_output(_randomise(_new_layers_model(cfg), cfg["seed"]))
    rng = np.random.default_rng(cfg["seed"])
    x = rng.uniform(-1, 1, (2,) + NEW_SHAPE).astype(np.float32)
    selection = np.argmax(_logits(model, x), axis=1)
    grouped = any(b["conv"] != "dense" for b in cfg["blocks"])
    twin = _dense_twin(model, cfg) if grouped else None
    if twin is not None:
        np.testing.assert_allclose(_logits(twin, x), _logits(model, x), rtol=1e-4, atol=1e-5)
    for name, kwargs in SIGNED_RULES:
        analyzer = analyzers.create_analyzer(name, model, **kwargs)
        relevance = analyzer.analyze(x, neuron_selection=selection)
        _assert_conserved(analyzer, model, x, False, selection)
        assert np.abs(relevance).sum() > 0
        if twin is not None and name == "lrp.alpha_beta":  # the most sign-sensitive rule
            ref = analyzers.create_analyzer(name, twin, **kwargs).analyze(x, selection)
            scale = max(1e-6, float(np.abs(ref).max()))
            np.testing.assert_allclose(relevance / scale, ref / scale, atol=1e-5)
