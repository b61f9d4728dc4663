"""Named analyzers: :func:`create_analyzer` and :func:`list_analyzers`."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from analyzers.analyzer import Analyzer
from analyzers.composites import Composite, layer_map_composite
from analyzers.gradient_based import Gradient, InputTimesGradient, IntegratedGradients, SmoothGrad
from analyzers.relevance import RelevanceAnalyzer
from analyzers.rules import (
    AlphaBetaRule,
    BoundedRule,
    EpsilonRule,
    FlatRule,
    Rule,
    WSquareRule,
    ZPlusRule,
    ZRule,
)


def _input_rule(value: Any) -> Rule | None:
    """``input_layer_rule``: a Rule, ``(low, high)`` (z^B), or a name."""
    if value is None or isinstance(value, Rule):
        return value
    if isinstance(value, tuple) and len(value) == 2:
        return BoundedRule(*value)
    names = {"w_square": WSquareRule, "flat": FlatRule, "z_plus": ZPlusRule, "z": ZRule}
    if isinstance(value, str) and value in names:
        return names[value]()
    raise ValueError(f"input_layer_rule must be a Rule, a (low, high) tuple or one of "
                     f"{sorted(names)}; got {value!r}")


def _lrp(kernel_rule: Rule, name: str, relu_output: bool = False, **fixed: Any
         ) -> Callable[..., Analyzer]:
    def build(model: Any, input_layer_rule: Any = None, max_pooling: str = "winner_take_all",
              canonizers: Any = None) -> Analyzer:
        composite = layer_map_composite(kernel_rule, input_layer_rule=_input_rule(
            input_layer_rule), max_pooling=max_pooling, **fixed)
        return RelevanceAnalyzer(model, composite, relu_output=relu_output,
                                 canonizers=canonizers, name=name)
    return build


def _deep_taylor(model: Any, input_rule: Any = None, max_pooling: str = "winner_take_all",
                 canonizers: Any = None) -> Analyzer:
    composite = layer_map_composite(ZPlusRule(), input_layer_rule=_input_rule(input_rule),
                                    max_pooling=max_pooling)
    return RelevanceAnalyzer(model, composite, relu_output=True, canonizers=canonizers,
                             name="deep_taylor")


def _deep_taylor_bounded(model: Any, low: Any = None, high: Any = None,
                         max_pooling: str = "winner_take_all", canonizers: Any = None
                         ) -> Analyzer:
    if low is None or high is None:
        raise ValueError("deep_taylor.bounded needs the input range: pass low=... and "
                         "high=... (scalars or one value per channel)")
    composite = layer_map_composite(ZPlusRule(), input_layer_rule=BoundedRule(low, high),
                                     max_pooling=max_pooling)
    return RelevanceAnalyzer(model, composite, relu_output=True, canonizers=canonizers,
                             name="deep_taylor.bounded")


def _lrp_epsilon(model: Any, epsilon: float = 1e-7, bias: bool = True, **kw: Any) -> Analyzer:
    return _lrp(EpsilonRule(epsilon, bias=bias), "lrp.epsilon")(model, **kw)


def _lrp_z(model: Any, bias: bool = True, **kw: Any) -> Analyzer:
    return _lrp(ZRule(bias=bias), "lrp.z")(model, **kw)


def _lrp_alpha_beta(model: Any, alpha: float = 1.0, beta: float = 0.0, bias: bool = True,
                    **kw: Any) -> Analyzer:
    return _lrp(AlphaBetaRule(alpha, beta, bias=bias), "lrp.alpha_beta")(model, **kw)


def _preset(conv_rule: Rule, name: str) -> Callable[..., Analyzer]:
    def build(model: Any, epsilon: float = 0.1, **kw: Any) -> Analyzer:
        dense = EpsilonRule(epsilon, bias=True)
        return _lrp(conv_rule, name, dense_rule=dense, conv_rule=conv_rule)(model, **kw)
    return build


def _lrp_custom(model: Any, composite: Composite | None = None, rule: Rule | None = None,
                input_layer_rule: Any = None, max_pooling: str = "winner_take_all",
                relu_output: bool = False, canonizers: Any = None) -> Analyzer:
    if (composite is None) == (rule is None):
        raise ValueError("'lrp' needs exactly one of composite=Composite(...) or "
                         "rule=<Rule for all weight layers>")
    if composite is None:
        composite = layer_map_composite(rule, input_layer_rule=_input_rule(input_layer_rule),
                                        max_pooling=max_pooling)
    return RelevanceAnalyzer(model, composite, relu_output=relu_output,
                             canonizers=canonizers, name="lrp")


_ANALYZERS: dict[str, Callable[..., Analyzer]] = {
    "gradient": Gradient,
    "input_t_gradient": InputTimesGradient,
    "smoothgrad": SmoothGrad,
    "integrated_gradients": IntegratedGradients,
    "deep_taylor": _deep_taylor,
    "deep_taylor.bounded": _deep_taylor_bounded,
    "lrp": _lrp_custom,
    "lrp.z": _lrp_z,
    "lrp.epsilon": _lrp_epsilon,
    "lrp.z_plus": _lrp(ZPlusRule(), "lrp.z_plus"),
    "lrp.w_square": _lrp(WSquareRule(), "lrp.w_square"),
    "lrp.flat": _lrp(FlatRule(), "lrp.flat"),
    "lrp.alpha_beta": _lrp_alpha_beta,
    "lrp.alpha_1_beta_0": _lrp(AlphaBetaRule(1.0, 0.0), "lrp.alpha_1_beta_0"),
    "lrp.alpha_2_beta_1": _lrp(AlphaBetaRule(2.0, 1.0), "lrp.alpha_2_beta_1"),
    "lrp.sequential_preset_a": _preset(AlphaBetaRule(1.0, 0.0), "lrp.sequential_preset_a"),
    "lrp.sequential_preset_b": _preset(AlphaBetaRule(2.0, 1.0), "lrp.sequential_preset_b"),
}


def list_analyzers() -> list[str]:
    """Names accepted by :func:`create_analyzer`."""
    return list(_ANALYZERS)


def create_analyzer(name: str, model: Any, **kwargs: Any) -> Analyzer:
    """Create the analyzer ``name`` for ``model`` (see :func:`list_analyzers`).

    Unsupported layers raise :class:`analyzers.UnsupportedLayerError` here, before any
    computation. Keyword arguments are the analyzer's options (e.g. ``low``/``high`` for
    ``deep_taylor.bounded``, ``epsilon`` for ``lrp.epsilon``).
    """
    if name not in _ANALYZERS:
        close = difflib.get_close_matches(str(name), list(_ANALYZERS), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown analyzer {name!r}.{hint} Known analyzers: "
                         f"{', '.join(_ANALYZERS)}.")
    factory = _ANALYZERS[name]
    try:
        analyzer = factory(model, **kwargs)
    except TypeError as err:
        if "unexpected keyword" in str(err):
            raise ValueError(f"analyzer {name!r} got an unknown option: {err}") from err
        raise
    analyzer.name = name
    return analyzer
