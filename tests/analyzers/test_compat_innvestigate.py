"""``compat="innvestigate"`` as a setting and its pieces: TensorFlow's tie rules at max
pooling (against TensorFlow 2.14's own gradients, stored), iNNvestigate's rules in closed
form, and ``compat`` saved, loaded and shown like every other setting. Whole analyzers
against iNNvestigate's numbers: ``innvestigate/test_compat_cases.py``."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from innvestigate_zoo import reference, spec
from innvestigate_zoo.generate import POOL_TIES

import analyzers
from analyzers.canonizers import innvestigate_batch_norm
from analyzers.composites import innvestigate_rule
from analyzers.ops.pooling.ties import global_max_split, max_pool_every_max, tensorflow_tie_rule
from analyzers.ops.pooling.winner import max_pool_first_winner
from analyzers.rules import AlphaBetaXRule, ZPlusFastRule

L = keras.layers


# --------------------------------------------------------------------------- max pooling ties


@pytest.mark.parametrize("case", list(spec.POOL_TIE_CASES))
def test_tie_rules_give_tensorflows_own_gradients(case):
    """Ours (computed here, whatever kernels TensorFlow runs) equals TensorFlow 2.14's
    gradient at tied maxima exactly: 3D every input within 1e-5 of the maximum, 1D/2D the
    first maximum in row-major window order, global max pooling an even split."""
    data = reference.load(POOL_TIES)
    kind, config, _ = spec.POOL_TIE_CASES[case]
    layer = getattr(L, kind)(**config)
    x = tf.constant(data[f"input/{case}"])
    rank = x.shape.rank - 2
    with tf.GradientTape() as tape:
        tape.watch(x)
        if kind.startswith("Global"):
            y = global_max_split(x, "channels_last", keepdims=False)
        else:
            rule = tensorflow_tie_rule(rank, is_global=False)
            assert rule == ("every" if rank == 3 else "first")
            pool = max_pool_every_max if rule == "every" else max_pool_first_winner
            y = pool(x, layer.pool_size, layer.strides, layer.padding, "channels_last")
    g = tape.gradient(y, x, output_gradients=tf.constant(data[f"output_gradient/{case}"]))
    np.testing.assert_array_equal(g.numpy(), data[f"gradient/{case}"])


def test_compat_routes_every_pooling_layer_by_tensorflows_rule():
    """Through whole analyzers: ties at the value of the window are copied in 3D max pooling
    (so relevance multiplies), routed to the first maximum in 2D, split in global pooling."""
    for layer, total in [(L.MaxPooling3D(2), 8.0), (L.MaxPooling2D(2), 1.0),
                         (L.GlobalMaxPooling3D(), 1.0)]:
        shape = (2, 2, 2, 1) if "3D" in type(layer).__name__ else (2, 2, 1)
        inputs = keras.Input(shape)
        flat = L.Flatten()(layer(inputs))
        model = keras.Model(inputs, L.Dense(1, use_bias=False, kernel_initializer="ones")(flat))
        x = np.ones((1,) + shape, np.float32)  # (the logit is 1)
        for name in ("gradient", "lrp.flat"):
            got = analyzers.create_analyzer(name, model, compat="innvestigate").analyze(x)
            default = analyzers.create_analyzer(name, model).analyze(x)
            assert got.sum() == pytest.approx(total), (layer, name)
            assert default.sum() == pytest.approx(1.0) and np.count_nonzero(default) == 1


def test_compat_ties_of_a_model_that_is_no_layer_graph():
    """A model the relevance engine does not know (here a softplus activation) is explained
    by the gradient family with its max-pooling layers swapped for ours."""
    inputs = keras.Input((2, 2, 2, 1))
    hidden = L.MaxPooling3D(2)(L.Conv3D(1, 1, activation="softplus",
                                        kernel_initializer="ones")(inputs))
    model = keras.Model(inputs, L.Dense(1, kernel_initializer="ones")(L.Flatten()(hidden)))
    x = np.zeros((1, 2, 2, 2, 1), np.float32)
    got = analyzers.create_analyzer("gradient", model, compat="innvestigate").analyze(x)
    np.testing.assert_allclose(got.ravel(), np.full(8, 0.5), rtol=1e-6)  # softplus'(0) = 1/2


# --------------------------------------------------------------------------- rules


def _dense_model(kernel: np.ndarray, bias: np.ndarray) -> keras.Model:
    inputs = keras.Input((kernel.shape[0],))
    model = keras.Model(inputs, L.Dense(kernel.shape[1])(inputs))
    model.set_weights([kernel, bias])
    return model


def test_z_plus_fast_is_x_w_plus_literally():
    rng = np.random.default_rng(0)
    kernel, bias = rng.normal(size=(6, 3)).astype(np.float32), np.float32([0.3, -0.2, 0.1])
    x = rng.uniform(-1, 1, (4, 6)).astype(np.float32)
    model = _dense_model(kernel, bias)
    got = analyzers.create_analyzer("lrp", model, rule=ZPlusFastRule()).analyze(
        x, neuron_selection=1)
    contributions = x * np.maximum(kernel[:, 1], 0)
    logit = x @ kernel[:, 1] + bias[1]
    expected = contributions / contributions.sum(1, keepdims=True) * logit[:, None]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_alpha_beta_with_the_whole_bias_in_both_denominators():
    rng = np.random.default_rng(1)
    kernel, bias = rng.normal(size=(5, 2)).astype(np.float32), np.float32([0.4, -0.3])
    x = rng.uniform(-1, 1, (3, 5)).astype(np.float32)
    model = _dense_model(kernel, bias)
    for j in (0, 1):
        rule = innvestigate_rule(analyzers.AlphaBetaRule(2.0, 1.0))
        got = analyzers.create_analyzer("lrp", model, rule=rule).analyze(x, neuron_selection=j)
        w, b = kernel[:, j], bias[j]
        xp, xn, wp, wn = np.maximum(x, 0), np.minimum(x, 0), np.maximum(w, 0), np.minimum(w, 0)
        z_act, z_inh = xp * wp + xn * wn, xp * wn + xn * wp
        logit = (x @ w + b)[:, None]
        expected = (2 * z_act / (z_act.sum(1, keepdims=True) + b)
                    - z_inh / (z_inh.sum(1, keepdims=True) + b)) * logit
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_alpha_beta_x_normalises_each_kind_of_contribution_alone():
    rng = np.random.default_rng(2)
    kernel, bias = rng.normal(size=(5, 2)).astype(np.float32), np.float32([0.4, -0.3])
    x = rng.uniform(-1, 1, (3, 5)).astype(np.float32)
    model = _dense_model(kernel, bias)
    rule = AlphaBetaXRule(alpha=(2.0, 0.5), beta=(1.0, 0.5))
    got = analyzers.create_analyzer("lrp", model, rule=rule).analyze(x, neuron_selection=0)
    w, b = kernel[:, 0], bias[0]
    logit = (x @ w + b)[:, None]

    def share(xs, ws, bb):  # (a zero denominator is replaced by 1e-7)
        z = xs * ws
        total = z.sum(1, keepdims=True) + bb
        return z / np.where(total == 0, 1e-7, total) * logit

    xp, xn, wp, wn = np.maximum(x, 0), np.minimum(x, 0), np.maximum(w, 0), np.minimum(w, 0)
    bp, bn = max(b, 0.0), min(b, 0.0)
    expected = (2 * share(xp, wp, bp) + 0.5 * share(xn, wn, bn)
                - share(xp, wn, bn) - 0.5 * share(xn, wp, bp))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_batch_norm_surrogate_is_innvestigates():
    """iNNvestigate's LRP sees ``x * gamma / s + beta - mean / s`` with ``s = sqrt(var**2 +
    eps)``; the layer's output stays the true one."""
    inputs = keras.Input((4,))
    bn = L.BatchNormalization(epsilon=1e-3)
    model = keras.Model(inputs, L.Dense(2, use_bias=False)(bn(inputs)))
    rng = np.random.default_rng(3)
    gamma, beta = rng.uniform(0.5, 1.5, 4), rng.uniform(-0.2, 0.2, 4)
    mean, var = rng.uniform(-0.3, 0.3, 4), rng.uniform(0.2, 3.0, 4)
    bn.set_weights([a.astype(np.float32) for a in (gamma, beta, mean, var)])
    scale, shift = (t.numpy() for t in innvestigate_batch_norm(bn))
    s = np.sqrt(var ** 2 + 1e-3)
    np.testing.assert_allclose(scale, gamma / s, rtol=1e-6)
    np.testing.assert_allclose(shift, beta - mean / s, rtol=1e-5, atol=1e-7)
    x = rng.normal(size=(2, 4)).astype(np.float32)
    logits = model(x).numpy()
    analyzer = analyzers.create_analyzer("lrp.z", model, compat="innvestigate")
    r = analyzer.analyze(x, neuron_selection=0)
    kernel = model.layers[-1].get_weights()[0][:, 0]
    y = (x - mean) * gamma / np.sqrt(var + 1e-3) + beta          # the true BN output
    np.testing.assert_allclose(y @ kernel, logits[:, 0], rtol=1e-5)
    expected = x * scale / (x * scale + shift) * (y * kernel)    # z rule on the surrogate
    np.testing.assert_allclose(r, expected, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- the setting


@pytest.fixture(scope="module")
def model():
    return reference.model("quantized_input")


def test_compat_is_an_option_of_every_name(model):
    for name in analyzers.list_analyzers():
        assert analyzers.analyzer_options(name)[-1] == "compat"
    analyzer = analyzers.create_analyzer("lrp.epsilon", model, epsilon=0.1,
                                         compat="innvestigate")
    assert (analyzer.compat, analyzer.settings.compat) == ("innvestigate", "innvestigate")
    assert repr(analyzer) == ("RelevanceAnalyzer(name='lrp.epsilon', model='quantized_input', "
                              "epsilon=0.1, compat='innvestigate')")
    default = analyzers.create_analyzer("lrp.epsilon", model)
    assert default.compat is None and "compat" not in repr(default)
    with pytest.raises(ValueError, match="compat must be None .* or one of 'innvestigate'; "
                                         "got 'zennit'"):
        analyzers.create_analyzer("lrp.z", model, compat="zennit")
    with pytest.raises(ValueError, match="max_pooling='proportional' has no iNNvestigate "
                                         "equivalent"):
        analyzers.create_analyzer("lrp.z", model, max_pooling="proportional",
                                  compat="innvestigate")


@pytest.mark.parametrize("name", ["deconvnet", "integrated_gradients", "lrp.z_plus_fast",
                                  "lrp.sequential_preset_b_flat_until_idx", "deep_taylor"])
def test_compat_is_saved_and_loaded(model, name, tmp_path):
    options = {"lrp.sequential_preset_b_flat_until_idx": {"until_layer_idx": 2},
               "integrated_gradients": {"steps": 4}}.get(name, {})
    x = reference.load("quantized_input")["x"]
    analyzer = analyzers.create_analyzer(name, model, neuron_selection_mode="all",
                                         compat="innvestigate", **options)
    expected = analyzer.analyze(x)
    default = analyzers.create_analyzer(name, model, neuron_selection_mode="all", **options)
    assert reference.relative_difference(default.analyze(x), expected) > 1e-3
    class_name, state = analyzer.save()
    assert state["compat"] == "innvestigate"
    loaded = analyzers.Analyzer.load(class_name, state)
    path = tmp_path / "analyzer.npz"
    analyzer.save_npz(path)
    for again in (loaded, analyzers.Analyzer.load_npz(path),
                  analyzers.Analyzer.load_npz(path, model=model)):
        assert (again.compat, again.neuron_selection_mode) == ("innvestigate", "all")
        np.testing.assert_allclose(again.analyze(x), expected, rtol=1e-5, atol=1e-6)
