"""The generated model zoo (issue 22): Hypothesis draws Keras models (Sequential and
functional, 1D/2D/3D) from the layer makers of ``tests/helpers/model_zoo.py`` and checks,
for analyzer names on each:

* the same relevance per sample whatever the batch size and whatever batch came first in the
  same analyzer object (1e-5 of the largest value);
* conservation (1e-4, ``conservation.assert_conserved``) where the rule conserves on that
  model (:data:`CONSERVES`);
* the matrix-form reference (``zoo_reference``) on Sequential chains of single layers;
* the gradient family against the tape gradient of the model without its softmax;
* deconvnet / guided backprop with separate ReLU layers against the same model with fused
  ReLUs;
* a clear refusal where a layer maker says an analyzer refuses it.

Budget: the default run (fixed seed, ``derandomize=True``) draws :data:`EXAMPLES` models
and checks :data:`NAMES_PER_EXAMPLE` analyzer names on each (drawn too), plus every
analyzer name on one of two fixed models; about a minute and a half of CPU time. ``KVLRP_ZOO=long``
(``tox -e zoo-long``) checks every name on each of many fresh random models
(``KVLRP_ZOO_EXAMPLES=N``: how many).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import model_zoo as zoo  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import zoo_reference  # noqa: E402
from conservation import assert_conserved  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import analyzers  # noqa: E402

LONG = os.environ.get("KVLRP_ZOO", "") == "long"
#: Models drawn, and analyzer names checked on each (long: every name).
EXAMPLES = int(os.environ.get("KVLRP_ZOO_EXAMPLES", 60 if LONG else 8))
NAMES_PER_EXAMPLE = None if LONG else 3
#: Each example builds and explains a model: report the failing one, do not shrink.
ZOO_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG,
                        phases=(Phase.explicit, Phase.reuse, Phase.generate),
                        suppress_health_check=list(HealthCheck), print_blob=True)

#: Options the checks give an analyzer (the rest: its defaults).
OPTIONS = {
    "random": {"stddev": 0.0},
    "deep_taylor.bounded": {"low": zoo.LOW, "high": zoo.HIGH},
    "lrp": {"rule": analyzers.ZRule()},
    "lrp.epsilon": {"epsilon": 1e-9},
    "integrated_gradients": {"steps": 2},
    "smoothgrad": {"augment_by_n": 2, "noise_scale": 0.0},
}


def _bias_free(facts):
    return "bias" not in facts


def _z_plus_like(facts):  # no activating contribution is possible only at signed neurons
    return "bias" not in facts and "signed" not in facts


def _no_proportional(facts):  # w^2 / flat give relevance to neurons that did not fire
    return "bias" not in facts and "proportional" not in facts


#: Analyzer name -> on which models (facts) it conserves relevance to 1e-4.
CONSERVES = {
    "lrp": _bias_free, "lrp.z": _bias_free, "lrp.epsilon": _bias_free,
    "lrp.alpha_2_beta_1": _bias_free, "lrp.alpha_2_beta_1_IB": _bias_free,
    "lrp.z_plus": _z_plus_like, "lrp.z_plus_fast": _z_plus_like,
    "lrp.alpha_beta": _z_plus_like, "lrp.alpha_1_beta_0": _z_plus_like,
    "lrp.alpha_1_beta_0_IB": _z_plus_like, "deep_taylor": _z_plus_like,
    "deep_taylor.bounded": _z_plus_like,
    "lrp.w_square": _no_proportional, "lrp.flat": _no_proportional,
}
#: The gradient family (and the baselines) against the tape gradient ``g`` at ``x``:
#: ``(x, g, g_half) -> expected``, ``g_half`` the gradient at ``x / 2``.
TAPE = {
    "gradient": lambda x, g, g_half: g,
    "gradient.baseline": lambda x, g, g_half: g,
    "input_t_gradient": lambda x, g, g_half: x * g,
    "smoothgrad": lambda x, g, g_half: g,
    "integrated_gradients": lambda x, g, g_half: x * (g + g_half) / 2,
    "input": lambda x, g, g_half: x,
    "random": lambda x, g, g_half: x,
}
ALL_NAMES = analyzers.list_analyzers()
BATCH = 4


def _close(got, expected, atol, what):
    scale = max(1e-6, float(np.abs(expected).max()))
    np.testing.assert_allclose(got / scale, expected / scale, atol=atol, err_msg=what)


def _tape_gradient(logits_model, x, selection):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = logits_model(x, training=False)
        chosen = tf.reduce_sum(logits * tf.one_hot(selection, logits.shape[-1]))
    return tape.gradient(chosen, x).numpy()


class _Model:
    """A built zoo model with what the checks compare against, computed once."""

    def __init__(self, spec):
        self.built = zoo.build(spec)
        self.model = self.built.model
        self.logits_model = zoo.build(spec, logits=True).model
        self.x = zoo.inputs(self.built, BATCH, seed=spec.seed)
        self.logits = self.logits_model(self.x, training=False).numpy()
        self.selection = np.argmax(self.logits, axis=1)
        self._gradients = None

    @property
    def gradients(self):
        if self._gradients is None:
            self._gradients = (_tape_gradient(self.logits_model, self.x, self.selection),
                               _tape_gradient(self.logits_model, self.x / 2, self.selection))
        return self._gradients

    def __repr__(self):
        return f"zoo model {self.built.spec} (facts: {sorted(self.built.facts)})"


def _check(zm: _Model, name: str, first: int) -> None:
    """Every check of analyzer ``name`` on zoo model ``zm``; ``first``: the batch size of
    the analyzer's first call."""
    what = f"{name} on {zm!r}"
    if name in zm.built.refused_by:
        with pytest.raises(analyzers.UnsupportedLayerError) as info:
            analyzers.create_analyzer(name, zm.model, **OPTIONS.get(name, {}))
        assert len(str(info.value)) < 300 and "gradient" in str(info.value), what
        return
    analyzer = analyzers.create_analyzer(name, zm.model, **OPTIONS.get(name, {}))
    x = zm.x
    early = analyzer.analyze(x[:first])        # traced for this batch size
    relevance = analyzer.analyze(x)            # another batch size: traced again
    late = analyzer.analyze(x[-1:])
    assert relevance.shape == x.shape, what
    _close(early, relevance[:first], 1e-5, f"first batch of {first}: {what}")
    _close(late, relevance[-1:], 1e-5, f"batch of 1 after {BATCH}: {what}")
    if name in CONSERVES and CONSERVES[name](zm.built.facts):
        target = zm.logits[np.arange(len(x)), zm.selection]
        if name in zoo_reference.RELU_OUTPUT:
            target = np.maximum(target, 0.0)
        assert_conserved(relevance, target, rtol=1e-4, err_msg=what)
    if "chain" in zm.built.facts and zoo_reference.rules_for(name, zoo.LOW, zoo.HIGH):
        expected = zoo_reference.chain_relevance(zm.model, name, x, zm.selection, zoo.LOW,
                                                 zoo.HIGH)
        _close(relevance, expected, 1e-4, f"matrix form: {what}")
    if name in TAPE:
        g, g_half = zm.gradients
        _close(relevance, TAPE[name](x, g, g_half), 1e-5, f"tape gradient: {what}")
    if name in ("deconvnet", "guided_backprop") and "separate_relu" in zm.built.facts:
        twin = zoo.build(zm.built.spec.with_activations(zoo.FUSED_TWIN)).model
        twin.set_weights(zm.model.get_weights())
        expected = analyzers.create_analyzer(name, twin).analyze(x)
        _close(relevance, expected, 1e-5, f"fused-ReLU twin: {what}")


@ZOO_SETTINGS
@given(spec=zoo.specs(), data=st.data())
def test_zoo(spec, data):
    zm = _Model(spec)
    names = ALL_NAMES if NAMES_PER_EXAMPLE is None else data.draw(
        st.lists(st.sampled_from(ALL_NAMES), min_size=NAMES_PER_EXAMPLE,
                 max_size=NAMES_PER_EXAMPLE, unique=True), label="analyzers")
    first = data.draw(st.sampled_from([1, 2, 3]), label="first batch size")
    for name in names:
        _check(zm, name, first)


#: Two fixed models with most layer kinds; the default run checks every analyzer name on one
#: of them (alternating).
FIXED = {
    "chain_2d": zoo.Spec(rank=2, style="sequential", bias=False, blocks=(
        zoo.Block("conv", "relu_layer", norm="before", pool="max", dropout="spatial"),
        zoo.Block("td_layers", "activation_relu", norm="after", pool="max_overlapping"),
        zoo.Block("conv", "fused_relu", pool="avg")),
        reducer="flatten", hidden="relu_layer", end="softmax_layer", seed=1),
    "graph_3d": zoo.Spec(rank=3, style="functional", bias=True, blocks=(
        zoo.Block("td_model", "relu_layer", norm="before", pool="max", nested="functional"),
        zoo.Block("residual", "leaky_relu", norm="after"),
        zoo.Block("concat", "fused_relu", pool="max", dropout="dropout")),
        reducer="global_avg", hidden="none", end="dense_softmax", seed=2),
}
_FIXED_MODELS: dict[str, _Model] = {}


@pytest.mark.parametrize("name", ALL_NAMES)
def test_zoo_every_analyzer_on_a_fixed_model(name):
    key = list(FIXED)[ALL_NAMES.index(name) % len(FIXED)]
    if key not in _FIXED_MODELS:
        _FIXED_MODELS[key] = _Model(FIXED[key])
    _check(_FIXED_MODELS[key], name, first=1 + ALL_NAMES.index(name) % 3)


def test_zoo_table_covers_the_layer_kinds_of_the_issue():
    """The zoo draws every kind issue 22 lists (a new kind: add a maker to the tables)."""
    assert {"fused_relu", "relu_layer", "activation_relu", "leaky_relu", "elu"} <= \
        set(zoo.ACTIVATIONS)
    assert {"dropout", "spatial"} <= set(zoo.DROPOUTS)
    assert {"max", "avg"} <= set(zoo.POOLS)
    assert {"flatten", "reshape", "global_max", "global_avg"} <= set(zoo.REDUCERS)
    assert {"conv", "td_layers", "td_model", "residual", "add", "concat"} <= set(zoo.BLOCKS)
    assert {"dense_softmax", "activation_softmax", "softmax_layer"} <= set(zoo.ENDS)
    assert keras.layers.Softmax in [type(layer) for layer in
                                    zoo.build(FIXED["chain_2d"]).model.layers]
