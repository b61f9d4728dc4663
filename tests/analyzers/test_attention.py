"""Attention and the layers of video transformers, checked against hand-written numpy:

* AttnLRP's softmax rule ``R_in = x * (R - s * sum(R))``, and that it is the softmax's
  gradient times its input;
* one attention head (``MultiHeadAttention`` with biases, a Dense head) under ``attnlrp`` and
  ``cp_lrp``, relevance propagated by hand in explicit form (contributions over stabilized
  outputs; the products' equal split or constant attention weights), never through a
  gradient;
* EinsumDense under the existing LRP names (the matrix form), the gamma rule against its
  formula, ``Embedding`` as a position table, max pooling over tokens, a softmax inside a
  model;
* what the existing names do with attention (refused, naming ``attnlrp`` / ``cp_lrp``), and
  ``neuron_selection``, batching and saving for the new names.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from analyzers_reference import dense_matrix, rule_epsilon, stab  # noqa: E402
from transformer_nets import PositionIds  # noqa: E402

import analyzers  # noqa: E402
from analyzers.ops.structural import SoftmaxOp  # noqa: E402
from analyzers.rules import GammaRule, SoftmaxRule  # noqa: E402

L = keras.layers
EPS = 1e-6  # attnlrp / cp_lrp default


def _rng(seed=0):
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- softmax rule
def test_softmax_rule_is_its_formula_and_the_gradient_times_input():
    x = _rng(0).normal(size=(3, 5)).astype(np.float32)
    r = _rng(1).normal(size=(3, 5)).astype(np.float32)
    s = np.exp(x - x.max(1, keepdims=True))
    s /= s.sum(1, keepdims=True)
    expected = x * (r - s * r.sum(1, keepdims=True))
    (got,) = SoftmaxRule()(SoftmaxOp(None, axis=-1, name="s"), [tf.constant(x)],
                          tf.constant(r))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        st = tf.nn.softmax(xt)
    vjp = tape.gradient(st, xt, output_gradients=tf.constant(r) / st)
    np.testing.assert_allclose((xt * vjp).numpy(), expected, rtol=1e-4, atol=1e-5)
    # not conservative: the inputs get sum(x R) - sum(x s) sum(R), not sum(R)
    np.testing.assert_allclose(expected.sum(1), (x * r).sum(1) - (x * s).sum(1) * r.sum(1),
                               rtol=1e-5)


# --------------------------------------------------------------------------- one head
T, D, K = 4, 5, 3  # tokens, model width, key size


@pytest.fixture(scope="module")
def head_model():
    keras.utils.set_random_seed(3)
    inp = keras.Input((T, D))
    h = L.MultiHeadAttention(1, K, bias_initializer="random_normal", name="mha")(inp, inp)
    out = L.Dense(2, bias_initializer="random_normal", name="head")(L.Flatten()(h))
    return keras.Model(inp, out)


def _explicit(x, w, b, r, eps):
    """Epsilon rule for ``z = x w + b`` row by row: ``R_i = sum_j x_i w_ij / stab(z_j) R_j``
    (``x [n, i]``, ``r [n, j]``)."""
    z = x @ w + b
    return x * ((r / stab(z, eps)) @ w.T)


def _head_reference(model, x, index, convention):
    """Relevance of one sample ``x [T, D]`` in explicit form (float64)."""
    mha, dense = model.get_layer("mha"), model.get_layer("head")
    get = [np.asarray(v, np.float64) for v in (
        mha.query_dense.kernel, mha.query_dense.bias, mha.key_dense.kernel,
        mha.key_dense.bias, mha.value_dense.kernel, mha.value_dense.bias,
        mha.output_dense.kernel, mha.output_dense.bias, dense.kernel, dense.bias)]
    wq, bq, wk, bk, wv, bv, wo, bo, wd, bd = get
    wq, wk, wv, bq, bk, bv = (a.reshape(D, K) if a.ndim == 3 else a.reshape(K)
                              for a in (wq, wk, wv, bq, bk, bv))
    wo = wo.reshape(K, D)
    x = x.astype(np.float64)
    q, k, v = x @ wq + bq, x @ wk + bk, x @ wv + bv
    scores = (q / np.sqrt(K)) @ k.T                      # [T, T]
    a = np.exp(scores - scores.max(1, keepdims=True))
    a /= a.sum(1, keepdims=True)
    o = a @ v                                             # [T, K]
    y = o @ wo + bo                                       # [T, D]
    logits = y.reshape(-1) @ wd + bd
    r_logits = np.zeros_like(logits)
    r_logits[index] = logits[index]
    r_y = _explicit(y.reshape(1, -1), wd, bd, r_logits[None], eps=EPS).reshape(T, D)
    r_o = _explicit(o, wo, bo, r_y, EPS)
    # o[t, c] = sum_s a[t, s] v[s, c]: contributions a v over o, shared by the two factors
    share = a[:, :, None] * v[None, :, :] / o[:, None, :] * r_o[:, None, :]  # [t, s, c]
    if convention == "attnlrp":
        r_a, r_v = 0.5 * share.sum(2), 0.5 * share.sum(0)
        r_scores = scores * (r_a - a * r_a.sum(1, keepdims=True))  # the softmax rule
        # scores[t, u] = sum_c q'[t, c] k[u, c] with q' = q / sqrt(K), shared equally
        c = (q / np.sqrt(K))[:, None, :] * k[None, :, :] / scores[:, :, None] \
            * r_scores[:, :, None]                         # [t, u, c]
        r_q, r_k = 0.5 * c.sum(1), 0.5 * c.sum(0)
    else:
        r_v = share.sum(0)
        r_q = r_k = np.zeros((T, K))
    return (_explicit(x, wq, bq, r_q, EPS) + _explicit(x, wk, bk, r_k, EPS)
            + _explicit(x, wv, bv, r_v, EPS))


@pytest.mark.parametrize("name", ["attnlrp", "cp_lrp"])
def test_one_attention_head_matches_the_explicit_numpy_rules(head_model, name):
    x = _rng(4).normal(size=(2, T, D)).astype(np.float32)
    relevance = analyzers.create_analyzer(name, head_model).analyze(x, neuron_selection=1)
    for i in range(2):
        expected = _head_reference(head_model, x[i], 1, name)
        np.testing.assert_allclose(relevance[i], expected, rtol=1e-4,
                                   atol=1e-5 * np.abs(expected).max(), err_msg=name)


# --------------------------------------------------------------------------- other layers
def test_einsum_dense_under_lrp_epsilon_is_the_matrix_form():
    keras.utils.set_random_seed(5)
    inp = keras.Input((4, 6))
    layer = L.EinsumDense("abc,cd->abd", output_shape=(4, 5), bias_axes="d",
                          bias_initializer="random_normal")
    h = layer(inp)
    model = keras.Model(inp, L.Dense(2, use_bias=False, name="head")(L.Flatten()(h)))
    x = _rng(5).normal(size=(1, 4, 6)).astype(np.float32)
    relevance = analyzers.create_analyzer("lrp.epsilon", model, epsilon=0.01).analyze(
        x, neuron_selection=0)
    w1, b1, _ = dense_matrix(layer, (4, 6))
    w2 = np.asarray(model.get_layer("head").kernel, np.float64)
    hidden = x.reshape(-1).astype(np.float64) @ w1 + b1
    z = hidden @ w2
    r_out = np.array([z[0], 0.0])
    r_hidden = rule_epsilon(hidden, w2, np.zeros(2), r_out, eps=0.01)
    expected = rule_epsilon(x.reshape(-1).astype(np.float64), w1, b1, r_hidden, eps=0.01)
    np.testing.assert_allclose(relevance.reshape(-1), expected, rtol=1e-4, atol=1e-6)
    # the other rules decompose it too (its linear form takes any kernel)
    for name in ("lrp.z_plus", "lrp.alpha_2_beta_1", "lrp.w_square"):
        assert np.isfinite(analyzers.create_analyzer(name, model).analyze(x)).all()


def _gamma_reference(x, w, b, r, gamma, eps):
    """Zennit 1.0's generalised gamma rule for ``z = x w + b`` (one sample, float64)."""
    xp, xn = np.maximum(x, 0), np.minimum(x, 0)
    up, down = w + gamma * np.maximum(w, 0), w + gamma * np.minimum(w, 0)
    z = x @ w + b
    z_pos = xp @ up + xn @ down + b + gamma * np.maximum(b, 0)
    z_neg = xp @ down + xn @ up + b + gamma * np.minimum(b, 0)
    s_pos = np.where(z > 0, r / stab(z_pos, eps), 0.0)
    s_neg = np.where(z < 0, r / stab(z_neg, eps), 0.0)
    return xp * (up @ s_pos + down @ s_neg) + xn * (down @ s_pos + up @ s_neg)


def test_gamma_rule_is_its_formula():
    keras.utils.set_random_seed(6)
    inp = keras.Input((7,))
    layer = L.Dense(4, bias_initializer="random_normal")
    model = keras.Model(inp, layer(inp))
    x = _rng(6).normal(size=(1, 7)).astype(np.float32)
    r = _rng(7).normal(size=(1, 4)).astype(np.float32)
    op = analyzers.build_graph(model).steps[0].op
    (got,) = GammaRule(0.25, 1e-6)(op, [tf.constant(x)], tf.constant(r))
    w, b = np.asarray(layer.kernel, np.float64), np.asarray(layer.bias, np.float64)
    expected = _gamma_reference(x[0].astype(np.float64), w, b, r[0].astype(np.float64),
                                0.25, 1e-6)
    np.testing.assert_allclose(got.numpy()[0], expected, rtol=1e-4, atol=1e-6)


def test_an_embedding_position_table_keeps_its_share_under_every_name():
    """Tokens + Embedding(position ids): the z rule gives the table ``table * w`` (absorbed,
    like a bias) and the tokens the rest."""
    keras.utils.set_random_seed(8)
    inp = keras.Input((5, 4))
    table = L.Embedding(5, 4, embeddings_initializer="random_normal")(PositionIds()(inp))
    h = L.Add()([inp, table])
    model = keras.Model(inp, L.Dense(2, use_bias=False, name="head")(L.Flatten()(h)))
    x = _rng(8).normal(size=(2, 5, 4)).astype(np.float32)
    logits = model.predict(x, verbose=0)
    w = np.asarray(model.get_layer("head").kernel)[:, 0]
    for name in ("lrp.z", "attnlrp", "cp_lrp"):
        relevance = analyzers.create_analyzer(name, model).analyze(x, neuron_selection=0)
        np.testing.assert_allclose(relevance.reshape(2, -1), x.reshape(2, -1) * w, rtol=1e-4,
                                   atol=1e-6, err_msg=name)
        positions = np.asarray(model.layers[2].embeddings).reshape(-1)  # the table's share
        np.testing.assert_allclose(relevance.reshape(2, -1).sum(1) + positions @ w,
                                   logits[:, 0], rtol=1e-4, err_msg=name)


def test_global_max_pooling_over_tokens_gives_the_winner_all():
    keras.utils.set_random_seed(9)
    inp = keras.Input((6, 3))
    h = L.GlobalMaxPooling1D()(L.LayerNormalization(center=False, scale=False)(inp))
    model = keras.Model(inp, L.Dense(2, use_bias=False)(h))
    x = _rng(9).normal(size=(2, 6, 3)).astype(np.float32)
    relevance = analyzers.create_analyzer("cp_lrp", model).analyze(x, neuron_selection=0)
    normed = (x - x.mean(2, keepdims=True)) / np.sqrt(x.var(2, keepdims=True) + 1e-3)
    winners = normed == normed.max(1, keepdims=True)
    assert np.all(relevance[~np.broadcast_to(winners.any(2, keepdims=True), x.shape)] == 0)
    np.testing.assert_allclose(relevance.reshape(2, -1).sum(1),
                               model.predict(x, verbose=0)[:, 0], rtol=1e-4)


def test_a_softmax_inside_a_model_gets_the_softmax_rule():
    keras.utils.set_random_seed(10)
    inp = keras.Input((6,))
    first = L.Dense(5, use_bias=False, name="first")
    last = L.Dense(2, use_bias=False, name="last")
    model = keras.Model(inp, last(L.Softmax(name="inner")(first(inp))))
    x = _rng(10).normal(size=(1, 6)).astype(np.float32)
    relevance = analyzers.create_analyzer("attnlrp", model).analyze(x, neuron_selection=0)
    w1, w2 = np.asarray(first.kernel, np.float64), np.asarray(last.kernel, np.float64)
    z = x[0].astype(np.float64) @ w1
    s = np.exp(z) / np.exp(z).sum()
    out = s @ w2
    r_s = rule_epsilon(s, w2, np.zeros(2), np.array([out[0], 0.0]), eps=EPS)
    r_z = z * (r_s - s * r_s.sum())
    expected = rule_epsilon(x[0].astype(np.float64), w1, np.zeros(5), r_z, eps=EPS)
    np.testing.assert_allclose(relevance[0], expected, rtol=1e-4, atol=1e-7)
    # a layer's softmax activation inside the model is split off into a step of its own
    fused = keras.Model(inp, last(L.Dense(5, activation="softmax", use_bias=False)(inp)))
    fused.layers[1].set_weights([w1.astype(np.float32)])
    np.testing.assert_allclose(analyzers.create_analyzer("attnlrp", fused).analyze(
        x, neuron_selection=0), relevance, rtol=1e-5)
    with pytest.raises(analyzers.UnsupportedLayerError, match="'inner'.*a softmax inside "
                                                             "the model.*Works on this model: "
                                                             "attnlrp, cp_lrp"):
        analyzers.create_analyzer("lrp.epsilon", model)


# --------------------------------------------------------------------------- the names
@pytest.mark.parametrize("name", ["lrp.epsilon", "lrp.z", "deep_taylor", "lrp.alpha_1_beta_0"])
def test_attention_under_the_lrp_names_is_refused_naming_attnlrp(head_model, name):
    with pytest.raises(analyzers.UnsupportedLayerError,
                       match=r"layer 'mha' \(MultiHeadAttention\).*Works on this model: "
                             r"attnlrp, cp_lrp, gradient"):
        analyzers.create_analyzer(name, head_model)
    # the gradient family takes it
    assert np.isfinite(analyzers.create_analyzer("gradient", head_model).analyze(
        np.ones((1, T, D), np.float32))).all()


@pytest.mark.parametrize("name", ["attnlrp", "cp_lrp"])
def test_neuron_selection_batching_and_saving(head_model, name, tmp_path):
    x = _rng(11).normal(size=(3, T, D)).astype(np.float32)
    analyzer = analyzers.create_analyzer(name, head_model, epsilon=1e-5, gamma=0.1)
    assert analyzers.analyzer_options(name) == ["epsilon", "gamma", "max_pooling", "compat"]
    chosen = np.array([0, 1, 1])
    full = analyzer.analyze(x, neuron_selection=chosen)
    np.testing.assert_allclose(analyzer.analyze(x, neuron_selection=chosen, batch_size=2),
                               full, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(analyzer.analyze(x[1:2], neuron_selection=1), full[1:2],
                               rtol=1e-5, atol=1e-7)
    top = analyzer.analyze(x)
    first = np.argmax(head_model.predict(x, verbose=0), axis=1)
    np.testing.assert_allclose(top, analyzer.analyze(x, neuron_selection=first), rtol=1e-6)
    again = analyzers.Analyzer.load(*analyzer.save())
    np.testing.assert_allclose(again.analyze(x, neuron_selection=chosen), full, rtol=1e-6)
    analyzer.save_npz(tmp_path / "a.npz")
    loaded = analyzers.Analyzer.load_npz(tmp_path / "a.npz")
    assert loaded.name == name and loaded.settings.options == {"epsilon": 1e-5, "gamma": 0.1}
    np.testing.assert_allclose(loaded.analyze(x, neuron_selection=chosen), full, rtol=1e-5,
                               atol=1e-7)
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        analyzers.create_analyzer(name, head_model, gamma=-1.0)
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        analyzers.create_analyzer(name, head_model, epsilon=0.0)
