"""Custom layers and ``keras.ops`` calls, explained through the operations their call runs
(:mod:`analyzers.tracing`): the roles found in real calls (MultiHeadAttention, a LayerNorm +
GELU block), a custom attention layer with a per-dimension scale, a logit soft-cap, a relative
position bias and a window mask against a hand-written gradient-form reference, functional
``keras.ops`` attention, and the refusal of an operation without a rule."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from collections import Counter  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from conservation import assert_conserved  # noqa: E402
from keras import ops  # noqa: E402

import analyzers  # noqa: E402
from analyzers import tracing  # noqa: E402
from analyzers.ops.traced import TracedOp  # noqa: E402
from analyzers.rules import TracedRule  # noqa: E402
from analyzers.tracing import operations  # noqa: E402

L = keras.layers
EPS = 1e-6


def _rng(seed=0):
    return np.random.default_rng(seed)


def _traced_steps(model):
    return [s for s in analyzers.build_graph(model).steps if isinstance(s.op, TracedOp)]


def _kinds(op, convention):
    """Counter of (TensorFlow op type, role) over the roles of ``op``'s call."""
    types = {n.name: n.op for n in op.trace.graph_def.node}
    return Counter((types[name], role) for name, role in op.plan(convention).roles.items()
                   if role != "linear")


# --------------------------------------------------------------------------- roles
def test_multi_head_attention_roles():
    inp = keras.Input((5, 8))
    model = keras.Model(inp, L.MultiHeadAttention(2, 4, name="mha")(inp, inp))
    (step,) = _traced_steps(model)
    attn = _kinds(step.op, "attnlrp")
    assert sum(n for (_, role), n in attn.items() if role == "weight") == 4  # q, k, v, out
    assert sum(n for (_, role), n in attn.items() if role == "product") == 2  # QK^T, AV
    assert attn[("Softmax", "softmax")] == 1
    cp = _kinds(step.op, "cp_lrp")
    assert sum(n for (_, role), n in cp.items() if role == "weight") == 2  # v, out
    assert cp[("Softmax", "attention weights")] == 1
    assert not any(role == "product" for _, role in cp)
    plan = step.op.plan("attnlrp")
    assert [factor for _, _, factor in plan.shares] == [0.5] * 4


@keras.saving.register_keras_serializable(package="analyzers_tests")
class NormGelu(L.Layer):
    """LayerNormalization, then Dense with GELU, inside one custom layer."""

    def build(self, input_shape):
        self.norm = L.LayerNormalization(beta_initializer="random_normal")
        self.norm.build(input_shape)
        self.dense = L.Dense(6, activation="gelu", bias_initializer="random_normal")
        self.dense.build(input_shape)

    def call(self, x):
        return self.dense(self.norm(x))


def test_layer_norm_and_gelu_inside_a_custom_layer_explain_as_the_layers_do():
    """The std is held (a statistic), the centring stays linear, GELU is one elementwise
    region after the Dense's bias (where the epsilon rule applies): the same relevance as
    the functional LayerNormalization + Dense(gelu) under the analyzers' own rules."""
    keras.utils.set_random_seed(1)
    inp = keras.Input((4, 5))
    custom_layer = NormGelu()
    custom = keras.Model(inp, L.Dense(2, name="head")(L.Flatten()(custom_layer(inp))))
    norm = L.LayerNormalization()
    dense = L.Dense(6, activation="gelu")
    plain = keras.Model(inp, L.Dense(2, name="head")(L.Flatten()(dense(norm(inp)))))
    norm.set_weights(custom_layer.norm.get_weights())
    dense.set_weights(custom_layer.dense.get_weights())
    plain.get_layer("head").set_weights(custom.get_layer("head").get_weights())
    (step,) = _traced_steps(custom)
    kinds = _kinds(step.op, "attnlrp")
    assert kinds[("Rsqrt", "statistic")] == 1 and kinds[("Erfc", "elementwise")] == 1
    plan = step.op.plan("attnlrp")
    (region,) = plan.regions
    assert region.source in plan.epsilon  # GELU's argument is the Dense's end (its bias)
    x = _rng(1).normal(size=(2, 4, 5)).astype(np.float32)
    for name in ("attnlrp", "cp_lrp"):
        a = analyzers.create_analyzer(name, custom).analyze(x, neuron_selection=0)
        b = analyzers.create_analyzer(name, plain).analyze(x, neuron_selection=0)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * np.abs(b).max(), err_msg=name)


@keras.saving.register_keras_serializable(package="analyzers_tests")
class Project(L.Layer):
    """``x @ w``: a call that ends with a weight contraction, without a bias."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], 3), initializer="random_normal")

    def call(self, x):
        return ops.matmul(x, self.w)


def test_a_weight_layer_ending_the_call_gets_the_epsilon_rule():
    """Its epsilon node is the rewritten call's output (the LXT cross-check found it was
    left beside the output once, giving the z rule there)."""
    keras.utils.set_random_seed(8)
    inp = keras.Input((5,))
    layer = Project()
    model = keras.Model(inp, layer(inp))
    dense = keras.Model(inp, L.Dense(3, use_bias=False)(inp))
    dense.set_weights(layer.get_weights())
    x = _rng(8).normal(size=(2, 5)).astype(np.float32) * 0.1
    for convention in ("attnlrp", "cp_lrp"):
        (step,) = _traced_steps(model)
        y = model(x)
        (got,) = TracedRule(convention, 0.5)(step.op, [tf.constant(x)], y)
        (op,) = [s.op for s in analyzers.build_graph(dense).steps]
        (expected,) = analyzers.EpsilonRule(0.5)(op, [tf.constant(x)], y)
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- custom attention
HEADS, DIM, TOKENS, WINDOW = 2, 8, 6, 3


@keras.saving.register_keras_serializable(package="analyzers_tests")
class WindowAttention(L.Layer):
    """Self-attention written with keras.ops, as keras-hub / keras-cv layers are: einsum
    projections, a learned per-dimension query scale (softplus), a logit soft-cap, a relative
    position bias gathered from a learned table, a mask between two windows of tokens."""

    def __init__(self, cap=5.0, **kwargs):
        super().__init__(**kwargs)
        self.cap = cap

    def build(self, input_shape):
        k = DIM // HEADS
        init = keras.initializers.RandomNormal(stddev=0.5, seed=2)
        self.wq = self.add_weight(shape=(DIM, HEADS, k), initializer=init, name="wq")
        self.wk = self.add_weight(shape=(DIM, HEADS, k), initializer=init, name="wk")
        self.wv = self.add_weight(shape=(DIM, HEADS, k), initializer=init, name="wv")
        self.wo = self.add_weight(shape=(HEADS, k, DIM), initializer=init, name="wo")
        self.scale = self.add_weight(shape=(k,), initializer=init, name="scale")
        self.table = self.add_weight(shape=(2 * TOKENS - 1, HEADS), initializer=init,
                                     name="table")
        pos = np.arange(TOKENS)
        self.index = (pos[:, None] - pos[None, :] + TOKENS - 1).astype("int32")
        window = pos // WINDOW
        self.mask = np.where(window[:, None] == window[None, :], 0.0, -1e9).astype("float32")

    def call(self, x):
        q = ops.einsum("btd,dhk->bthk", x, self.wq)
        k = ops.einsum("btd,dhk->bthk", x, self.wk)
        v = ops.einsum("btd,dhk->bthk", x, self.wv)
        q = q * ops.softplus(self.scale) / np.sqrt(DIM // HEADS)
        logits = ops.einsum("bthk,bshk->bhts", q, k)
        logits = self.cap * ops.tanh(logits / self.cap)
        bias = ops.transpose(ops.take(self.table, self.index, axis=0), (2, 0, 1))
        weights = ops.softmax(logits + bias[None] + self.mask, axis=-1)
        out = ops.einsum("bhts,bshk->bthk", weights, v)
        return ops.einsum("bthk,hkd->btd", out, self.wo)

    def get_config(self):
        return {**super().get_config(), "cap": self.cap}


def _held(t):
    return tf.stop_gradient(t)


def _half(t):
    return 0.5 * t + _held(0.5 * t)


def _epsilon(z):
    c = _held(z / tf.where(z >= 0, z + EPS, z - EPS))
    return _held(z) + z * c - _held(z * c)


def _identity_rule(y, x):
    c = _held(y / tf.where(x >= 0, x + 1e-12, x - 1e-12))
    return _held(y) + x * c - _held(x * c)


def _reference(layer, x, convention):
    """The layer's call rewritten by hand in gradient form (stop-gradient tricks)."""
    q = _epsilon(tf.einsum("btd,dhk->bthk", x, layer.wq))
    k = _epsilon(tf.einsum("btd,dhk->bthk", x, layer.wk))
    v = _epsilon(tf.einsum("btd,dhk->bthk", x, layer.wv))
    q = q * tf.nn.softplus(layer.scale) / np.sqrt(DIM // HEADS)
    if convention == "attnlrp":
        q, k = _half(q), _half(k)
    logits = tf.einsum("bthk,bshk->bhts", q, k)
    capped = layer.cap * _identity_rule(tf.tanh(logits / layer.cap), logits)
    bias = tf.transpose(tf.gather(layer.table, layer.index, axis=0), (2, 0, 1))
    weights = tf.nn.softmax(capped + bias[None] + layer.mask)
    if convention == "attnlrp":
        weights, v = _half(weights), _half(v)
    else:
        weights = _held(weights)
    out = tf.einsum("bhts,bshk->bthk", weights, v)
    return tf.einsum("bthk,hkd->btd", out, layer.wo)


@pytest.mark.parametrize("convention", ["attnlrp", "cp_lrp"])
def test_custom_attention_layer_against_a_hand_written_gradient_form(convention):
    inp = keras.Input((TOKENS, DIM))
    layer = WindowAttention(name="window_attention")
    model = keras.Model(inp, layer(inp))
    (step,) = _traced_steps(model)
    kinds = _kinds(step.op, convention)
    assert kinds[("Tanh", "elementwise")] == (1 if convention == "attnlrp" else 0)
    x = tf.constant(_rng(2).normal(size=(2, TOKENS, DIM)).astype(np.float32))
    y = model(x)
    r = y * tf.constant(_rng(3).normal(size=y.shape).astype(np.float32))
    (got,) = TracedRule(convention, EPS)(step.op, [x], r)
    with tf.GradientTape() as tape:
        tape.watch(x)
        ref_y = _reference(layer, x, convention)
    np.testing.assert_allclose(ref_y.numpy(), y.numpy(), rtol=1e-5, atol=1e-5)
    seed = r / tf.where(ref_y >= 0, ref_y + EPS, ref_y - EPS)  # the output's epsilon
    expected = (x * tape.gradient(ref_y, x, output_gradients=seed)).numpy()
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4,
                               atol=1e-5 * np.abs(expected).max())
    if convention == "cp_lrp":  # bias-free: conserving
        assert_conserved(got.numpy(), tf.reduce_sum(r, axis=[1, 2]).numpy(), rtol=1e-4)


# --------------------------------------------------------------------------- keras.ops
def test_functional_keras_ops_attention_with_a_softmax_layer():
    """``keras.ops.einsum`` calls in a functional model are traced; the Softmax layer between
    them is a step of its own, and under CP-LRP the second einsum holds it constant."""
    keras.utils.set_random_seed(4)
    inp = keras.Input((5, 6))
    q = L.Dense(6, use_bias=False, name="q")(inp)
    k = L.Dense(6, use_bias=False, name="k")(inp)
    v = L.Dense(6, use_bias=False, name="v")(inp)
    weights = L.Softmax(name="weights")(ops.einsum("btd,bsd->bts", q, k))
    out = ops.einsum("bts,bsd->btd", weights, v)
    model = keras.Model(inp, L.Dense(2, use_bias=False, name="head")(L.Flatten()(out)))
    x = _rng(4).normal(size=(2, 5, 6)).astype(np.float32)
    logits = model.predict(x, verbose=0)
    cp = analyzers.create_analyzer("cp_lrp", model).analyze(x, neuron_selection=0)
    assert_conserved(cp, logits[:, 0], rtol=1e-4)
    attn = analyzers.create_analyzer("attnlrp", model).analyze(x, neuron_selection=0)
    assert np.abs(attn - cp).max() > 1e-3 * np.abs(cp).max()
    # CP-LRP in numpy: the attention weights constant, all relevance through v
    wq, wk, wv, wh = (np.asarray(model.get_layer(n).kernel, np.float64)
                      for n in ("q", "k", "v", "head"))
    for i in range(2):
        xi = x[i].astype(np.float64)
        s = (xi @ wq) @ (xi @ wk).T
        a = np.exp(s - s.max(1, keepdims=True))
        a /= a.sum(1, keepdims=True)
        vi = xi @ wv
        o = a @ vi
        z = o.reshape(-1) @ wh
        r_o = (o.reshape(-1) * (wh @ np.array([z[0] / (z[0] + EPS), 0.0]))).reshape(5, 6)
        r_v = (a[:, :, None] * vi[None] / o[:, None, :] * r_o[:, None, :]).sum(0)
        expected = xi * ((r_v / stab(vi)) @ wv.T)
        np.testing.assert_allclose(cp[i], expected, rtol=1e-4, atol=1e-6)


def stab(z):
    return z + EPS * np.where(z >= 0, 1.0, -1.0)


def test_a_lambda_layer_is_traced():
    keras.utils.set_random_seed(5)
    inp = keras.Input((6,))
    h = L.Lambda(lambda t: 2.0 * ops.tanh(t))(L.Dense(4, use_bias=False)(inp))
    model = keras.Model(inp, L.Dense(2, use_bias=False)(h))
    x = _rng(5).normal(size=(2, 6)).astype(np.float32)
    relevance = analyzers.create_analyzer("attnlrp", model).analyze(x, neuron_selection=0)
    # tanh by the identity rule, the factor 2 linear: conserving
    assert_conserved(relevance, model.predict(x, verbose=0)[:, 0], rtol=1e-4)


# --------------------------------------------------------------------------- refusals
@keras.saving.register_keras_serializable(package="analyzers_tests")
class InverseErf(L.Layer):
    def call(self, x):
        return ops.erfinv(ops.tanh(x) * 0.5)


def test_an_operation_without_a_rule_is_refused_by_layer_and_operation_name():
    inp = keras.Input((4,))
    model = keras.Model(inp, L.Dense(2)(InverseErf(name="inverse_erf")(inp)))
    with pytest.raises(analyzers.UnsupportedLayerError,
                       match=r"layer 'inverse_erf' \(InverseErf\) has no relevance rule \("
                             r"op 'Erfinv' in its call has no rule; see analyzers.tracing."
                             r"register_operation\). Works on this model: gradient.*"
                             r"adding one: docs/adding-a-layer.md"):
        analyzers.create_analyzer("attnlrp", model)
    assert np.isfinite(analyzers.create_analyzer("gradient", model).analyze(
        np.full((1, 4), 0.3, np.float32))).all()
    tracing.register_operation("Erfinv", "elementwise")
    try:
        x = _rng(6).normal(size=(2, 4)).astype(np.float32)
        assert np.isfinite(analyzers.create_analyzer("attnlrp", model).analyze(x)).all()
    finally:
        operations._OPERATIONS.pop("Erfinv")
    with pytest.raises(ValueError, match="role must be one of"):
        tracing.register_operation("Erfinv", "nonlinear")


def test_custom_layers_under_the_lrp_names_and_in_time_distributed_are_refused():
    inp = keras.Input((TOKENS, DIM))
    model = keras.Model(inp, L.Flatten()(WindowAttention(name="wa")(inp)))
    with pytest.raises(analyzers.UnsupportedLayerError,
                       match=r"'wa' \(WindowAttention\).*through the operations its call "
                             r"runs.*Works on this model: attnlrp, cp_lrp, gradient"):
        analyzers.create_analyzer("lrp.epsilon", model)
    seq = keras.Input((3, 4))
    wrapped = keras.Model(seq, L.Flatten()(L.TimeDistributed(L.Lambda(ops.tanh))(seq)))
    with pytest.raises(analyzers.UnsupportedLayerError, match=r"'lambda(_\d+)?' \(Lambda\)"):
        analyzers.create_analyzer("attnlrp", wrapped)


def test_traced_relevance_runs_eagerly_and_gives_a_repeated_input_its_relevance_once():
    inp = keras.Input((5, 8))
    model = keras.Model(inp, L.MultiHeadAttention(2, 4, use_bias=False)(inp, inp))
    (step,) = _traced_steps(model)
    x = tf.constant(_rng(7).normal(size=(2, 5, 8)).astype(np.float32))
    y = model(x)
    first, second = TracedRule("cp_lrp", EPS)(step.op, [x, x], y)
    assert second is None
    assert_conserved(first.numpy(), tf.reduce_sum(y, axis=[1, 2]).numpy(), rtol=1e-4)
    with pytest.raises(ValueError, match="convention must be one of"):
        TracedRule("lrp")


def test_gates_as_held_factors_for_recurrent_cells():
    """``held_factors=("Sigmoid",)``: an LSTM-like step's gates are held where they multiply
    a signal, which gets all of the product's relevance (the LRP convention for gates)."""
    def step(xs, ws):
        (x,), (w,) = xs, ws
        i, f, g = tf.split(tf.matmul(x, w), 3, axis=-1)
        return tf.sigmoid(i) * tf.tanh(g) + tf.sigmoid(f) * x[:, :4]

    trace = tracing.trace_function(step, [tf.TensorSpec([None, 4])],
                                   [tf.TensorSpec([4, 12])])
    plan = tracing.plan_relevance(trace, "attnlrp", held_factors=("Sigmoid",))
    assert sorted(plan.nodes_with("held factor")) == ["Sigmoid", "Sigmoid_1"]
    assert not plan.shares and plan.nodes_with("elementwise") == ["Tanh"]
    x = tf.constant(_rng(9).normal(size=(3, 4)).astype(np.float32))
    w = tf.constant(_rng(10).normal(size=(4, 12)).astype(np.float32))
    y = step([x], [w])
    graph = tracing.modified_graph(trace, plan, 1e-9)
    (relevance,) = tracing.traced_relevance(graph, [x], [w], y)
    assert_conserved(relevance.numpy(), tf.reduce_sum(y, axis=1).numpy(), rtol=1e-4)
