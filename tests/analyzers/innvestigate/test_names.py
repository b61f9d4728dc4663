"""Every iNNvestigate 2.1.2 analyzer name, ``neuron_selection_mode``, ``save`` / ``load``.

The stored iNNvestigate relevance of the names beyond the original seven (``spec.
EXTENDED_ANALYZERS``, on ``spec.EXTENDED_MODELS``) is compared with ours in
``test_innvestigate_crosscheck.py`` (generic agreement, 1e-4 relative) wherever the two
libraries compute the same thing. The names that differ on purpose are checked here against
iNNvestigate's stored numbers through the exact relation between the two (integrated
gradients' end points, deconvnet / guided backprop's start value, z+ "fast" on a signed input).
``smoothgrad`` and ``random`` are stochastic: both libraries are given the same fixed noise
(``spec.make_noise``; ``generate.py`` patches iNNvestigate's noise, ``reference.TableNoise``
ours), so the rest of what they compute is compared exactly.
"""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
from conservation import assert_conserved
from innvestigate_zoo import reference, spec
from innvestigate_zoo.reference import explain
from repo_paths import REPO_ROOT

import analyzers

#: Registry names with no stored iNNvestigate reference, and why.
NOT_STORED = {"lrp": "a rule or composite of your own: iNNvestigate takes rule names, "
                     "ours Rule objects",
              "attnlrp": "iNNvestigate has no attention rules (cross-checked against LXT, "
                         "tests/analyzers/lxt)",
              "cp_lrp": "iNNvestigate has no attention rules (cross-checked against LXT)"}


def _stored_analyzers() -> set[str]:
    return {analyzer for _, analyzer, _ in reference.stored_cases()}


def test_every_registry_name_is_cross_checked():
    stored = _stored_analyzers()
    names = set(analyzers.list_analyzers())
    assert len(names) == 28 + 2  # iNNvestigate's 28, attnlrp, cp_lrp
    assert names - stored == set(NOT_STORED)
    assert stored <= names
    for name in spec.EXTENDED_MODELS:
        data = reference.load(name)
        for analyzer_name in spec.EXTENDED_ANALYZERS:
            assert (f"relevance/{analyzer_name}/max" in data
                    or f"error/{analyzer_name}/max" in data), (name, analyzer_name)


# --------------------------------------------------------------------------- stochastic


@pytest.mark.parametrize("name", ["plain_bias", "smooth_act"])
def test_smoothgrad_with_the_same_noise_is_theirs(name):
    """Same noise: ours equals iNNvestigate (mean of the gradients at x + noise_k, neuron
    chosen on the clean input); and the fixed noise matters (it is not the plain gradient)."""
    theirs = reference.load(name)["relevance/smoothgrad/max"]
    ours = explain(name, "smoothgrad")
    assert reference.relative_difference(ours, theirs) <= reference.RTOL
    assert reference.relative_difference(explain(name, "gradient"), theirs) > 0.1


def test_random_is_the_input_plus_the_noise():
    data = reference.load("plain_bias")
    noise = spec.make_noise("plain_bias")[:, 0]
    np.testing.assert_allclose(data["relevance/random/max"], data["x"] + noise, atol=1e-6)
    np.testing.assert_allclose(explain("plain_bias", "random"), data["x"] + noise, atol=1e-6)
    seeded = [analyzers.create_analyzer("random", reference.model("plain_bias"), stddev=0.5,
                                        seed=3).analyze(data["x"]) for _ in range(2)]
    np.testing.assert_array_equal(seeded[0], seeded[1])
    assert abs(float(np.std(seeded[0] - data["x"])) - 0.5) < 0.05


# --------------------------------------------------------------------------- differences


def _innvestigate_gradient(name, x, index, mode="index"):
    """iNNvestigate's gradient of zoo model ``name`` at ``x``: ours with its max-pooling ties
    (``compat="innvestigate"``; TensorFlow's 3D gradient goes to every input within 1e-5 of a
    window's maximum, which matters at a constant input)."""
    analyzer = reference.create(name, "gradient", neuron_selection_mode=mode,
                                compat="innvestigate")
    return analyzer.analyze(x, **({"neuron_selection": index} if mode == "index" else {}))


# (residual_add is left out: at one point of its path, x0 + 3/8 (x - x0), a max-pooling window
# holds two values 4e-6 apart, which TensorFlow's 3D gradient treats as tied (within 1e-5) and
# ours does not; compat="innvestigate" reproduces it, test_compat_cases.py)
@pytest.mark.parametrize("name", ["plain_bias", "plain_nobias", "smooth_act"])
@pytest.mark.parametrize("selection", ["max", "min"])
def test_integrated_gradients_differs_by_its_end_points(name, selection):
    """iNNvestigate averages the gradients at k/steps for k = 0..steps-1 (left Riemann sum,
    x itself never used); ours for k = 1..steps (right sum, ends at x). Exactly:
    ``theirs = ours + (x - x0) * (grad(x0) - grad(x)) / steps``. At the constant x0 the
    max-pooling windows tie; iNNvestigate's gradient there is TensorFlow's, which gives every
    tied input the full gradient (ours: the first maximum), so grad(x0) is iNNvestigate's
    (:func:`_innvestigate_gradient`)."""
    data = reference.load(name)
    if f"selection/{selection}" not in data:
        pytest.skip(f"{name} has no stored {selection} selection")
    options = spec.ANALYZER_KWARGS["integrated_gradients"]
    steps, x0 = options["steps"], options["reference_inputs"]
    x, index = data["x"], data[f"selection/{selection}"]
    grad_x = reference.ours(name, "gradient").analyze(x, neuron_selection=index)
    grad_x0 = _innvestigate_gradient(name, np.full_like(x, x0), index)
    ours = explain(name, "integrated_gradients", selection)
    expected = ours + (x - x0) * (grad_x0 - grad_x) / steps
    theirs = data[f"relevance/integrated_gradients/{selection}"]
    assert reference.relative_difference(expected, theirs) <= reference.RTOL
    assert reference.relative_difference(ours, theirs) > 10 * reference.RTOL


DECONVNET_CASES = [(m, a) for m in ("plain_bias", "plain_nobias", "residual_add", "dense_probe")
                   for a in ("deconvnet", "guided_backprop")
                   if (m, a) not in (("plain_bias", "deconvnet"), ("plain_nobias", "deconvnet"))]


@pytest.mark.parametrize(("name", "analyzer_name"), DECONVNET_CASES,
                         ids=["/".join(c) for c in DECONVNET_CASES])
def test_deconvnet_and_guided_backprop_start_from_the_logit_there(name, analyzer_name):
    """iNNvestigate starts the backward pass from the logit's value, ours from 1 (as the
    gradient): for a positive logit theirs is exactly ours times the logit.

    (deconvnet on the plain models is left out: its signal is not masked by the forward
    ReLU, so it reaches max-pooling windows of zeros, where TensorFlow's gradient, used by
    iNNvestigate, gives every tied input the full signal; ours gives it to the first maximum.)
    """
    data = reference.load(name)
    checked = 0
    for selection in ("max", "min"):
        if f"relevance/{analyzer_name}/{selection}" not in data:
            continue
        theirs = data[f"relevance/{analyzer_name}/{selection}"]
        ours = explain(name, analyzer_name, selection)
        logit = reference.selected_logits(name, selection)
        for i in np.flatnonzero(logit > 0):
            assert reference.relative_difference(ours[i] * logit[i], theirs[i]) <= \
                reference.RTOL
            checked += 1
    assert checked >= 2


def test_z_plus_fast_on_a_signed_input_in_closed_form():
    """``lrp.z_plus_fast``: iNNvestigate uses ``x w+`` (it assumes x >= 0), so on a signed
    input a negative x gets negative relevance; ours is z+ (``x+ w+ + x- w-``), as
    ``lrp.z_plus`` of both libraries. dense_probe is one Dense layer on a signed input."""
    data = reference.load("dense_probe")
    kernel, bias = data["weights/logits/0"], data["weights/logits/1"]
    x = data["x"].reshape(len(data["x"]), -1)
    ours = explain("dense_probe", "lrp.z_plus_fast").reshape(x.shape)
    theirs = data["relevance/lrp.z_plus_fast/max"].reshape(x.shape)
    for i, j in enumerate(data["selection/max"]):
        w_plus, w_minus = np.maximum(kernel[:, j], 0), np.minimum(kernel[:, j], 0)
        logit = float(x[i] @ kernel[:, j] + bias[j])
        fast = x[i] * w_plus
        z_plus = np.maximum(x[i], 0) * w_plus + np.minimum(x[i], 0) * w_minus
        assert reference.relative_difference(theirs[i], fast / fast.sum() * logit) <= 1e-5
        assert reference.relative_difference(ours[i], z_plus / z_plus.sum() * logit) <= 1e-5
    np.testing.assert_allclose(ours, explain("dense_probe", "lrp.z_plus").reshape(x.shape),
                               atol=1e-6)


def test_deconvnet_and_guided_backprop_follow_other_activations_by_their_derivative():
    """Without a ReLU both are the gradient (a tanh layer is passed by tanh', not skipped);
    with one, guided backprop is the gradient with the backward signal rectified there."""
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(5, activation="tanh")(inputs)
    gated = keras.layers.Dense(4, activation="relu")(hidden)
    model_tanh = keras.Model(inputs, keras.layers.Dense(3)(hidden))
    model_both = keras.Model(inputs, keras.layers.Dense(3)(gated))
    x = np.random.default_rng(1).normal(size=(4, 6)).astype(np.float32)
    gradient = analyzers.create_analyzer("gradient", model_tanh).analyze(x)
    for name in ("deconvnet", "guided_backprop"):
        np.testing.assert_allclose(analyzers.create_analyzer(name, model_tanh).analyze(x),
                                   gradient, atol=1e-6)
    d1, d2, d3 = (layer for layer in model_both.layers if isinstance(layer, keras.layers.Dense))
    a1 = np.tanh(x @ d1.kernel.numpy() + d1.bias.numpy())
    z2 = a1 @ d2.kernel.numpy() + d2.bias.numpy()
    top = np.argmax(np.maximum(z2, 0) @ d3.kernel.numpy() + d3.bias.numpy(), axis=1)
    s = d3.kernel.numpy()[:, top].T                              # d logit / d relu output
    s = np.maximum(s, 0) * (z2 > 0)                              # guided backprop's ReLU
    expected = ((s @ d2.kernel.numpy().T) * (1 - a1 ** 2)) @ d1.kernel.numpy().T
    got = analyzers.create_analyzer("guided_backprop", model_both).analyze(x)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_flat_and_w_square_do_not_conserve_there():
    """On the bias-free plain_nobias (Conv3D+ReLU, MaxPooling3D), iNNvestigate's ``lrp.flat``
    and ``lrp.w_square`` total about 3x the logit; ours conserve (equal to iNNvestigate on
    dense_probe and residual_add, see test_innvestigate_crosscheck.py)."""
    data = reference.load("plain_nobias")
    for selection in ("max", "min"):
        logit = reference.selected_logits("plain_nobias", selection)
        for analyzer_name in ("lrp.flat", "lrp.w_square"):
            theirs = reference.per_sample_sum(data[f"relevance/{analyzer_name}/{selection}"])
            assert np.all(np.abs(theirs / logit) > 2.0), (analyzer_name, theirs / logit)
            ours = explain("plain_nobias", analyzer_name, selection)
            assert_conserved(ours, logit, rtol=1e-4, err_msg=analyzer_name)


# --------------------------------------------------------------------------- any model


def test_gradient_family_runs_where_relevance_rules_refuse():
    """smooth_act has softplus and (non-gate) sigmoid activations: the relevance analyzers
    refuse it by layer name when created; the gradient family explains it (agreeing with
    iNNvestigate, see test_innvestigate_crosscheck.py)."""
    model = reference.model("smooth_act")
    for name in analyzers.list_analyzers():
        if name.startswith(("lrp", "deep_taylor")) or name in ("deconvnet",
                                                                 "guided_backprop"):
            options = dict(spec.ANALYZER_KWARGS.get(name, {}))
            if name == "lrp":
                options = {"rule": analyzers.ZRule()}
            with pytest.raises(analyzers.UnsupportedLayerError,
                               match=r"layer 'conv1' \(Conv3D\)"):
                analyzers.create_analyzer(name, model, **options)
    data = reference.load("smooth_act")
    for name in ("gradient", "input_t_gradient", "integrated_gradients", "smoothgrad"):
        assert f"relevance/{name}/max" in data
        relevance = explain("smooth_act", name)
        assert np.isfinite(relevance).all() and np.abs(relevance).max() > 0


def test_gradient_on_a_model_the_graph_does_not_know():
    """A model with stacked LSTM cells in one RNN (not a layer graph of ours): gradient and
    integrated gradients are computed by calling the model, softmax stripped; LRP refuses it
    by name."""
    inputs = keras.Input((5, 3))
    cells = keras.layers.StackedRNNCells([keras.layers.LSTMCell(4), keras.layers.LSTMCell(4)])
    hidden = keras.layers.RNN(cells, name="lstm")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(hidden)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    logits = keras.Model(inputs, model.get_layer("head").input)(x).numpy() @ \
        model.get_layer("head").kernel.numpy() + model.get_layer("head").bias.numpy()
    import tensorflow as tf

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        z = keras.Model(inputs, model.get_layer("head").input)(xt)
        z = tf.matmul(z, model.get_layer("head").kernel) + model.get_layer("head").bias
        target = tf.reduce_sum(z * tf.one_hot(np.argmax(logits, 1), 3))
    expected = tape.gradient(target, xt).numpy()
    got = analyzers.create_analyzer("gradient", model).analyze(x)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    with pytest.raises(analyzers.UnsupportedLayerError, match=r"layer 'lstm' \(RNN\)"):
        analyzers.create_analyzer("lrp.epsilon", model)


# --------------------------------------------------------------------------- selection modes


def _mode_cases():
    cases = []
    for name in spec.MODE_MODELS:
        for mode in spec.MODES:
            for analyzer_name in spec.MODE_ANALYZERS:
                cases.append((name, mode, analyzer_name))
    return cases


#: (mode, analyzer) -> why ours differs from iNNvestigate there.
MODE_DIFFERENCES = {
    ("max_activation", "guided_backprop"): "start value (test_neuron_selection_mode_of_"
                                           "integrated_gradients_and_guided_backprop)",
    ("all", "guided_backprop"): "iNNvestigate starts each output from its own logit, some "
                                "negative: no exact relation to ours",
    **{(m, "lrp.alpha_1_beta_0"): "alpha-beta's bias (plain_bias has biases)"
       for m in spec.MODES},
    **{(m, "integrated_gradients"): "end points (test_neuron_selection_mode_of_integrated_"
                                    "gradients_and_guided_backprop)" for m in spec.MODES},
}


@pytest.mark.parametrize(("name", "mode", "analyzer_name"), _mode_cases(),
                         ids=["/".join(c) for c in _mode_cases()])
def test_neuron_selection_mode_matches_innvestigate(name, mode, analyzer_name):
    """``max_activation``: each sample's top logit; ``all``: every output at once (the sum of
    the per-output explanations, each started from its own logit for the relevance
    analyzers, from 1 for the gradient family). ``analyze(x)`` takes no selection in either."""
    if (mode, analyzer_name) in MODE_DIFFERENCES:
        pytest.skip(MODE_DIFFERENCES[(mode, analyzer_name)])
    data = reference.load(name)
    theirs = data[f"mode/{mode}/{analyzer_name}"]
    analyzer = reference.create(name, analyzer_name, neuron_selection_mode=mode)
    ours = analyzer.analyze(data["x"])
    assert reference.relative_difference(ours, theirs) <= reference.RTOL


@pytest.mark.parametrize("mode", spec.MODES)
def test_neuron_selection_mode_of_integrated_gradients_and_guided_backprop(mode):
    """The two through their exact relation to iNNvestigate (as for ``"index"`` above):
    integrated gradients' end points in both modes; guided backprop's start value (the
    logit) with ``max_activation``, where each sample's top logit is positive."""
    name = "plain_bias"
    data = reference.load(name)
    x = data["x"]
    options = spec.ANALYZER_KWARGS["integrated_gradients"]
    steps, x0 = options["steps"], options["reference_inputs"]
    ours = reference.create(name, "integrated_gradients", neuron_selection_mode=mode).analyze(x)
    grad_x = reference.create(name, "gradient", neuron_selection_mode=mode).analyze(x)
    grad_x0 = _innvestigate_gradient(name, np.full_like(x, x0), data["selection/max"],
                                     mode="index" if mode == "max_activation" else mode)
    expected = ours + (x - x0) * (grad_x0 - grad_x) / steps
    theirs = data[f"mode/{mode}/integrated_gradients"]
    assert reference.relative_difference(expected, theirs) <= reference.RTOL
    if mode == "max_activation":
        logit = reference.selected_logits(name)
        assert np.all(logit > 0)
        guided = reference.create(name, "guided_backprop",
                                  neuron_selection_mode=mode).analyze(x)
        assert reference.relative_difference(
            guided * logit[:, None, None, None, None],
            data["mode/max_activation/guided_backprop"]) <= reference.RTOL


def test_all_mode_is_the_sum_over_outputs():
    data = reference.load("plain_bias")
    x = data["x"]
    n = spec.output_units("plain_bias")
    for analyzer_name in ("gradient", "lrp.epsilon"):
        per_output = sum(reference.ours("plain_bias", analyzer_name).analyze(
            x, neuron_selection=k) for k in range(n))
        every = reference.create("plain_bias", analyzer_name, neuron_selection_mode="all")
        np.testing.assert_allclose(every.analyze(x), per_output, rtol=1e-4,
                                   atol=1e-5 * np.abs(per_output).max())


def test_neuron_selection_mode_errors():
    model = reference.model("dense_probe")
    x = reference.load("dense_probe")["x"]
    index = analyzers.create_analyzer("gradient", model, neuron_selection_mode="index")
    with pytest.raises(ValueError, match="'index' needs neuron_selection="):
        index.analyze(x)
    kernel = reference.load("dense_probe")["weights/logits/0"]  # one Dense: gradient = W[:, j]
    np.testing.assert_allclose(index.analyze(x, neuron_selection=[1, 3]).reshape(2, -1),
                               kernel[:, [1, 3]].T, atol=1e-7)
    every = analyzers.create_analyzer("lrp.z", model, neuron_selection_mode="all")
    with pytest.raises(ValueError, match="'all' explains the sum of all outputs and takes no "
                                         "neuron_selection"):
        every.analyze(x, neuron_selection=0)
    with pytest.raises(ValueError, match="neuron_selection_mode must be one of "
                                         "'max_activation', 'index', 'all'; got 'top'"):
        analyzers.create_analyzer("lrp.z", model, neuron_selection_mode="top")
    with pytest.raises(ValueError, match="out of range: the model has 5 outputs"):
        index.analyze(x, neuron_selection=5)


# --------------------------------------------------------------------------- save / load

SAVE_CASES = [
    ("gradient", {"postprocess": "abs"}, "max_activation"),
    ("smoothgrad", {"augment_by_n": 3, "noise_scale": 0.3, "seed": 7}, "max_activation"),
    ("integrated_gradients", {"steps": 5, "reference_inputs": np.full((6, 12, 12, 3), 0.1,
                                                                     np.float32)}, "all"),
    ("deep_taylor.bounded", {"low": np.array([-1.0, -1.0, -1.0]), "high": (1.0, 1.0, 1.0)},
     "index"),
    ("lrp.epsilon", {"epsilon": 0.01, "bias": False}, "max_activation"),
    ("lrp.sequential_preset_b_flat_until_idx", {"until_layer_idx": 3}, "index"),
    ("lrp.alpha_2_beta_1_IB", {}, "all"),
]


@pytest.mark.parametrize(("analyzer_name", "options", "mode"), SAVE_CASES,
                         ids=[c[0] for c in SAVE_CASES])
def test_save_load_round_trip(analyzer_name, options, mode, tmp_path):
    """``save``/``load`` and ``save_npz``/``load_npz`` (model rebuilt from the file, or the
    given one) give an analyzer with the same settings and the same relevance."""
    model = reference.model("plain_bias")
    x = reference.load("plain_bias")["x"]
    selection = {"neuron_selection": np.array([1, 4])} if mode == "index" else {}
    analyzer = analyzers.create_analyzer(analyzer_name, model, neuron_selection_mode=mode,
                                         **options)
    expected = analyzer.analyze(x, **selection)

    class_name, state = analyzer.save()
    assert class_name == analyzer_name
    loaded = analyzers.Analyzer.load(class_name, state)
    assert (loaded.name, loaded.neuron_selection_mode) == (analyzer_name, mode)
    np.testing.assert_allclose(loaded.analyze(x, **selection), expected, atol=1e-6)

    path = tmp_path / "analyzer.npz"
    analyzer.save_npz(path)
    for target in (None, model):
        rebuilt = analyzers.Analyzer.load_npz(path, model=target)
        assert rebuilt.neuron_selection_mode == mode
        assert rebuilt.model is not model if target is None else rebuilt.model is model
        np.testing.assert_allclose(rebuilt.analyze(x, **selection), expected, atol=1e-5)


def test_save_errors(tmp_path):
    model = reference.model("plain_bias")
    custom = analyzers.create_analyzer("lrp", model, rule=analyzers.EpsilonRule(0.1))
    custom.save()  # in memory: any option
    with pytest.raises(ValueError, match="is an object \\(EpsilonRule\\) and cannot be written "
                                         "to a file; use save\\(\\)"):
        custom.save_npz(tmp_path / "custom.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not a file written by Analyzer.save_npz"):
        analyzers.Analyzer.load_npz(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="state must be the dict returned by Analyzer.save"):
        analyzers.Analyzer.load("gradient", {"model": model})


# --------------------------------------------------------------------------- migration page

#: The manual's page for users coming from iNNvestigate.
MIGRATION_DOC = REPO_ROOT / "docs" / "migrating-from-innvestigate.md"


def _migration_section() -> str:
    page = MIGRATION_DOC.read_text(encoding="utf-8")
    start = page.index("## Switching from iNNvestigate")
    end = page.find("\n## ", start + 1)
    return page[start:end if end > 0 else None]


def test_migration_table_lists_exactly_the_registry():
    """The migration page's iNNvestigate -> ours table has one row per registry name, in order."""
    section = _migration_section()
    rows = re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)
    assert rows == analyzers.list_analyzers()


def test_migration_table_says_what_compat_gives():
    """The table's last column is ``compat="innvestigate"``: "reproduces" for every
    deterministic name (test_compat_cases.py checks it), its noise for the stochastic ones."""
    section = _migration_section()
    header = next(line for line in section.splitlines() if line.startswith("| iNNvestigate"))
    assert header.rstrip(" |").endswith('`compat="innvestigate"`')
    rows = {m.group(1): m.group(2) for m in re.finditer(
        r"^\| `([^`]+)` \|.*\| ([^|]+) \|$", section, flags=re.MULTILINE)}
    assert set(rows) == set(analyzers.list_analyzers())
    for name in spec.DETERMINISTIC_ANALYZERS:
        if name == "input":
            assert rows[name] == "same"
        else:
            assert rows[name].startswith("reproduces"), (name, rows[name])


def test_migration_example_runs(tmp_path, monkeypatch):
    """The "after" half of the migration page's example runs as written."""
    block = re.search(r"```python\n(.*?)```", _migration_section(), flags=re.DOTALL).group(1)
    after = block[block.index("# after"):]
    monkeypatch.chdir(tmp_path)
    data = reference.load("dense_probe")
    namespace = {"model": reference.model("dense_probe"), "x": data["x"]}
    exec(compile(after, MIGRATION_DOC.name, "exec"), namespace)  # noqa: S102 - our own docs
    assert namespace["analyzer"].neuron_selection_mode == "index"
    assert (tmp_path / "epsilon.npz").exists()
    np.testing.assert_allclose(namespace["R"], analyzers.create_analyzer(
        "lrp.epsilon", namespace["model"], epsilon=0.1).analyze(data["x"], neuron_selection=3),
        atol=1e-6)
