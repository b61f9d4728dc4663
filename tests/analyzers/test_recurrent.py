"""Recurrent layers (issue 24): the engine's forward pass equals Keras's for every supported
configuration; relevance is conserved on bias-free models under the conserving rules, through
stacks, Bidirectional merges, masks and a per-frame CNN in TimeDistributed; what is absorbed by
design; masking; batch independence; TimeDistributed around a nested model; refusals."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from conservation import ascent_inputs, assert_conserved  # noqa: E402

import analyzers  # noqa: E402

L = keras.layers
STEPS, FEATURES = 6, 3
#: the rules that conserve on bias-free models (z+, deep Taylor and alpha 1 beta 0 do not on
#: signed states: a unit without activating contributions passes nothing on)
CONSERVING = [("lrp.z", {}), ("lrp.epsilon", {}), ("lrp.alpha_2_beta_1", {}),
              ("lrp.w_square", {}), ("lrp.flat", {}),
              ("lrp.z", {"input_layer_rule": (-1.0, 1.0)})]  # z^B where the input is read


@pytest.fixture
def eager():
    """Run the analyzers' tf.function eagerly (same code, no trace per analyzer)."""
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


def _randomize(model, scale=0.6, seed=5):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, scale, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


def _sequences(n=3, steps=STEPS, pre=(0, 2, 0), post=(0, 0, 1), seed=0):
    """Sequences in [-1, 1] with ``pre[i]`` zero frames in front and ``post[i]`` at the end of
    sample ``i`` (masked by ``Masking(0.0)``)."""
    x = np.random.default_rng(seed).uniform(-1, 1, (n, steps, FEATURES)).astype(np.float32)
    for i in range(n):
        x[i, :pre[i]] = 0.0
        x[i, steps - post[i]:] = 0.0
    return x


def _stack(bias=True, steps=STEPS, layers=None):
    """Masking, Bidirectional LSTM (concat), GRU (reset_after=False), Bidirectional GRU
    (sum), SimpleRNN, LSTM, Dense: every kind stacked with sequences. (No go_backwards
    layer returning sequences: Keras passes on its input mask although its output sequence
    is reversed, so even Keras's outputs of padded and unpadded sequences differ.)"""
    keras.utils.set_random_seed(0)
    layers = layers or [
        L.Masking(0.0),
        L.Bidirectional(L.LSTM(4, return_sequences=True, use_bias=bias)),
        L.GRU(4, return_sequences=True, reset_after=False, use_bias=bias),
        L.Bidirectional(L.GRU(3, return_sequences=True, use_bias=bias), merge_mode="sum"),
        L.SimpleRNN(4, return_sequences=True, use_bias=bias),
        L.LSTM(4, use_bias=bias), L.Dense(3, use_bias=bias)]
    inp = keras.Input((steps, FEATURES))
    h = inp
    for layer in layers:
        h = layer(h)
    return keras.Model(inp, h, name="stack"), layers


def _cnn_gru(bias=True, frames=4, size=8):
    """A per-frame CNN (nested Sequential in TimeDistributed), then a GRU."""
    keras.utils.set_random_seed(0)
    cnn = keras.Sequential([
        keras.Input((size, size, 1)), L.Conv2D(4, 3, padding="same", use_bias=bias),
        L.ReLU(), L.MaxPooling2D(), L.Conv2D(4, 3, activation="relu", use_bias=bias),
        L.Flatten(), L.Dense(6, activation="relu", use_bias=bias)], name="cnn")
    inp = keras.Input((frames, size, size, 1))
    h = L.GRU(5, use_bias=bias)(L.TimeDistributed(cnn)(inp))
    return keras.Model(inp, L.Dense(3, use_bias=bias)(h), name="cnn_gru")


def _assert_forward(model, x, atol=1e-5):
    np.testing.assert_allclose(analyzers.build_graph(model).forward(x).numpy(),
                               model(x).numpy(), atol=atol, err_msg=model.name)


# -- forward pass ------------------------------------------------------------------------
def _single(layer, shape, flatten=False):
    inp = keras.Input(shape)
    h = layer(inp)
    if flatten or len(h.shape) > 2:
        h = L.Flatten()(h)
    return _randomize(keras.Model(inp, L.Dense(2)(h), name=layer.name))


FORWARD_CASES = {
    "lstm_sequences": lambda: (L.LSTM(4, return_sequences=True), (5, 3)),
    "lstm_backwards": lambda: (L.LSTM(4, go_backwards=True, return_sequences=True), (5, 3)),
    "lstm_hard_sigmoid_relu": lambda: (L.LSTM(4, activation="relu",
                                              recurrent_activation="hard_sigmoid"), (5, 3)),
    "lstm_linear": lambda: (L.LSTM(4, activation=None), (5, 3)),
    "gru_reset_after": lambda: (L.GRU(4, return_sequences=True), (5, 3)),
    "gru_reset_before": lambda: (L.GRU(4, reset_after=False, go_backwards=True), (5, 3)),
    "gru_unrolled_by_keras": lambda: (L.GRU(4, unroll=True), (5, 3)),
    "simple_rnn": lambda: (L.SimpleRNN(4, activation="relu", return_sequences=True), (5, 3)),
    "rnn_of_lstm_cell": lambda: (L.RNN(L.LSTMCell(4)), (5, 3)),
    "conv_lstm1d": lambda: (L.ConvLSTM1D(3, 3, return_sequences=True), (4, 7, 2)),
    "conv_lstm2d_strided": lambda: (L.ConvLSTM2D(2, 3, strides=2, padding="same"),
                                    (3, 7, 7, 1)),
    "conv_lstm2d_dilated": lambda: (L.ConvLSTM2D(2, 3, dilation_rate=2), (3, 7, 7, 1)),
    "conv_lstm3d": lambda: (L.ConvLSTM3D(2, 2, padding="same"), (3, 3, 4, 4, 1)),
    "bidirectional_ave": lambda: (L.Bidirectional(L.GRU(3, return_sequences=True),
                                                  merge_mode="ave"), (5, 3)),
    "bidirectional_mixed": lambda: (L.Bidirectional(
        L.LSTM(3), backward_layer=L.GRU(3, go_backwards=True)), (5, 3)),
}


@pytest.mark.parametrize("case", list(FORWARD_CASES))
def test_forward_pass_equals_keras(case):
    layer, shape = FORWARD_CASES[case]()
    model = _single(layer, shape)
    x = np.random.default_rng(0).uniform(-1, 1, (2,) + shape).astype(np.float32)
    _assert_forward(model, x)


def test_forward_pass_equals_keras_with_masks():
    model, _ = _stack()
    _randomize(model)
    _assert_forward(model, _sequences())
    zero_out = keras.Sequential([keras.Input((STEPS, FEATURES)), L.Masking(),
                                 L.GRU(3, zero_output_for_mask=True), L.Dense(2)])
    _assert_forward(_randomize(zero_out), _sequences(post=(2, 0, 1)))
    _assert_forward(_randomize(_cnn_gru()),
                    np.random.default_rng(0).uniform(0, 1, (2, 4, 8, 8, 1)).astype(np.float32))


def test_gradient_through_the_engine_graph_equals_keras(eager):
    """The gradient family runs a model the engine can flatten as its graph: for a recurrent
    model, the cell loop of the engine, whose gradient is Keras's."""
    model, _ = _stack()
    _randomize(model)
    x = _sequences()
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        target = tf.reduce_sum(model(xt)[:, 1])
    np.testing.assert_allclose(analyzers.create_analyzer("gradient", model).analyze(x, 1),
                               tape.gradient(target, xt).numpy(), atol=1e-5)


# -- conservation -------------------------------------------------------------------------
def _conservation_inputs(model, x, mask_like=None):
    """Inputs with large logits: 0.9 of the corner the logit's gradient points to (inside
    the box: at a corner, z^B gives a unit whose inputs all sit on their root bound nothing
    to pass on), the padding kept."""
    graph = analyzers.build_graph(model)
    selection = np.argmax(graph.forward(x).numpy(), axis=1)
    x = 0.9 * ascent_inputs(graph.forward, x, selection, -1.0, 1.0)
    if mask_like is not None:  # the padding stays padding
        x = np.where(np.all(mask_like == 0.0, axis=-1, keepdims=True), 0.0, x).astype(np.float32)
    logits = graph.forward(x).numpy()
    return x, selection, logits[np.arange(len(x)), selection]


@pytest.mark.parametrize("which", ["stack", "conv_lstm", "cnn_gru"])
def test_bias_free_models_conserve_relevance(which, eager):
    """R.sum() equals the logit to 1e-4 (plus float32 round-off of sum|R|) under every
    conserving rule: the zero initial state is no input (nothing is absorbed at a sample's
    first step, not even by w^2 / flat, which would give it a share of the weights), masked
    steps pass their state's relevance on, and each pre-activation splits its relevance
    between x_t and h_{t-1} by the layer's rule."""
    if which == "stack":
        model, _ = _stack(bias=False)
        x = _sequences()
    elif which == "conv_lstm":
        keras.utils.set_random_seed(0)
        inp = keras.Input((4, 7, 7, 2))
        h = L.ConvLSTM2D(3, 3, strides=2, return_sequences=True, use_bias=False)(inp)
        h = L.TimeDistributed(L.Flatten())(h)
        h = L.Bidirectional(L.LSTM(3, use_bias=False), merge_mode="ave")(h)
        model = keras.Model(inp, L.Dense(3, use_bias=False)(h), name="conv_lstm")
        x = np.random.default_rng(0).uniform(-1, 1, (2, 4, 7, 7, 2)).astype(np.float32)
    else:
        model = _cnn_gru(bias=False)
        x = np.random.default_rng(0).uniform(-1, 1, (2, 4, 8, 8, 1)).astype(np.float32)
    # the CNN's weights moderate: with features of 20, saturated gates leave states of 1e-13,
    # where the sums' stabiliser (1e-12) absorbs what w^2 / flat send regardless of values
    _randomize(model, scale=0.3 if which == "cnn_gru" else 0.6)
    x, selection, target = _conservation_inputs(model, x, x if which == "stack" else None)
    for name, options in CONSERVING:
        relevance = analyzers.create_analyzer(name, model, **options).analyze(x, selection)
        assert_conserved(relevance, target, rtol=1e-4, err_msg=f"{which} {name} {options}")


def test_deep_taylor_on_signed_states_keeps_at_most_the_logit(eager):
    """z+ (deep_taylor, lrp.z_plus) on tanh states: relevance stays >= 0 and never exceeds
    max(0, logit), but a sum of gated terms or a pre-activation with no positive contribution
    passes nothing on, so part of the logit is lost (unlike on ReLU layers)."""
    model, _ = _stack(bias=False)
    _randomize(model)
    x, selection, target = _conservation_inputs(model, _sequences(), _sequences())
    relevance = analyzers.create_analyzer("deep_taylor", model).analyze(x, selection)
    totals = relevance.reshape(len(x), -1).sum(axis=1)
    assert (relevance >= -1e-7).all()
    assert np.all(totals <= np.maximum(target, 0.0) * (1 + 1e-5) + 1e-6)
    assert np.any(totals < 0.99 * np.maximum(target, 0.0))


def test_a_frame_reaches_the_output_only_through_the_state(eager):
    """The linear rule splits a pre-activation's relevance between x_t and h_{t-1}: with a
    zero recurrent kernel, only the last frame of a SimpleRNN gets relevance; with it, the
    earlier frames get what h_{t-1} received."""
    keras.utils.set_random_seed(0)
    model = _randomize(keras.Sequential([keras.Input((4, 3)), L.SimpleRNN(3, use_bias=False),
                                         L.Dense(2, use_bias=False)]))
    x = np.random.default_rng(0).uniform(-1, 1, (2, 4, 3)).astype(np.float32)
    analyzer = analyzers.create_analyzer("lrp.z", model)
    assert np.abs(analyzer.analyze(x, 0)[:, :3]).sum() > 0
    rnn = model.layers[0]
    rnn.cell.recurrent_kernel.assign(np.zeros(rnn.cell.recurrent_kernel.shape, np.float32))
    relevance = analyzer.analyze(x, 0)
    assert np.all(relevance[:, :3] == 0.0)
    assert_conserved(relevance, model(x).numpy()[:, 0], rtol=1e-5)


def test_biases_absorb_and_nothing_else_does(eager):
    """``lrp.z`` with ``bias=False`` leaves biases out of every denominator, so it conserves
    on an LSTM with biases; a GRU with ``reset_after`` has one more bias-like term, the first
    step's ``r b'_h`` (``U_h h' = 0``), which absorbs its share until that bias is zero."""
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 4, 3)).astype(np.float32)
    for layer, absorbs in ((L.LSTM(4), False), (L.GRU(4), True)):
        model = _randomize(keras.Sequential([keras.Input((4, 3)), layer, L.Dense(2)]))
        analyzer = analyzers.create_analyzer("lrp.z", model, bias=False)
        totals = analyzer.analyze(x, 0).reshape(3, -1).sum(axis=1)
        logits = model(x).numpy()[:, 0]
        assert np.allclose(totals, logits, rtol=1e-4, atol=1e-6) != absorbs, layer.name
        if absorbs:
            bias = layer.cell.bias.numpy()
            bias[1, 8:] = 0.0  # b'_h, the recurrent bias of the candidate
            layer.cell.bias.assign(bias)
            relevance = analyzer.analyze(x, 0)
            assert_conserved(relevance, model(x).numpy()[:, 0], rtol=1e-4)


# -- masks and batches --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lrp.epsilon", "lrp.alpha_2_beta_1", "lrp.flat"])
def test_padded_frames_get_nothing_and_the_rest_equals_the_unpadded_sequence(name, eager):
    """Pre- and post-padded (masked) sequences explain like the unpadded sequence of a model
    with the same layers, through every stacked kind and both Bidirectional merges."""
    model, layers = _stack()
    _randomize(model)
    short, _ = _stack(steps=3, layers=layers)  # the same layer objects: shared weights
    x3 = np.random.default_rng(1).uniform(-1, 1, (2, 3, FEATURES)).astype(np.float32)
    zeros = np.zeros((2, STEPS - 3, FEATURES), np.float32)
    expected = analyzers.create_analyzer(name, short).analyze(x3, 1)
    analyzer = analyzers.create_analyzer(name, model)
    for padded, frames in ((np.concatenate([zeros, x3], 1), slice(3, None)),
                           (np.concatenate([x3, zeros], 1), slice(0, 3))):
        np.testing.assert_allclose(model(padded).numpy(), short(x3).numpy(), atol=1e-5)
        relevance = analyzer.analyze(padded, 1)
        kept = np.zeros(STEPS, bool)
        kept[frames] = True
        assert np.all(relevance[:, ~kept] == 0.0)
        np.testing.assert_allclose(relevance[:, kept], expected, atol=1e-5 * np.abs(
            expected).max())


def test_relevance_of_a_sample_does_not_depend_on_the_batch():
    """Compiled (traced per input signature), masked sequences of different paddings."""
    model, _ = _stack(steps=4, layers=[
        L.Masking(0.0), L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum"),
        L.LSTM(3), L.Dense(3)])
    _randomize(model)
    x = _sequences(n=3, steps=4, pre=(0, 2, 1), post=(1, 0, 0))
    analyzer = analyzers.create_analyzer("lrp.epsilon", model)
    batch = analyzer.analyze(x, 2)
    for i in range(3):
        np.testing.assert_allclose(analyzer.analyze(x[i:i + 1], 2)[0], batch[i], atol=1e-6)
    np.testing.assert_allclose(analyzer.analyze(x, 2, batch_size=2), batch, atol=1e-6)


# -- TimeDistributed around a nested model ---------------------------------------------------
def test_time_distributed_model_explains_like_time_distributed_layers(eager):
    """A per-frame CNN as a nested Sequential inside TimeDistributed gives what the same
    layers each wrapped in TimeDistributed give (the frames folded into the batch, the
    nested model's steps inlined)."""
    model = _randomize(_cnn_gru(bias=True))
    td, gru, head = model.layers[1], model.layers[2], model.layers[3]
    inp = keras.Input(model.input_shape[1:])
    h = inp
    for layer in td.layer.layers:
        h = L.TimeDistributed(layer)(h)
    twin = keras.Model(inp, head(gru(h)))
    x = np.random.default_rng(0).uniform(0, 1, (2, 4, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(twin(x).numpy(), model(x).numpy(), atol=1e-5)
    steps = [s.op.name for s in analyzers.build_graph(model).steps]
    assert steps[0] == f"{td.name}/fold" and f"{td.name}/unfold" in steps
    for name, options in [("lrp.z", {}), ("lrp.epsilon", {}), ("lrp.alpha_2_beta_1", {}),
                          ("deep_taylor.bounded", {"low": 0.0, "high": 1.0})]:
        got = analyzers.create_analyzer(name, model, **options).analyze(x, 1)
        expected = analyzers.create_analyzer(name, twin, **options).analyze(x, 1)
        np.testing.assert_allclose(got, expected, atol=1e-5 * np.abs(expected).max(),
                                   err_msg=name)


def test_time_distributed_functional_model_with_batch_norm(eager):
    keras.utils.set_random_seed(0)
    inner_in = keras.Input((6, 6, 2))
    h = L.Conv2D(3, 3, use_bias=False)(inner_in)
    h = L.BatchNormalization(center=False)(h)
    inner = keras.Model(inner_in, L.Flatten()(L.ReLU()(h)), name="frame_net")
    inp = keras.Input((3, 6, 6, 2))
    model = keras.Model(inp, L.Dense(2, use_bias=False)(
        L.LSTM(3, use_bias=False)(L.TimeDistributed(inner)(inp))))
    _randomize(model)
    bn = inner.layers[2]
    bn.moving_mean.assign(np.zeros(3, np.float32))
    bn.moving_variance.assign(np.abs(bn.moving_variance.numpy()) + 0.5)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 6, 6, 2)).astype(np.float32)
    _assert_forward(model, x)
    relevance = analyzers.create_analyzer("lrp.z", model).analyze(x, 0)
    assert_conserved(relevance, model(x).numpy()[:, 0], rtol=1e-4)


# -- composites --------------------------------------------------------------------------
def test_composites_give_the_cell_parts_their_rules():
    keras.utils.set_random_seed(0)
    inp = keras.Input((3, 5, 5, 1))
    h = L.TimeDistributed(L.Flatten())(L.ConvLSTM2D(2, 3, return_sequences=True)(inp))
    model = keras.Model(inp, L.Dense(2)(L.Bidirectional(L.GRU(3))(h)))
    rules = dict(analyzers.create_analyzer("lrp.sequential_preset_a", model).layer_rules())
    conv = rules[model.layers[1].name]
    assert conv.startswith("RecurrentRule(linear=AlphaBetaRule(alpha=1.0, beta=0.0")
    assert "sum=ZRule(" in conv
    bidir = rules[model.layers[3].name]
    for part in ("forward/linear=EpsilonRule(epsilon=0.1", "forward/recurrent=EpsilonRule(",
                 "backward/linear=EpsilonRule(epsilon=0.1", "backward/sum=ZRule("):
        assert part in bidir
    z_plus = dict(analyzers.create_analyzer("deep_taylor.bounded", model, low=-1.0,
                                            high=1.0).layer_rules())
    assert "linear=BoundedRule(" in z_plus[model.layers[1].name]  # reads the model input
    assert "sum=ZPlusRule()" in z_plus[model.layers[1].name]  # the Add rule of z+
    assert "forward/linear=ZPlusRule()" in z_plus[model.layers[3].name]


# -- refusals ---------------------------------------------------------------------------
def _refused(model, reason):
    with pytest.raises(analyzers.UnsupportedLayerError, match=reason):
        analyzers.create_analyzer("lrp.epsilon", model)


def _seq(*layers, shape=(4, 3)):
    return keras.Sequential([keras.Input(shape), *layers, L.Dense(2)])


@pytest.mark.parametrize("build, reason", [
    (None, "stateful=True"),
    (lambda: _seq(L.GRU(3, recurrent_activation="relu")),
     "recurrent_activation 'relu' \\(gates must be one of: sigmoid, hard_sigmoid\\)"),
    (lambda: _seq(L.SimpleRNN(3, activation="softmax")),
     "activation 'softmax' \\(passed by the identity rule"),
    (lambda: _seq(L.RNN(L.StackedRNNCells([L.LSTMCell(3), L.LSTMCell(3)]))),
     "cell StackedRNNCells"),
    (lambda: _seq(L.Bidirectional(L.LSTM(3), merge_mode="mul")), "merge_mode='mul'"),
    (lambda: _seq(L.LSTM(3), shape=(None, 3)), "a sequence of unknown length"),
    (lambda: _seq(L.ConvLSTM2D(2, 3, data_format="channels_first"), L.Flatten(),
                  shape=(3, 1, 5, 5)), "channels_first"),
    (lambda: _seq(L.Masking(), L.GlobalAveragePooling1D()),
     "uses the mask of Masking 'masking"),
])
def test_unsupported_configurations_are_refused_by_name(build, reason):
    if build is None:  # stateful needs a fixed batch size
        model = keras.Sequential([keras.Input((4, 3), batch_size=2),
                                  L.LSTM(3, stateful=True), L.Dense(2)])
    else:
        model = build()
    _refused(model, reason)


def test_return_state_initial_state_and_merged_masks_are_refused():
    inp = keras.Input((4, 3))
    out, h, c = L.LSTM(3, return_state=True, name="with_state")(inp)
    _refused(keras.Model(inp, L.Dense(2)(out)), "return_state=True")
    h0 = L.Dense(3)(L.Flatten()(inp))
    out = L.GRU(3, name="started")(inp, initial_state=h0)
    _refused(keras.Model(inp, L.Dense(2)(out)), "an initial_state argument")
    a, b = L.Masking()(inp), L.Masking(mask_value=1.0)(inp)
    out = L.LSTM(3)(L.Add(name="joined")([a, b]))
    _refused(keras.Model(inp, L.Dense(2)(out)), "a mask Keras computes in layer 'joined'")
    frames = keras.Input((None, 4, 4, 1))
    cnn = keras.Sequential([keras.Input((4, 4, 1)), L.Flatten()])
    _refused(keras.Model(frames, L.Dense(2)(L.GRU(2)(L.TimeDistributed(cnn)(frames)))),
             "a sequence of unknown length")  # TimeDistributed takes it; the GRU does not
