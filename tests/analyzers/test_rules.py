"""Every relevance rule against its matrix form, layer by layer.

For each layer (Dense, Conv1D/2D/3D over strides, dilations, paddings and odd kernels,
Conv*Transpose, pooling) the dense weight matrix is read off the Keras layer itself
(identity-basis inputs, ``analyzers_reference.dense_matrix``); the rule is applied in
numpy (``R_i = sum_j c_ij / z_j R_j``) and compared with the engine's rule at atol 1e-5
(relevance scaled by max(1, max|R_ref|)). The engine runs in float64 (layers built with
``dtype="float64"``) so that the z / epsilon rules, whose denominators can come close to
zero for signed inputs, are compared exactly; the rules with sign-definite denominators
are compared in float32 as well.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import analyzers_reference as ref  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from repo_paths import REPO_ROOT

import analyzers  # noqa: E402
from analyzers.ops import make_op  # noqa: E402

L = keras.layers

# (id, layer factory, input shape without batch)
KERNEL_CASES = [
    ("dense", lambda: L.Dense(5), (7,)),
    ("conv1d_s2_same", lambda: L.Conv1D(3, 3, strides=2, padding="same"), (9, 2)),
    ("conv1d_d2_valid", lambda: L.Conv1D(3, 3, dilation_rate=2), (10, 2)),
    ("conv1d_causal", lambda: L.Conv1D(2, 3, padding="causal"), (6, 2)),
    ("conv2d_s2_same", lambda: L.Conv2D(3, 3, strides=2, padding="same"), (5, 5, 2)),
    ("conv2d_13_valid", lambda: L.Conv2D(2, (1, 3)), (4, 5, 2)),
    ("conv3d_same", lambda: L.Conv3D(3, 3, padding="same"), (3, 4, 4, 2)),
    ("conv3d_133_s122", lambda: L.Conv3D(3, (1, 3, 3), strides=(1, 2, 2), padding="same"),
     (3, 5, 5, 2)),
    ("conv3d_311_valid", lambda: L.Conv3D(2, (3, 1, 1)), (5, 3, 3, 2)),
    ("conv3d_dil", lambda: L.Conv3D(2, (2, 2, 2), dilation_rate=(2, 1, 1)), (5, 3, 3, 2)),
    ("conv1d_transpose", lambda: L.Conv1DTranspose(2, 3, strides=2), (4, 3)),
    ("conv2d_transpose_same", lambda: L.Conv2DTranspose(2, 3, strides=2, padding="same"),
     (3, 3, 2)),
    ("conv3d_transpose", lambda: L.Conv3DTranspose(2, (1, 3, 3), strides=(1, 2, 2)),
     (2, 3, 3, 2)),
    # grouped and depthwise: the matrix read off the layer is the block-diagonal one
    ("conv1d_groups2", lambda: L.Conv1D(4, 3, groups=2, padding="same"), (7, 4)),
    ("conv2d_groups3_s2", lambda: L.Conv2D(3, 3, groups=3, strides=2, padding="same"),
     (5, 5, 3)),
    ("conv3d_groups2", lambda: L.Conv3D(4, (1, 3, 3), groups=2, strides=(1, 2, 2),
                                        padding="same"), (2, 5, 5, 4)),
    ("depthwise1d", lambda: L.DepthwiseConv1D(3, depth_multiplier=2, padding="same"), (6, 3)),
    ("depthwise2d_s2", lambda: L.DepthwiseConv2D(3, strides=2, depth_multiplier=2),
     (5, 5, 2)),
]

LOW, HIGH = -1.0, 1.0

RULES = {
    "z": (lambda: analyzers.ZRule(), ref.rule_z),
    "epsilon": (lambda: analyzers.EpsilonRule(0.1), lambda x, w, b, r: ref.rule_epsilon(
        x, w, b, r, eps=0.1)),
    "epsilon_nobias": (lambda: analyzers.EpsilonRule(0.01, bias=False),
                       lambda x, w, b, r: ref.rule_epsilon(x, w, b, r, eps=0.01, bias=False)),
    "z_plus": (lambda: analyzers.ZPlusRule(), ref.rule_z_plus),
    "alpha_1_beta_0": (lambda: analyzers.AlphaBetaRule(1, 0),
                       lambda x, w, b, r: ref.rule_alpha_beta(x, w, b, r, 1.0, 0.0)),
    "alpha_2_beta_1": (lambda: analyzers.AlphaBetaRule(2, 1),
                       lambda x, w, b, r: ref.rule_alpha_beta(x, w, b, r, 2.0, 1.0)),
    "alpha_2_beta_1_nobias": (lambda: analyzers.AlphaBetaRule(2, 1, bias=False),
                              lambda x, w, b, r: ref.rule_alpha_beta(x, w, b, r, 2.0, 1.0,
                                                                     bias=False)),
    "bounded": (lambda: analyzers.BoundedRule(LOW, HIGH),
                lambda x, w, b, r: ref.rule_bounded(x, w, b, r, np.full_like(x, LOW),
                                                    np.full_like(x, HIGH))),
    "w_square": (lambda: analyzers.WSquareRule(), ref.rule_w_square),
    "flat": (lambda: analyzers.FlatRule(), ref.rule_flat),
}


def _build(factory, in_shape, seed, dtype="float32"):
    keras.utils.set_random_seed(seed)
    layer = factory()
    layer.dtype_policy = keras.DTypePolicy(dtype)
    layer.build((None,) + in_shape)
    if getattr(layer, "bias", None) is not None:
        layer.bias.assign(np.random.default_rng(seed).normal(0, 0.3, layer.bias.shape)
                          .astype("float32"))
    return layer


def _compare(engine, expected):
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(engine / scale, expected / scale, atol=1e-5)


#: Rules whose denominators cannot come close to zero: also checked in float32.
WELL_CONDITIONED = ("z_plus", "alpha_1_beta_0", "alpha_2_beta_1", "alpha_2_beta_1_nobias",
                    "w_square", "flat")


RULE_DTYPES = [(name, "float64") for name in RULES] + [(n, "float32") for n in WELL_CONDITIONED]


@pytest.mark.parametrize(("rule_name", "dtype"), RULE_DTYPES,
                         ids=[f"{n}-{d}" for n, d in RULE_DTYPES])
@pytest.mark.parametrize("case", KERNEL_CASES, ids=[c[0] for c in KERNEL_CASES])
def test_kernel_rule_matches_matrix_form(case, rule_name, dtype):
    _, factory, in_shape = case
    layer = _build(factory, in_shape, seed=len(rule_name), dtype=dtype)
    w, b, out_shape = ref.dense_matrix(layer, in_shape, dtype)
    rng = np.random.default_rng(3)
    x = rng.uniform(LOW, HIGH, size=in_shape).astype(dtype)
    r = rng.uniform(0.1, 1.0, size=out_shape).astype(dtype)
    make_rule, reference = RULES[rule_name]
    rule = make_rule()
    op = make_op(layer)
    got = rule(op, [tf.constant(x[None])], tf.constant(r[None]))[0].numpy()[0]
    expected = reference(x.reshape(-1).astype(np.float64), w, b, r.reshape(-1)
                         .astype(np.float64)).reshape(in_shape)
    assert got.shape == x.shape
    _compare(got, expected)


def test_z_plus_fast_path_on_nonnegative_inputs_is_the_same():
    layer = _build(lambda: L.Conv3D(3, 3, padding="same"), (3, 4, 4, 2), seed=1)
    x = np.random.default_rng(0).uniform(0, 1, (1, 3, 4, 4, 2)).astype(np.float32)
    r = tf.ones((1, 3, 4, 4, 3))
    op = make_op(layer)
    for rule in (analyzers.ZPlusRule(), analyzers.AlphaBetaRule(2, 1)):
        slow = rule(op, [tf.constant(x)], r, nonnegative=False)[0].numpy()
        fast = rule(op, [tf.constant(x)], r, nonnegative=True)[0].numpy()
        np.testing.assert_allclose(fast, slow, atol=1e-6)


@pytest.mark.parametrize("nonnegative", [False, True], ids=["signed", "nonnegative"])
@pytest.mark.parametrize("case", KERNEL_CASES, ids=[c[0] for c in KERNEL_CASES])
def test_fused_paths_equal_the_plain_formula(case, nonnegative, monkeypatch):
    """The fused alpha-beta paths (``analyzers.rules._fused``) against the plain formula
    (the switch off), on every kernel layer, for signed and non-negative inputs (float64)."""
    from analyzers.rules import _fused

    _, factory, in_shape = case
    layer = _build(factory, in_shape, seed=5, dtype="float64")
    op = make_op(layer)
    rng = np.random.default_rng(4)
    x = rng.uniform(0.0 if nonnegative else LOW, HIGH, size=(2, *in_shape))
    r = tf.constant(rng.uniform(0.1, 1.0, size=(2, *layer.compute_output_shape(
        (None, *in_shape))[1:])))
    rules = (analyzers.ZPlusRule(), analyzers.AlphaBetaRule(2, 1),
             analyzers.AlphaBetaRule(2, 1, bias=False))
    fused = [rule(op, [tf.constant(x)], r, nonnegative=nonnegative)[0].numpy()
             for rule in rules]
    monkeypatch.setattr(_fused, "ENABLED", False)
    for rule, got in zip(rules, fused):
        plain = rule(op, [tf.constant(x)], r, nonnegative=nonnegative)[0].numpy()
        _compare(got, plain)
        np.testing.assert_allclose(got, plain, rtol=1e-9, atol=1e-12)


def test_bounded_rule_per_channel_bounds():
    in_shape = (3, 4, 4, 2)
    layer = _build(lambda: L.Conv3D(3, (1, 3, 3), padding="same"), in_shape, seed=2)
    w, b, out_shape = ref.dense_matrix(layer, in_shape)
    low = np.array([-1.0, 0.0], np.float32)
    high = np.array([1.0, 2.0], np.float32)
    rng = np.random.default_rng(5)
    x = rng.uniform(low, high, size=in_shape).astype(np.float32)
    r = rng.uniform(0.1, 1.0, size=out_shape).astype(np.float32)
    got = analyzers.BoundedRule(low, high)(make_op(layer), [tf.constant(x[None])],
                                           tf.constant(r[None]))[0].numpy()[0]
    lows = np.broadcast_to(low, in_shape).reshape(-1).astype(np.float64)
    highs = np.broadcast_to(high, in_shape).reshape(-1).astype(np.float64)
    expected = ref.rule_bounded(x.reshape(-1).astype(np.float64), w, b,
                                r.reshape(-1).astype(np.float64), lows, highs)
    _compare(got, expected.reshape(in_shape))


POOL_CASES = [
    ("pool1d", L.MaxPooling1D, L.AveragePooling1D, dict(pool_size=2), (6, 2)),
    ("pool2d_s1_same", L.MaxPooling2D, L.AveragePooling2D,
     dict(pool_size=3, strides=1, padding="same"), (4, 4, 2)),
    ("pool3d", L.MaxPooling3D, L.AveragePooling3D, dict(pool_size=2), (4, 4, 4, 2)),
    ("pool3d_122", L.MaxPooling3D, L.AveragePooling3D, dict(pool_size=(1, 2, 2)),
     (3, 4, 4, 2)),
    ("pool3d_overlap", L.MaxPooling3D, L.AveragePooling3D,
     dict(pool_size=(2, 3, 3), strides=(1, 2, 2), padding="same"), (3, 5, 5, 1)),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=[c[0] for c in POOL_CASES])
def test_pooling_rules_match_matrix_form(case):
    _, max_cls, avg_cls, kw, in_shape = case
    avg = avg_cls(**kw)
    mx = max_cls(**kw)
    avg.build((None,) + in_shape)
    mx.build((None,) + in_shape)
    w, _, out_shape = ref.dense_matrix(avg, in_shape)
    membership = (w > 0).astype(np.float64)
    rng = np.random.default_rng(7)
    x = rng.uniform(0.0, 1.0, size=in_shape).astype(np.float32)
    r = rng.uniform(0.1, 1.0, size=out_shape).astype(np.float32)
    xt, rt = tf.constant(x[None]), tf.constant(r[None])
    xf, rf = x.reshape(-1).astype(np.float64), r.reshape(-1).astype(np.float64)
    # max pooling, winner-take-all (the default rule of max pooling in every composite)
    wta = analyzers.GradientRule()(make_op(mx), [xt], rt)[0].numpy()[0]
    _compare(wta, ref.pool_winner_take_all(xf, membership, rf).reshape(in_shape))
    # max pooling, proportional (z rule on its average-pooling surrogate)
    prop = analyzers.ZRule()(make_op(mx), [xt], rt)[0].numpy()[0]
    _compare(prop, ref.pool_proportional(xf, membership, rf).reshape(in_shape))
    # average pooling, proportional to the inputs
    avg_r = analyzers.ZRule()(make_op(avg), [xt], rt)[0].numpy()[0]
    _compare(avg_r, ref.pool_proportional(xf, membership, rf).reshape(in_shape))
    # every pooling rule conserves relevance
    for got in (wta, prop, avg_r):
        assert got.sum() == pytest.approx(r.sum(), rel=1e-5)


@pytest.mark.parametrize("is_max", [True, False])
def test_global_pooling_rules(is_max):
    in_shape = (3, 4, 4, 2)
    layer = (L.GlobalMaxPooling3D if is_max else L.GlobalAveragePooling3D)()
    layer.build((None,) + in_shape)
    x = np.random.default_rng(1).uniform(0, 1, (1,) + in_shape).astype(np.float32)
    r = np.array([[0.3, 0.7]], np.float32)
    rule = analyzers.GradientRule() if is_max else analyzers.ZRule()
    got = rule(make_op(layer), [tf.constant(x)], tf.constant(r))[0].numpy()[0]
    if is_max:
        flat = x[0].reshape(-1, 2)
        expected = np.zeros_like(flat)
        expected[np.argmax(flat, axis=0), [0, 1]] = r[0]
        expected = expected.reshape(in_shape)
    else:
        expected = x[0] / x[0].sum(axis=(0, 1, 2)) * r[0]
    _compare(got, expected)


def test_add_rule_splits_by_contribution():
    add = L.Add()
    a = np.array([[1.0, -2.0, 0.5]], np.float32)
    b = np.array([[3.0, 1.0, 0.5]], np.float32)
    r = np.array([[4.0, 1.0, 2.0]], np.float32)
    got = analyzers.ZRule()(make_op(add), [tf.constant(a), tf.constant(b)], tf.constant(r))
    z = a + b
    np.testing.assert_allclose(got[0].numpy(), a / z * r, atol=1e-5)
    np.testing.assert_allclose(got[1].numpy(), b / z * r, atol=1e-5)


def test_alpha_beta_requires_alpha_minus_beta_one():
    with pytest.raises(ValueError, match=r"alpha - beta = 1.*alpha=2.*beta=2"):
        analyzers.AlphaBetaRule(2, 2)
    with pytest.raises(ValueError, match="alpha - beta = 1"):
        analyzers.create_analyzer("lrp.alpha_beta", keras.Sequential(
            [keras.Input((3,)), L.Dense(2)]), alpha=3, beta=1)


def test_alpha_beta_degenerate_neurons_conserve():
    """A unit with only positive contributions (no inhibitory part) and one with only
    negative contributions: the relevance of each is conserved with its sign; the textbook
    variant (iNNvestigate) gives alpha * R and -beta * R instead."""
    dense = L.Dense(2, use_bias=False)
    dense.build((None, 3))
    dense.kernel.assign(np.array([[1.0, -1.0], [2.0, -0.5], [0.5, -2.0]], np.float32))
    x = tf.constant([[0.2, 0.3, 0.5]])
    r = tf.constant([[1.0, -0.7]])
    op = make_op(dense)
    got = analyzers.AlphaBetaRule(2, 1)(op, [x], r)[0].numpy()[0]
    contrib = x.numpy()[0][:, None] * dense.kernel.numpy()
    expected = (contrib / contrib.sum(0) * r.numpy()[0]).sum(1)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert got.sum() == pytest.approx(0.3, abs=1e-6)
    textbook = analyzers.AlphaBetaRule(2, 1, conserve_degenerate=False)(op, [x], r)[0]
    assert float(tf.reduce_sum(textbook)) == pytest.approx(2 * 1.0 - 1 * (-0.7), abs=1e-6)


# -- average pooling: strides != pool size, overlapping windows, same padding -----------
AVG_POOL_CASES = [
    ("avg1d_p3_s2_same", L.AveragePooling1D(3, strides=2, padding="same"), (7, 2)),
    ("avg2d_p23_s12_same", L.AveragePooling2D((2, 3), strides=(1, 2), padding="same"),
     (4, 5, 2)),
    ("avg3d_p3_s2_valid", L.AveragePooling3D(3, strides=2), (5, 5, 5, 1)),
    ("avg3d_p2_s3_valid", L.AveragePooling3D(2, strides=3), (5, 6, 6, 1)),
]


@pytest.mark.parametrize("case", AVG_POOL_CASES, ids=[c[0] for c in AVG_POOL_CASES])
def test_average_pooling_matches_matrix_form(case):
    _, layer, in_shape = case
    layer.build((None,) + in_shape)
    w, _, out_shape = ref.dense_matrix(layer, in_shape)
    membership = (w > 0).astype(np.float64)
    rng = np.random.default_rng(8)
    x = rng.uniform(0.0, 1.0, size=in_shape).astype(np.float32)
    r = rng.uniform(0.1, 1.0, size=out_shape).astype(np.float32)
    got = analyzers.ZRule()(make_op(layer), [tf.constant(x[None])], tf.constant(r[None]))
    expected = ref.pool_proportional(x.reshape(-1).astype(np.float64), membership,
                                     r.reshape(-1).astype(np.float64))
    _compare(got[0].numpy()[0], expected.reshape(in_shape))
    covered = membership.sum(axis=1) > 0  # inputs no window reads get nothing
    assert got[0].numpy()[0].sum() == pytest.approx(r.sum(), rel=1e-5)
    assert np.all(got[0].numpy()[0].reshape(-1)[~covered] == 0)


# -- LayerNormalization / GroupNormalization: statistics held, a diagonal affine map -----
NORM_CASES = [
    ("layer_norm_last", lambda: L.LayerNormalization(), (3, 4)),
    ("layer_norm_axes12", lambda: L.LayerNormalization(axis=(1, 2)), (3, 4)),
    ("layer_norm_noscale", lambda: L.LayerNormalization(scale=False, center=False), (5,)),
    ("group_norm_2", lambda: L.GroupNormalization(2), (3, 4)),
    ("group_norm_3d", lambda: L.GroupNormalization(3, center=False), (2, 2, 3, 6)),
]


def _norm_layer(factory, in_shape, seed):
    layer = factory()
    layer.dtype_policy = keras.DTypePolicy("float64")
    layer.build((None,) + in_shape)
    rng = np.random.default_rng(seed)
    for v in layer.weights:
        v.assign(rng.normal(0.3, 0.8, v.shape))
    return layer


def _norm_reference(layer, x):
    """Diagonal kernel gamma / std and bias beta - mean gamma / std, in numpy."""
    xb = x[None].astype(np.float64)
    if isinstance(layer, L.GroupNormalization):
        c = x.shape[-1]
        g = xb.reshape(xb.shape[:-1] + (layer.groups, c // layer.groups))
        axes = tuple(range(1, g.ndim - 2)) + (g.ndim - 1,)
        mean = np.broadcast_to(g.mean(axis=axes, keepdims=True), g.shape).reshape(xb.shape)
        var = np.broadcast_to(g.var(axis=axes, keepdims=True), g.shape).reshape(xb.shape)
        param_axes = [xb.ndim - 1]
    else:
        axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        axes = [a % xb.ndim for a in axes]
        mean = xb.mean(axis=tuple(axes), keepdims=True)
        var = xb.var(axis=tuple(axes), keepdims=True)
        param_axes = axes
    shape = [xb.shape[a] if a in param_axes else 1 for a in range(xb.ndim)]
    gamma = layer.gamma.numpy().reshape(shape) if layer.scale else 1.0
    beta = layer.beta.numpy().reshape(shape) if layer.center else 0.0
    kernel = np.broadcast_to(gamma / np.sqrt(var + layer.epsilon), xb.shape)
    bias = np.broadcast_to(beta - mean * kernel, xb.shape)
    return kernel[0].reshape(-1), bias[0].reshape(-1)


@pytest.mark.parametrize("rule_name", list(RULES))
@pytest.mark.parametrize("case", NORM_CASES, ids=[c[0] for c in NORM_CASES])
def test_normalization_rule_matches_matrix_form(case, rule_name):
    _, factory, in_shape = case
    layer = _norm_layer(factory, in_shape, seed=len(rule_name))
    rng = np.random.default_rng(4)
    x = rng.uniform(LOW, HIGH, size=in_shape)
    r = rng.uniform(0.1, 1.0, size=in_shape)
    op = make_op(layer).at([tf.constant(x[None])])
    np.testing.assert_allclose(op.forward([tf.constant(x[None])]).numpy(),
                               layer(x[None]).numpy(), atol=1e-9)
    k, b = _norm_reference(layer, x)
    make_rule, reference = RULES[rule_name]
    got = make_rule()(op, [tf.constant(x[None])], tf.constant(r[None]))[0].numpy()[0]
    expected = reference(x.reshape(-1), np.diag(k), b, r.reshape(-1)).reshape(in_shape)
    _compare(got, expected)


def test_normalization_bias_free_rules_conserve():
    """Without the bias (the held mean and beta), every signed-input rule of the diagonal
    form passes relevance unchanged: R_in = R."""
    layer = _norm_layer(lambda: L.LayerNormalization(), (3, 4), seed=0)
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (1, 3, 4)))
    r = tf.constant(np.random.default_rng(1).uniform(-1, 1, (1, 3, 4)))
    op = make_op(layer).at([x])
    for rule in (analyzers.ZRule(bias=False), analyzers.EpsilonRule(1e-9, bias=False),
                 analyzers.AlphaBetaRule(2, 1, bias=False)):
        np.testing.assert_allclose(rule(op, [x], r)[0].numpy(), r.numpy(), atol=1e-7)


# -- elementwise activations: the identity rule ----------------------------------------
ELEMENTWISE = ["swish", "silu", "hard_swish", "gelu", "elu", "leaky_relu", "relu6", "tanh",
               "relu"]
ACTIVATION_LAYERS = [
    ("LeakyReLU", lambda: L.LeakyReLU(0.2), False),
    ("ELU", lambda: L.ELU(0.5), False),
    ("ReLU_max6", lambda: L.ReLU(max_value=6.0), True),
    ("ReLU_slope", lambda: L.ReLU(negative_slope=0.1), False),
] + [(f"Activation_{a}", (lambda a=a: L.Activation(a)), a in ("relu", "relu6"))
     for a in ELEMENTWISE]


@pytest.mark.parametrize("case", ACTIVATION_LAYERS, ids=[c[0] for c in ACTIVATION_LAYERS])
def test_elementwise_activation_layers_pass_relevance_unchanged(case):
    _, factory, nonnegative = case
    layer = factory()
    x = tf.constant(np.linspace(-3, 3, 12, dtype=np.float32).reshape(1, 3, 4))
    r = tf.constant(np.random.default_rng(0).normal(size=(1, 3, 4)).astype(np.float32))
    op = make_op(layer)
    np.testing.assert_allclose(op.forward([x]).numpy(), layer(x).numpy(), atol=1e-6)
    rule = op.standard_rule("winner_take_all")
    assert isinstance(rule, analyzers.rules.IdentityRule)
    np.testing.assert_array_equal(rule(op, [x], r)[0].numpy(), r.numpy())
    model = keras.Sequential([keras.Input((3, 4)), L.Dense(4), layer, L.Flatten(), L.Dense(2)])
    graph = analyzers.build_graph(model)
    # deep Taylor's "input known non-negative" only after activations with outputs >= 0
    assert graph.steps[2].input_nonnegative is nonnegative


@pytest.mark.parametrize("act", ELEMENTWISE)
def test_fused_activation_is_the_identity_rule(act):
    """``Dense(activation=act)`` explains like ``Dense`` followed by ``Activation(act)``."""
    keras.utils.set_random_seed(2)
    fused = keras.Sequential([keras.Input((6,)), L.Dense(5, activation=act, use_bias=False),
                              L.Dense(3, use_bias=False)])
    split = keras.Sequential([keras.Input((6,)), L.Dense(5, use_bias=False), L.Activation(act),
                              L.Dense(3, use_bias=False)])
    split.set_weights(fused.get_weights())
    x = np.random.default_rng(0).uniform(-1, 1, (3, 6)).astype(np.float32)
    graph = analyzers.build_graph(fused)
    assert graph.steps[1].input_nonnegative is (act in ("relu", "relu6"))
    for name in ("lrp.z", "lrp.alpha_2_beta_1", "deep_taylor"):
        a = analyzers.create_analyzer(name, fused).analyze(x, neuron_selection=1)
        b = analyzers.create_analyzer(name, split).analyze(x, neuron_selection=1)
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_docs_list_the_registry():
    """The list of supported layers in docs/analyzers.md is the registry's."""

    from analyzers.ops import supported_layers_markdown
    page = (REPO_ROOT / "docs" / "analyzers.md").read_text(encoding="utf-8")
    assert supported_layers_markdown() in page


def test_registry_refuses_an_op_without_a_rule():
    from analyzers.ops.base import LayerOp
    from analyzers.ops.factory import Support

    class NewOp(LayerOp):
        pass

    with pytest.raises(TypeError, match="NewOp has no default rule"):
        Support(NewOp, (L.UnitNormalization,), NewOp, None, "UnitNormalization")
    with pytest.raises(ValueError, match="no registered default rule"):
        analyzers.composites.standard_rule(NewOp(L.UnitNormalization()))
