"""The registry of named analyzers: registration where analyzers are defined, settings
given at construction, loading through the registry."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

import analyzers  # noqa: E402
from analyzers import registry  # noqa: E402
from analyzers.gradients import Gradient  # noqa: E402
from analyzers.settings import Settings  # noqa: E402

L = keras.layers


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    inp = keras.Input((6,))
    out = L.Dense(3)(L.Dense(4, activation="relu")(inp))
    return keras.Model(inp, out, name="tiny")


def test_every_name_is_registered_by_its_defining_module():
    names = analyzers.list_analyzers()
    assert names[:9] == ["input", "random", "gradient", "gradient.baseline",
                         "input_t_gradient", "deconvnet", "guided_backprop",
                         "integrated_gradients", "smoothgrad"]
    assert all(n.startswith(("deep_taylor", "lrp")) for n in names[9:-2])
    assert names[-2:] == ["attnlrp", "cp_lrp"]
    modules = {registry._ANALYZERS[n].__module__ for n in names}
    assert modules == {"analyzers.gradients", "analyzers.lrp"}


@pytest.mark.parametrize("name", ["gradient", "smoothgrad", "guided_backprop", "lrp.epsilon",
                                  "lrp.sequential_preset_b_flat_until_idx"])
def test_an_analyzer_gets_its_settings_when_built(model, name, monkeypatch):
    options = {"lrp.epsilon": {"epsilon": 0.01}, "smoothgrad": {"seed": 1}}.get(name, {})
    seen = []
    init = analyzers.Analyzer.__init__

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("settings"))
        init(self, *args, **kwargs)

    monkeypatch.setattr(analyzers.Analyzer, "__init__", spy)
    analyzer = analyzers.create_analyzer(name, model, neuron_selection_mode="all", **options)
    expected = Settings(name, options, "all")
    assert seen and all(s == expected for s in seen)
    assert analyzer.settings == expected
    assert (analyzer.name, analyzer.neuron_selection_mode) == (name, "all")
    assert analyzer.save()[0] == name


def test_an_analyzer_built_directly_has_no_settings(model):
    analyzer = Gradient(model)
    assert (analyzer.name, analyzer.neuron_selection_mode, analyzer.settings) == \
        ("gradient", "max_activation", None)
    with pytest.raises(ValueError, match="was not made by analyzers.create_analyzer"):
        analyzer.save()


def test_register_refuses_a_second_builder_or_one_without_settings(monkeypatch):
    monkeypatch.setattr(registry, "_ANALYZERS", dict(registry._ANALYZERS))
    with pytest.raises(ValueError, match="'gradient' is registered twice"):
        registry.register("gradient")(Gradient)

    def no_settings(model):
        return None

    with pytest.raises(TypeError, match="takes no 'settings' argument"):
        registry.register("mine")(no_settings)
    assert "mine" not in registry.list_analyzers()


def test_settings_are_no_option(model):
    assert all("settings" not in analyzers.analyzer_options(n)
               for n in analyzers.list_analyzers())
    with pytest.raises(ValueError, match="has no option 'settings'"):
        analyzers.create_analyzer("gradient", model, settings=Settings("gradient"))
