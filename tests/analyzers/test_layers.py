"""Model-level checks of the layers added in issue 9: grouped / depthwise / separable
convolutions against the dense convolution with the block-diagonal kernel, gates against
the network with the gate frozen per sample, swish against ``z * sigmoid(z)``, clear
refusals, and BatchNormalization folded into the following layer."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from conservation import assert_conserved  # noqa: E402

import analyzers  # noqa: E402
from analyzers.canonizers import fold_batch_norm  # noqa: E402

L = keras.layers

#: (analyzer, kwargs, input range): every contribution-based named analyzer.
ANALYZERS = [
    ("lrp.z", {}, (-1, 1)),
    ("lrp.epsilon", {"epsilon": 0.01}, (-1, 1)),
    ("lrp.z_plus", {}, (-1, 1)),
    ("lrp.alpha_2_beta_1", {}, (-1, 1)),
    ("lrp.w_square", {}, (-1, 1)),
    ("deep_taylor", {}, (0, 1)),
    ("deep_taylor.bounded", {"low": -1.0, "high": 1.0}, (-1, 1)),
    ("gradient", {}, (-1, 1)),
]


def _explain_same(model_a, model_b, x, names=ANALYZERS, atol=1e-5):
    logits = model_a.predict(x, verbose=0)
    np.testing.assert_allclose(model_b.predict(x, verbose=0), logits, atol=1e-5)
    selection = np.argmax(logits, axis=1)
    for name, kwargs, _ in names:
        a = analyzers.create_analyzer(name, model_a, **kwargs).analyze(x, selection)
        b = analyzers.create_analyzer(name, model_b, **kwargs).analyze(x, selection)
        scale = max(1e-3, float(np.abs(b).max()))
        np.testing.assert_allclose(a / scale, b / scale, atol=atol, err_msg=name)


def _block_diagonal_grouped(kernel: np.ndarray, groups: int) -> np.ndarray:
    """``[*k, in/g, out]`` grouped kernel -> dense ``[*k, in, out]``."""
    cin_g, cout = kernel.shape[-2:]
    dense = np.zeros(kernel.shape[:-2] + (cin_g * groups, cout), kernel.dtype)
    cout_g = cout // groups
    for g in range(groups):
        dense[..., g * cin_g:(g + 1) * cin_g, g * cout_g:(g + 1) * cout_g] = \
            kernel[..., g * cout_g:(g + 1) * cout_g]
    return dense


def _block_diagonal_depthwise(kernel: np.ndarray) -> np.ndarray:
    """``[*k, C, M]`` depthwise kernel -> dense ``[*k, C, C*M]`` (output ``c*M + m``)."""
    c, m = kernel.shape[-2:]
    dense = np.zeros(kernel.shape[:-2] + (c, c * m), kernel.dtype)
    for ci in range(c):
        dense[..., ci, ci * m:(ci + 1) * m] = kernel[..., ci, :]
    return dense


def _head(h):
    return L.Dense(3, use_bias=False)(L.Flatten()(h))


def _range_input(shape, lo=-1.0, hi=1.0, n=2, seed=0):
    return np.random.default_rng(seed).uniform(lo, hi, (n,) + shape).astype(np.float32)


@pytest.mark.parametrize("rank", [1, 3])
def test_grouped_conv_explains_like_block_diagonal_dense_conv(rank):
    conv = {1: L.Conv1D, 3: L.Conv3D}[rank]
    shape = {1: (9, 4), 3: (3, 6, 6, 4)}[rank]
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape)
    h = conv(6, 3, groups=2, padding="same", activation="relu")(inp)
    h = conv(4, 3, groups=2, strides=2, activation="relu")(h)
    grouped = keras.Model(inp, _head(h))
    inp = keras.Input(shape)
    h = conv(6, 3, padding="same", activation="relu")(inp)
    h = conv(4, 3, strides=2, activation="relu")(h)
    dense = keras.Model(inp, _head(h))
    weights = grouped.get_weights()
    weights[0] = _block_diagonal_grouped(weights[0], 2)
    weights[2] = _block_diagonal_grouped(weights[2], 2)
    dense.set_weights(weights)
    _explain_same(grouped, dense, _range_input(shape))


def test_depthwise_and_separable_explain_like_block_diagonal_dense_convs():
    keras.utils.set_random_seed(1)
    shape = (7, 7, 3)
    inp = keras.Input(shape)
    h = L.DepthwiseConv2D(3, depth_multiplier=2, activation="relu")(inp)
    h = L.SeparableConv2D(4, 3, strides=2, padding="same", activation="relu",
                          depth_multiplier=1)(h)
    ours = keras.Model(inp, _head(h))
    inp = keras.Input(shape)
    h = L.Conv2D(6, 3, activation="relu")(inp)
    h = L.Conv2D(6, 3, strides=2, padding="same", use_bias=False)(h)  # depthwise step
    h = L.Conv2D(4, 1, activation="relu")(h)  # pointwise step with the bias
    dense = keras.Model(inp, _head(h))
    dw_k, dw_b, sep_dk, sep_pk, sep_b, head = ours.get_weights()
    dense.set_weights([_block_diagonal_depthwise(dw_k), dw_b,
                       _block_diagonal_depthwise(sep_dk), sep_pk, sep_b, head])
    _explain_same(ours, dense, _range_input(shape))
    names = [name for name, _ in analyzers.create_analyzer("lrp.z", ours).layer_rules()]
    assert sum(n.endswith("/depthwise") for n in names) == 1
    assert sum(n.endswith("/pointwise") for n in names) == 1


def test_depthwise_1d_explains_like_block_diagonal_dense_conv():
    keras.utils.set_random_seed(2)
    inp = keras.Input((8, 2))
    ours = keras.Model(inp, _head(L.SeparableConv1D(3, 3, depth_multiplier=2,
                                                    activation="relu")(
        L.DepthwiseConv1D(3, padding="same", activation="relu")(inp))))
    inp = keras.Input((8, 2))
    h = L.Conv1D(2, 3, padding="same", activation="relu")(inp)
    h = L.Conv1D(4, 3, use_bias=False)(h)
    h = L.Conv1D(3, 1, activation="relu")(h)
    dense = keras.Model(inp, _head(h))
    dw_k, dw_b, sk, pk, sb, head = ours.get_weights()
    dense.set_weights([_block_diagonal_depthwise(dw_k), dw_b, _block_diagonal_depthwise(sk),
                       pk, sb, head])
    _explain_same(ours, dense, _range_input((8, 2)))


# -- gates --------------------------------------------------------------------------
SE_SHAPE = (3, 6, 6, 3)


def _se_model():
    keras.utils.set_random_seed(3)
    inp = keras.Input(SE_SHAPE)
    h = L.Conv3D(4, 3, padding="same", activation="relu", name="c1")(inp)
    g = L.GlobalAveragePooling3D()(h)
    g = L.Dense(2, activation="relu")(g)
    g = L.Dense(4, activation="sigmoid")(g)
    g = L.Reshape((1, 1, 1, 4))(g)
    h = L.Multiply(name="gate_mul")([h, g])
    h = L.Conv3D(5, 3, padding="same", activation="relu", name="c2")(h)
    return keras.Model(inp, _head(h))


def _frozen(model, gate):
    """The same network without the SE branch, the gate of one sample folded into the
    kernel of the layer after the Multiply (exact: the gate is constant per channel)."""
    inp = keras.Input(SE_SHAPE)
    h = L.Conv3D(4, 3, padding="same", activation="relu")(inp)
    h = L.Conv3D(5, 3, padding="same", activation="relu")(h)
    frozen = keras.Model(inp, _head(h))
    c1, c2 = model.get_layer("c1"), model.get_layer("c2")
    frozen.set_weights([c1.kernel.numpy(), c1.bias.numpy(),
                        c2.kernel.numpy() * gate[:, None], c2.bias.numpy(),
                        model.layers[-1].kernel.numpy()])
    return frozen


def test_se_block_explains_like_the_network_with_the_gate_frozen_per_sample():
    model = _se_model()
    gate_model = keras.Model(model.input, model.layers[5].output)  # the reshaped gate
    for seed in range(2):
        x = _range_input(SE_SHAPE, n=1, seed=seed, lo=0.0)
        gate = gate_model.predict(x, verbose=0)[0].reshape(-1)
        assert np.all((gate > 0) & (gate < 1))
        _explain_same(model, _frozen(model, gate), x,
                      names=[a for a in ANALYZERS if a[0] not in ("gradient", "lrp.w_square")])


def test_gate_branch_gets_no_relevance_and_relevance_is_conserved():
    model = _se_model()
    for layer in model.layers:  # bias-free main path; the gate branch keeps its biases
        if layer.name in ("c1", "c2"):
            layer.bias.assign(np.zeros(layer.bias.shape, np.float32))
    x = _range_input(SE_SHAPE, n=2, lo=0.0)
    logits = analyzers.build_graph(model).forward(x).numpy()
    sel = np.argmax(logits, axis=1)
    for name in ("lrp.z", "lrp.alpha_2_beta_1", "deep_taylor.bounded"):
        kw = {"low": 0.0, "high": 1.0} if name == "deep_taylor.bounded" else {}
        total = analyzers.create_analyzer(name, model, **kw).analyze(x, sel)
        target = logits[np.arange(2), sel]
        if name.startswith("deep"):
            target = np.maximum(target, 0)
        assert_conserved(total, target, rtol=1e-4, err_msg=name)
    rules = dict(analyzers.create_analyzer("lrp.z", model).layer_rules())
    assert rules["gate_mul"] == "GateRule()"


@pytest.mark.parametrize("act", ["swish", "silu"])
def test_swish_equals_multiply_by_its_sigmoid_gate(act):
    keras.utils.set_random_seed(4)
    inp = keras.Input((6, 6, 2))
    h = L.Conv2D(4, 3, activation=act)(inp)
    h = L.Conv2D(3, 3, activation=act)(h)
    fused = keras.Model(inp, _head(h))
    inp = keras.Input((6, 6, 2))
    z = L.Conv2D(4, 3)(inp)
    h = L.Multiply()([z, L.Activation("sigmoid")(z)])
    z = L.Conv2D(3, 3)(h)
    h = L.Multiply()([L.Activation("sigmoid")(z), z])  # the gate first this time
    gated = keras.Model(inp, _head(h))
    gated.set_weights(fused.get_weights())
    _explain_same(fused, gated, _range_input((6, 6, 2)),
                  names=[a for a in ANALYZERS if a[0] != "gradient"])


def test_multiply_of_two_non_gates_is_refused():
    inp = keras.Input((4, 4, 2))
    a = L.Conv2D(2, 1, name="a")(inp)
    b = L.Conv2D(2, 1, name="b")(inp)
    model = keras.Model(inp, _head(L.Multiply(name="prod")([a, b])))
    with pytest.raises(analyzers.UnsupportedLayerError,
                       match=r"layer 'prod' \(Multiply\) has no relevance rule \(a Multiply "
                             r"of two or more non-gate tensors"):
        analyzers.create_analyzer("lrp.z", model)


def test_sigmoid_outside_a_gate_is_refused():
    inp = keras.Input((4, 4, 2))
    h = L.Conv2D(2, 1, activation="sigmoid", name="sig")(inp)
    model = keras.Model(inp, _head(h))
    with pytest.raises(analyzers.UnsupportedLayerError,
                       match=r"'sig'.*'sigmoid' only as a gate of Multiply"):
        analyzers.create_analyzer("deep_taylor", model)
    inp = keras.Input((4,))
    model = keras.Model(inp, L.Dense(1, activation="sigmoid", name="out")(inp))
    with pytest.raises(analyzers.UnsupportedLayerError, match="not as the model's output"):
        analyzers.create_analyzer("lrp.z", model)


# -- BatchNormalization before a kernel layer -------------------------------------------
def _bn(layer_rng, bn):
    n = bn.gamma.shape[0]
    bn.gamma.assign(layer_rng.uniform(0.5, 1.5, n).astype("float32"))
    bn.beta.assign(layer_rng.normal(0, 0.3, n).astype("float32"))
    bn.moving_mean.assign(layer_rng.normal(0, 0.3, n).astype("float32"))
    bn.moving_variance.assign(layer_rng.uniform(0.2, 3.0, n).astype("float32"))


@pytest.mark.parametrize("padding, kernel, folded", [("valid", 3, True), ("same", 1, True),
                                                      ("same", 3, False)])
def test_batch_norm_before_a_conv_is_folded_where_exact(padding, kernel, folded):
    keras.utils.set_random_seed(5)
    inp = keras.Input((5, 5, 3))
    h = L.Conv2D(3, 3, padding="same", activation="relu")(inp)
    h = L.BatchNormalization(name="bn")(h)
    h = L.Conv2D(4, kernel, padding=padding, activation="relu", name="conv")(h)
    model = keras.Model(inp, _head(h))
    _bn(np.random.default_rng(0), model.get_layer("bn"))
    x = _range_input((5, 5, 3))
    graph = fold_batch_norm(analyzers.build_graph(model))
    np.testing.assert_allclose(graph.forward(x).numpy(), model.predict(x, verbose=0),
                               atol=1e-5)
    notes = [n for n in graph.notes if "'bn' folded into the following 'conv'" in n]
    assert len(notes) == (1 if folded else 0)
    if not folded:
        return
    # the same as the network with the BatchNormalization folded by hand
    inp = keras.Input((5, 5, 3))
    h = L.Conv2D(3, 3, padding="same", activation="relu")(inp)
    h = L.Conv2D(4, kernel, padding=padding, activation="relu")(h)
    manual = keras.Model(inp, _head(h))
    bn = model.get_layer("bn")
    scale = bn.gamma.numpy() / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    shift = bn.beta.numpy() - bn.moving_mean.numpy() * scale
    w, b = model.get_layer("conv").get_weights()
    c1 = model.layers[1].get_weights()
    extra = np.einsum("kio,i->o", w.reshape((-1,) + w.shape[-2:]), shift)
    manual.set_weights(c1 + [w * scale[:, None], b + extra, model.layers[-1].kernel.numpy()])
    _explain_same(model, manual, x, names=[a for a in ANALYZERS if a[0] != "deep_taylor"])


def test_batch_norm_at_the_input_folds_into_a_dense_layer():
    keras.utils.set_random_seed(6)
    inp = keras.Input((6,))
    h = L.BatchNormalization(name="bn")(inp)
    h = L.Dense(4, activation="relu")(h)
    model = keras.Model(inp, L.Dense(2)(h))
    _bn(np.random.default_rng(1), model.get_layer("bn"))
    graph = fold_batch_norm(analyzers.build_graph(model))
    assert len(graph.steps) == 2
    x = _range_input((6,))
    np.testing.assert_allclose(graph.forward(x).numpy(), model.predict(x, verbose=0),
                               atol=1e-5)


def test_time_distributed_around_a_nested_model_explains_like_its_layers_each_wrapped():
    """TimeDistributed around a nested Sequential (a per-frame CNN): its steps are inlined on
    the frames folded into the batch, so it explains like the same layers each wrapped in
    TimeDistributed; a time axis of unknown length is unfolded at run time."""
    keras.utils.set_random_seed(8)
    cnn = keras.Sequential([keras.Input((6, 6, 2)), L.Conv2D(3, 3, activation="relu"),
                            L.MaxPooling2D(), L.Flatten(), L.Dense(4, activation="relu")])
    inp = keras.Input((3, 6, 6, 2))
    head = L.Dense(2)
    model = keras.Model(inp, head(L.GlobalAveragePooling1D()(L.TimeDistributed(cnn)(inp))))
    h = inp
    for layer in cnn.layers:
        h = L.TimeDistributed(layer)(h)
    twin = keras.Model(inp, head(L.GlobalAveragePooling1D()(h)))
    x = _range_input((3, 6, 6, 2))
    np.testing.assert_allclose(twin(x).numpy(), model(x).numpy(), atol=1e-5)
    tf.config.run_functions_eagerly(True)  # the same code, without a trace per analyzer
    try:
        for name, kwargs, _ in ANALYZERS:
            if name in ("lrp.z", "lrp.alpha_2_beta_1", "deep_taylor.bounded"):
                a = analyzers.create_analyzer(name, model, **kwargs).analyze(x, 1)
                b = analyzers.create_analyzer(name, twin, **kwargs).analyze(x, 1)
                np.testing.assert_allclose(a, b, atol=1e-5 * np.abs(b).max(), err_msg=name)
    finally:
        tf.config.run_functions_eagerly(False)
    frames = keras.Input((None, 6, 6, 2))  # an open time axis: unfolded at run time
    unknown = keras.Model(frames, head(L.GlobalAveragePooling1D()(L.TimeDistributed(cnn)(
        frames))))
    for length in (2, 5):  # the same relevance as the model with that many frames
        clip = np.random.default_rng(length).uniform(-1, 1, (2, length, 6, 6, 2)).astype(
            np.float32)
        fixed_in = keras.Input((length, 6, 6, 2))
        fixed = keras.Model(fixed_in, head(L.GlobalAveragePooling1D()(L.TimeDistributed(cnn)(
            fixed_in))))
        want = analyzers.create_analyzer("lrp.z", fixed).analyze(clip, 1)
        got = analyzers.create_analyzer("lrp.z", unknown).analyze(clip, 1)
        np.testing.assert_allclose(got, want, atol=1e-5 * np.abs(want).max())
