"""The public API: gradient analyzers against tf.GradientTape, neuron selection, softmax
stripping, BatchNormalization folding, custom composites, saved / freshly trained models,
compilation, and the error messages."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from conservation import assert_conserved  # noqa: E402

import analyzers  # noqa: E402
from analyzers.composites import Composite, is_conv, is_dense  # noqa: E402

L = keras.layers
SHAPE = (4, 8, 8, 3)


def small_c3d(final="dense_softmax", bias=True, seed=0):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input(SHAPE),
              L.Conv3D(4, 3, padding="same", activation="relu", use_bias=bias),
              L.MaxPooling3D((1, 2, 2)),
              L.Conv3D(6, (3, 1, 1), padding="same", activation="relu", use_bias=bias),
              L.AveragePooling3D(2), L.Flatten(),
              L.Dense(8, activation="relu", use_bias=bias)]
    if final == "dense_softmax":
        layers.append(L.Dense(3, activation="softmax", use_bias=bias))
    else:
        layers += [L.Dense(3, use_bias=bias), L.Activation("softmax")]
    return keras.Sequential(layers, name=f"c3d_{final}")


@pytest.fixture(scope="module")
def model():
    return small_c3d("activation_softmax")


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).uniform(-1, 1, (3,) + SHAPE).astype(np.float32)


def _logit_model(model):
    return keras.Model(model.inputs[0], model.layers[-2].output)


def _tape_gradient(logit_model, x, index):
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = logit_model(xt)
        target = tf.reduce_sum(y * tf.one_hot(index, y.shape[-1]))
    return tape.gradient(target, xt).numpy()


def test_list_analyzers_has_the_required_names():
    names = analyzers.list_analyzers()
    for required in ("gradient", "input_t_gradient", "smoothgrad", "integrated_gradients",
                     "deep_taylor", "deep_taylor.bounded", "lrp.z", "lrp.epsilon",
                     "lrp.z_plus", "lrp.w_square", "lrp.flat", "lrp.alpha_1_beta_0",
                     "lrp.alpha_2_beta_1", "lrp.sequential_preset_a",
                     "lrp.sequential_preset_b"):
        assert required in names


def test_gradient_analyzers_match_gradient_tape(model, x):
    logit_model = _logit_model(model)
    logits = logit_model(x).numpy()
    top = logits.argmax(1)
    grad = _tape_gradient(logit_model, x, top)
    np.testing.assert_allclose(analyzers.create_analyzer("gradient", model).analyze(x), grad,
                               atol=1e-6)
    np.testing.assert_allclose(
        analyzers.create_analyzer("input_t_gradient", model).analyze(x), x * grad, atol=1e-6)
    np.testing.assert_allclose(
        analyzers.create_analyzer("gradient", model, postprocess="abs").analyze(x),
        np.abs(grad), atol=1e-6)
    # SmoothGrad without noise is the gradient; with a seed it is reproducible
    np.testing.assert_allclose(analyzers.create_analyzer(
        "smoothgrad", model, augment_by_n=3, noise_scale=0.0).analyze(x), grad, atol=1e-6)
    sg = [analyzers.create_analyzer("smoothgrad", model, augment_by_n=4, noise_scale=0.2,
                                    seed=5).analyze(x) for _ in range(2)]
    np.testing.assert_allclose(sg[0], sg[1], atol=1e-7)
    assert not np.allclose(sg[0], grad, atol=1e-4)
    # integrated gradients: (x - x0) * mean of the gradients at k/steps along the path
    steps = 4
    expected = np.zeros_like(x)
    for k in range(1, steps + 1):
        expected += _tape_gradient(logit_model, x * k / steps, top)
    np.testing.assert_allclose(analyzers.create_analyzer(
        "integrated_gradients", model, steps=steps).analyze(x), x * expected / steps,
        atol=1e-6)


def test_neuron_selection_variants(model, x):
    analyzer = analyzers.create_analyzer("lrp.epsilon", model)
    logit_model = _logit_model(model)
    top = logit_model(x).numpy().argmax(1)
    by_max = analyzer.analyze(x)
    np.testing.assert_allclose(by_max, analyzer.analyze(x, neuron_selection=top), atol=1e-7)
    per_class = [analyzer.analyze(x, neuron_selection=k) for k in range(3)]
    mixed = analyzer.analyze(x, neuron_selection=np.array([2, 0, 1]))
    for sample, k in enumerate((2, 0, 1)):
        np.testing.assert_allclose(mixed[sample], per_class[k][sample], atol=1e-7)
    assert not np.allclose(per_class[0], per_class[1])


@pytest.mark.parametrize("final", ["dense_softmax", "activation_softmax"])
def test_softmax_is_stripped(final, x):
    model = small_c3d(final, bias=False, seed=3)
    analyzer = analyzers.create_analyzer("lrp.z", model)
    assert any("softmax" in note for note in analyzer.graph.notes)
    dense = [layer for layer in model.layers if isinstance(layer, L.Dense)][-1]
    hidden = keras.Model(model.inputs[0], dense.input)(x).numpy()
    logits = hidden @ dense.kernel.numpy()
    np.testing.assert_allclose(analyzer.graph.forward(tf.constant(x)).numpy(), logits,
                               atol=1e-5)
    relevance = analyzer.analyze(x, neuron_selection=1)
    assert_conserved(relevance, logits[:, 1], rtol=1e-4)


def test_deep_taylor_explains_relu_of_the_logit(x):
    model = small_c3d("dense_softmax", bias=False, seed=4)
    analyzer = analyzers.create_analyzer("deep_taylor", model)
    logits = analyzer.graph.forward(tf.constant(np.abs(x))).numpy()
    lowest = logits.argmin(1)
    assert np.all(logits[np.arange(3), lowest] < 0)
    assert np.all(analyzer.analyze(np.abs(x), neuron_selection=lowest) == 0)
    top = analyzer.analyze(np.abs(x))
    assert_conserved(top, logits.max(1), rtol=1e-4)


def _bn_model(first_bn=False):
    keras.utils.set_random_seed(2)
    inp = keras.Input(SHAPE)
    h = L.BatchNormalization()(inp) if first_bn else inp
    h = L.Conv3D(4, 3, padding="same")(h)
    h = L.BatchNormalization()(h)
    h = L.ReLU()(h)
    h = L.BatchNormalization()(h)  # after a ReLU: cannot be folded
    h = L.Flatten()(h)
    h = L.Dense(5, use_bias=False)(h)
    h = L.BatchNormalization(scale=False)(h)
    model = keras.Model(inp, h)
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.uniform(-0.3, 0.3, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, n).astype("float32"))
            layer.beta.assign(rng.uniform(-0.2, 0.2, n).astype("float32"))
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
    return model


@pytest.mark.parametrize("first_bn", [False, True])
def test_batch_norm_folding_keeps_the_function(first_bn, x):
    """The folded graph gives the model's outputs (atol 1e-5); BNs after a ReLU or at the
    input stay as affine layers."""
    model = _bn_model(first_bn)
    graph = analyzers.build_graph(model)
    folded = analyzers.BatchNormFolder().apply(graph)
    expected = model(x, training=False).numpy()
    np.testing.assert_allclose(folded.forward(tf.constant(x)).numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(graph.forward(tf.constant(x)).numpy(), expected, atol=1e-5)
    n_folded = sum("folded" in note for note in folded.notes)
    assert n_folded == 2
    assert len(folded.steps) == len(graph.steps) - 2
    # conv bias + folded BN shift make it non-conserving; the map must still be finite
    relevance = analyzers.create_analyzer("lrp.epsilon", model).analyze(x)
    assert np.all(np.isfinite(relevance)) and np.abs(relevance).sum() > 0


def test_custom_composite_and_rule_per_layer(model, x):
    composite = Composite([(is_dense, analyzers.EpsilonRule(0.1)),
                           (is_conv, analyzers.AlphaBetaRule(1, 0))])
    analyzer = analyzers.create_analyzer("lrp", model, composite=composite)
    rules = dict(analyzer.layer_rules())
    conv_names = [layer.name for layer in model.layers if isinstance(layer, L.Conv3D)]
    dense_names = [layer.name for layer in model.layers if isinstance(layer, L.Dense)]
    assert all(rules[name].startswith("AlphaBetaRule(alpha=1.0, beta=0.0, bias=True")
               for name in conv_names)
    assert all(rules[name].startswith("EpsilonRule(epsilon=0.1") for name in dense_names)
    preset = analyzers.create_analyzer("lrp.sequential_preset_a", model)
    np.testing.assert_allclose(analyzer.analyze(x), preset.analyze(x), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match=r"no rule of the composite matches layer "
                                         r"'.*' \(Conv3D\)"):
        analyzers.create_analyzer("lrp", model, composite=Composite(
            [(is_dense, analyzers.ZRule())]))
    single = analyzers.create_analyzer("lrp", model, rule=analyzers.ZRule())
    np.testing.assert_allclose(single.analyze(x),
                               analyzers.create_analyzer("lrp.z", model).analyze(x), atol=1e-7)


def test_max_pooling_proportional_option(x):
    model = small_c3d("dense_softmax", bias=False, seed=6)
    xp = np.abs(x)
    wta = analyzers.create_analyzer("deep_taylor", model).analyze(xp)
    prop = analyzers.create_analyzer("deep_taylor", model, max_pooling="proportional")
    rel = prop.analyze(xp)
    assert not np.allclose(wta, rel)
    np.testing.assert_allclose(rel.reshape(3, -1).sum(1), wta.reshape(3, -1).sum(1), rtol=1e-4)
    with pytest.raises(ValueError, match="max_pooling must be 'winner_take_all' or "
                                         "'proportional', got 'avg'"):
        analyzers.create_analyzer("deep_taylor", model, max_pooling="avg")


def test_keras_file_round_trip(model, x, tmp_path):
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for name in ("deep_taylor", "lrp.alpha_2_beta_1"):
        np.testing.assert_allclose(analyzers.create_analyzer(name, loaded).analyze(x),
                                   analyzers.create_analyzer(name, model).analyze(x), atol=1e-6)


def test_freshly_trained_model_and_compiled_once(x):
    model = small_c3d("dense_softmax", seed=7)
    analyzer = analyzers.create_analyzer("deep_taylor.bounded", model, low=-1.0, high=1.0)
    before = analyzer.analyze(x)
    analyzer.analyze(x[:2])
    analyzer.analyze(x)
    assert analyzer._compiled.experimental_get_tracing_count() <= 2
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    model.fit(x, np.array([0, 1, 2]), epochs=3, verbose=0)
    after = analyzer.analyze(x)
    assert not np.allclose(before, after)  # the analyzer sees the trained weights
    fresh = analyzers.create_analyzer("deep_taylor.bounded", model, low=-1.0, high=1.0)
    np.testing.assert_allclose(after, fresh.analyze(x), atol=1e-6)


def test_conv2d_and_conv1d_models_conserve():
    keras.utils.set_random_seed(8)
    for shape, conv, pool in (((10, 10, 2), L.Conv2D, L.MaxPooling2D),
                              ((12, 2), L.Conv1D, L.AveragePooling1D)):
        model = keras.Sequential([keras.Input(shape),
                                  conv(3, 3, padding="same", activation="relu",
                                       use_bias=False), pool(2), L.Flatten(),
                                  L.Dense(2, use_bias=False)])
        xin = np.random.default_rng(1).uniform(0, 1, (2,) + shape).astype(np.float32)
        analyzer = analyzers.create_analyzer("lrp.z_plus", model)
        logits = analyzer.graph.forward(tf.constant(xin)).numpy()
        rel = analyzer.analyze(xin, neuron_selection=0)
        assert_conserved(rel, logits[:, 0], rtol=1e-4)


def test_shared_layer_and_functional_submodel_conserve():
    """A convolution applied twice (two nodes of one layer) and a functional sub-model."""
    keras.utils.set_random_seed(9)
    shared = L.Conv3D(3, 3, padding="same", activation="relu", use_bias=False)
    sub_in = keras.Input((4, 8, 8, 3))
    sub = keras.Model(sub_in, L.Conv3D(3, (1, 3, 3), padding="same", activation="relu",
                                       use_bias=False)(sub_in), name="sub")
    inp = keras.Input(SHAPE)
    a = shared(inp)
    b = shared(sub(a))
    h = L.Concatenate()([a, b])
    h = L.GlobalAveragePooling3D()(h)
    model = keras.Model(inp, L.Dense(2, use_bias=False)(h))
    xin = np.random.default_rng(2).uniform(0, 1, (2,) + SHAPE).astype(np.float32)
    analyzer = analyzers.create_analyzer("lrp.z_plus", model)
    assert [step.op.name for step in analyzer.graph.steps].count(shared.name) == 2
    logits = model(xin).numpy()
    np.testing.assert_allclose(analyzer.graph.forward(tf.constant(xin)).numpy(), logits,
                               atol=1e-5)
    rel = analyzer.analyze(xin, neuron_selection=1)
    assert_conserved(rel, logits[:, 1], rtol=1e-4)


# -- errors --------------------------------------------------------------------------
def test_input_errors(model, x):
    analyzer = analyzers.create_analyzer("lrp.epsilon", model)
    bad = x.copy()
    bad[0, 1, 2, 3, 0] = np.nan
    with pytest.raises(ValueError, match=r"x contains 1 NaN and 0 Inf values \(first at "
                                         r"index \(0, 1, 2, 3, 0\)\)"):
        analyzer.analyze(bad)
    bad[0, 1, 2, 3, 0] = np.inf
    with pytest.raises(ValueError, match="0 NaN and 1 Inf"):
        analyzer.analyze(bad)
    with pytest.raises(ValueError, match=r"x has shape \(3, 4, 8, 8\) but model 'c3d_activation"
                                         r"_softmax' expects input of shape "
                                         r"\(batch, 4, 8, 8, 3\)"):
        analyzer.analyze(x[..., 0])
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, 4, 8, 8, 3\)"):
        analyzer.analyze(np.zeros((1, 4, 8, 9, 3), np.float32))
    with pytest.raises(ValueError, match=r"neuron_selection 3 is out of range: the model has 3 "
                                         r"outputs \(valid indices 0..2\)"):
        analyzer.analyze(x, neuron_selection=3)
    with pytest.raises(ValueError, match="neuron_selection -1 is out of range"):
        analyzer.analyze(x, neuron_selection=np.array([0, -1, 1]))
    with pytest.raises(ValueError, match=r"must have shape \[batch\] = \(3,\), got \(2,\)"):
        analyzer.analyze(x, neuron_selection=np.array([0, 1]))
    with pytest.raises(ValueError, match="'max_activation', an int or an int array"):
        analyzer.analyze(x, neuron_selection="all")


def test_unknown_analyzer_name_suggests_close_matches(model):
    with pytest.raises(ValueError, match=r"unknown analyzer 'deep_tailor'\. Did you mean "
                                         r"'deep_taylor'.*Known analyzers: input, random, "):
        analyzers.create_analyzer("deep_tailor", model)
    with pytest.raises(ValueError, match="'lrp.z' has no option 'epsilon'; its options are: bias"):
        analyzers.create_analyzer("lrp.z", model, epsilon=0.1)
    with pytest.raises(ValueError, match="deep_taylor.bounded needs the input range: pass "
                                         "low=... and high=..."):
        analyzers.create_analyzer("deep_taylor.bounded", model)


@pytest.mark.parametrize("bad_layer, reason", [
    # LayerNormalization, tanh and ReLU(max_value) are supported since issue 9
    (lambda: L.UnitNormalization(), ""),
    (lambda: L.Activation("softplus"), "activation 'softplus'"),
    (lambda: L.ReLU(threshold=0.5), "ReLU with threshold"),
    (lambda: L.LayerNormalization(rms_scaling=True), "rms_scaling"),
])
def test_unsupported_layer_raises_before_computation(bad_layer, reason):
    layer = bad_layer()
    model = keras.Sequential([keras.Input((4, 6, 6, 2)), L.Conv3D(2, 3), layer, L.Flatten(),
                              L.Dense(2)])
    with pytest.raises(analyzers.UnsupportedLayerError) as info:
        analyzers.create_analyzer("deep_taylor", model)
    message = str(info.value)
    assert f"layer '{layer.name}' ({type(layer).__name__}) has no relevance rule" in message
    assert reason in message and len(message) < 300
    assert "Works on this model: gradient, input_t_gradient" in message
    assert "docs/adding-a-layer.md" in message
    assert info.value.layer_class == type(layer).__name__


def test_an_unsupported_recurrent_configuration_is_refused_clearly():
    model = keras.Sequential([keras.Input((5, 3)),
                              L.RNN(L.StackedRNNCells([L.LSTMCell(4), L.LSTMCell(4)])),
                              L.Dense(2)])
    with pytest.raises(analyzers.UnsupportedLayerError, match=r"\(RNN\) has no relevance rule "
                       r"\(a recurrent layer with cell StackedRNNCells"):
        analyzers.create_analyzer("lrp.z", model)
