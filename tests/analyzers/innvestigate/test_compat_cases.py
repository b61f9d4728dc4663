"""``compat="innvestigate"`` gives iNNvestigate 2.1.2's own numbers: the 49 name/mode cases.

The cases are every deterministic iNNvestigate name (``spec.DETERMINISTIC_ANALYZERS``: not
``random`` and ``smoothgrad``, which draw noise and are compared given the same noise in
``test_names.py``; not ``lrp``, which takes rules of your own) in each distinct
``neuron_selection_mode``: one output per sample (``"index"``, stored for the top logit and,
on the plain and compat models, the lowest; iNNvestigate's ``"max_activation"`` is the same
computation at the top logit and its maps are checked in the same case) and every output at
once (``"all"``); ``input`` ignores the selection: one case. 1 + 24 x 2 = 49.

Each case compares ours, created with ``compat="innvestigate"``, with every map stored for it
on every zoo model (``references/*.npz``, made by ``generate.py`` in the ``innvestigate`` tox
env): the four ``spec.COMPAT_MODELS`` (separate ``ReLU`` / ``Activation("relu")`` layers,
signed inputs, max-pooling windows with tied maxima, 2D and 3D, BatchNormalization, a residual
sum of signed tensors) hold every case; the other models the names stored for them. Agreement
is ``reference.RTOL`` (1e-4) of the map's largest value, as in the default cross-check.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest
from innvestigate_zoo import reference, spec

import analyzers
from analyzers.composites import Composite, innvestigate_lrp_composite, layer_class
from analyzers.rules import IdentityRule

#: The 49 cases.
CASES: list[tuple[str, str]] = [("input", "index")] + [
    (a, m) for a in spec.DETERMINISTIC_ANALYZERS if a != "input" for m in ("index", "all")]

_RELEVANCE = tuple(a for a in spec.DETERMINISTIC_ANALYZERS
                   if a.startswith(("lrp", "deep_taylor")) or a in ("deconvnet",
                                                                    "guided_backprop"))

#: (model, analyzer) where iNNvestigate gives numbers and ours does not, and why.
NOT_REPRODUCED: dict[tuple[str, str], str] = {
    ("smooth_act", a): "softplus and (non-gate) sigmoid activations: ours refuses them for "
    "the relevance analyzers in every mode (iNNvestigate's LRP passes any activation of a "
    "kernel layer unchanged)" for a in _RELEVANCE}

#: Separate ``keras.layers.ReLU`` layers in guided backprop: checked on their own (below).
RELU_LAYER_MODELS = ("relu_layers_3d",)


def _stored(analyzer_name: str, mode: str) -> list[tuple[str, str, str | None]]:
    """``(model, key, selection)`` of every map stored for the case: in ``"index"`` mode the
    top and lowest logit, and iNNvestigate's ``"max_activation"`` map, which is its map at
    the top logit (compared with ours at the stored top logit: one trace less)."""
    out = []
    for name in spec.REFERENCE_MODELS:
        data = reference.load(name)
        if mode == "index":
            keys = [(f"relevance/{analyzer_name}/{sel}", sel) for sel in ("max", "min")]
            keys.append((f"mode/max_activation/{analyzer_name}", "max"))
        else:
            keys = [(f"mode/{mode}/{analyzer_name}", None)]
        out += [(name, key, sel) for key, sel in keys if key in data]
    return out


@functools.cache
def _compat(name: str, analyzer_name: str, mode: str):
    """Ours with ``compat="innvestigate"`` (cached: one trace per model, name and mode)."""
    return reference.create(name, analyzer_name, neuron_selection_mode=mode,
                            compat="innvestigate")


def _deviation(name: str, key: str, analyzer_name: str, selection: str | None) -> float:
    """``relative_difference`` of ours with compat and the stored map ``key``."""
    data = reference.load(name)
    mode = "index" if selection is not None else key.split("/")[1]
    analyzer = _compat(name, analyzer_name, mode)
    extra = {} if selection is None else {"neuron_selection": data[f"selection/{selection}"]}
    return reference.relative_difference(analyzer.analyze(data["x"], **extra), data[key])


@pytest.mark.parametrize(("analyzer_name", "mode"), CASES, ids=["/".join(c) for c in CASES])
def test_compat_gives_innvestigates_numbers(analyzer_name, mode):
    checked, worst = [], 0.0
    for name, key, selection in _stored(analyzer_name, mode):
        if (name, analyzer_name) in NOT_REPRODUCED or (
                analyzer_name == "guided_backprop" and name in RELU_LAYER_MODELS):
            continue
        deviation = _deviation(name, key, analyzer_name, selection)
        assert deviation <= reference.RTOL, f"{name} {key}: relative difference {deviation:.2e}"
        checked.append(name)
        worst = max(worst, deviation)
    # every case is checked on at least one compat model and on a second model
    assert set(checked) & set(spec.COMPAT_MODELS), (analyzer_name, mode, checked)
    assert len(checked) >= 2, (analyzer_name, mode, checked)


def test_there_are_49_cases_and_each_is_stored_for_every_compat_model():
    assert len(CASES) == len(set(CASES)) == 49
    assert {a for a, _ in CASES} == set(spec.DETERMINISTIC_ANALYZERS)
    for name in spec.COMPAT_MODELS:
        data = reference.load(name)
        for analyzer_name, mode in CASES:
            key = f"relevance/{analyzer_name}/max" if mode == "index" else \
                f"mode/{mode}/{analyzer_name}"
            error = key.replace("relevance/", "error/") if mode == "index" else f"error/{key}"
            assert key in data or error in data, (name, key)


@functools.cache
def _relu_layers_are_rectified() -> bool:
    """Whether our guided backprop rectifies at a separate ``keras.layers.ReLU`` layer."""
    inputs = keras.Input((3,))
    hidden = keras.layers.ReLU()(keras.layers.Dense(4)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    model.set_weights([np.array([[1.0, -1.0, 2.0, 0.5]] * 3, np.float32), np.zeros(4, np.float32),
                       np.array([[1.0, -2.0], [-3.0, 1.0], [-1.0, 1.0], [2.0, 1.0]], np.float32),
                       np.zeros(2, np.float32)])
    x = np.ones((1, 3), np.float32)
    guided = analyzers.create_analyzer("guided_backprop", model).analyze(x, neuron_selection=0)
    gradient = analyzers.create_analyzer("gradient", model).analyze(x, neuron_selection=0)
    return not np.allclose(guided, gradient)


@pytest.mark.parametrize("mode", ["index", "all"])
def test_compat_guided_backprop_with_relu_layers(mode):
    """Guided backprop on the model with separate ``keras.layers.ReLU`` layers."""
    if not _relu_layers_are_rectified():
        pytest.skip("guided backprop passes a separate keras.layers.ReLU layer by its plain "
                    "gradient until the fix of separate ReLU layers in deconvnet / guided "
                    "backprop (ops/factory.py _check_relu, analyzers/gradients.py) is merged")
    for name in RELU_LAYER_MODELS:
        for _, key, selection in (s for s in _stored("guided_backprop", mode) if s[0] == name):
            assert _deviation(name, key, "guided_backprop", selection) <= reference.RTOL, key


def test_not_reproduced_pairs_are_refused_by_ours():
    """What compat does not reproduce is what ours refuses in every mode, by layer name."""
    for name, analyzer_name in NOT_REPRODUCED:
        assert f"relevance/{analyzer_name}/max" in reference.load(name) or \
            f"error/{analyzer_name}/max" in reference.load(name)
        with pytest.raises(analyzers.UnsupportedLayerError, match="layer 'conv1'"):
            reference.create(name, analyzer_name, compat="innvestigate")


def test_innvestigate_refuses_what_the_cases_skip():
    """iNNvestigate's deconvnet cannot take a separate ReLU layer (it rebuilds the layer with
    an ``activation`` argument), so no deconvnet map is stored for those models."""
    data = reference.load("relu_layers_3d")
    assert "TypeError" in str(data["error/deconvnet/max"])
    assert "relevance/guided_backprop/max" in data


@pytest.mark.parametrize("analyzer_name", ["lrp.flat", "lrp.w_square"])
def test_why_flat_and_w_square_differ(analyzer_name):
    """Both rules spread relevance over every input of a kernel, zeros after a ReLU included,
    so it reaches max-pooling windows of zeros, where TensorFlow's 3D gradient (iNNvestigate's
    max pooling) copies it to every tied input: 3.0-3.5x the logit come back on the plain
    models (ours: first maximum, 1x). And iNNvestigate's LRP passes a ``keras.layers.ReLU``
    layer by its gradient, which drops the relevance at its zeros (ours: unchanged). The
    rule itself is the same: with both conventions, ours is theirs (relative L2 of 1e-7);
    with one of them alone it is not (relative L2 0.5-2.7)."""
    rule = {"lrp.flat": analyzers.FlatRule(), "lrp.w_square": analyzers.WSquareRule()}[
        analyzer_name]
    composite = innvestigate_lrp_composite(rule)
    identity_at_relu_layers = Composite(
        [(layer_class(keras.layers.ReLU), IdentityRule())] + composite.rules)

    def l2(name, **options):
        data = reference.load(name)
        relevance = analyzers.create_analyzer("lrp", reference.model(name), **options).analyze(
            data["x"], neuron_selection=data["selection/max"])
        theirs = data[f"relevance/{analyzer_name}/max"]
        return float(np.linalg.norm(relevance - theirs) / np.linalg.norm(theirs))

    for name in ("plain_nobias", "relu_layers_3d"):
        assert l2(name, composite=composite, compat="innvestigate") < 1e-5
        assert l2(name, composite=composite) > 0.4  # our tie rule (the first maximum)
    assert l2("relu_layers_3d", composite=identity_at_relu_layers, compat="innvestigate") > 1
    theirs = reference.per_sample_sum(reference.load("plain_nobias")[
        f"relevance/{analyzer_name}/max"])
    assert np.all(theirs / reference.selected_logits("plain_nobias") > 3.0)
