"""Named analyzers: :func:`create_analyzer` and :func:`list_analyzers`.

Every analyzer name of iNNvestigate 2.1.2 is here, with its keyword arguments, plus
``neuron_selection_mode`` (``"max_activation"``, ``"index"``, ``"all"``) for all of them.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable
from typing import Any

from analyzers.analyzer import NEURON_SELECTION_MODES, Analyzer
from analyzers.composites import Composite, is_kernel_layer, layer_map_composite, layer_name
from analyzers.gradients import (
    BaselineGradient,
    Deconvnet,
    Gradient,
    GuidedBackprop,
    InputAnalyzer,
    InputTimesGradient,
    IntegratedGradients,
    RandomAnalyzer,
    SmoothGrad,
)
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
                                    add_rule=ZPlusRule(), max_pooling=max_pooling)
    return RelevanceAnalyzer(model, composite, relu_output=True, canonizers=canonizers,
                             name="deep_taylor")


def _deep_taylor_bounded(model: Any, low: Any = None, high: Any = None,
                         max_pooling: str = "winner_take_all", canonizers: Any = None
                         ) -> Analyzer:
    if low is None or high is None:
        raise ValueError("deep_taylor.bounded needs the input range: pass low=... and "
                         "high=... (scalars or one value per channel)")
    composite = layer_map_composite(ZPlusRule(), input_layer_rule=BoundedRule(low, high),
                                    add_rule=ZPlusRule(), max_pooling=max_pooling)
    return RelevanceAnalyzer(model, composite, relu_output=True, canonizers=canonizers,
                             name="deep_taylor.bounded")


def _lrp_epsilon(model: Any, epsilon: float = 1e-7, bias: bool = True, **kw: Any) -> Analyzer:
    return _lrp(EpsilonRule(epsilon, bias=bias), "lrp.epsilon")(model, **kw)


def _lrp_z(model: Any, bias: bool = True, **kw: Any) -> Analyzer:
    return _lrp(ZRule(bias=bias), "lrp.z")(model, **kw)


def _lrp_alpha_beta(model: Any, alpha: float = 1.0, beta: float = 0.0, bias: bool = True,
                    **kw: Any) -> Analyzer:
    return _lrp(AlphaBetaRule(alpha, beta, bias=bias), "lrp.alpha_beta")(model, **kw)


def _alpha_beta_fixed(alpha: float, beta: float, name: str, bias: bool = True
                      ) -> Callable[..., Analyzer]:
    """``lrp.alpha_A_beta_B`` (``bias=True``) and ``..._IB`` (``bias=False``); both also take
    ``bias=`` (iNNvestigate's fixed classes do not)."""
    def lrp_alpha_beta_fixed(model: Any, bias: bool = bias, input_layer_rule: Any = None,
                             max_pooling: str = "winner_take_all",
                             canonizers: Any = None) -> Analyzer:
        return _lrp(AlphaBetaRule(alpha, beta, bias=bias), name)(
            model, input_layer_rule=input_layer_rule, max_pooling=max_pooling,
            canonizers=canonizers)
    return lrp_alpha_beta_fixed


def _preset(conv_rule: Rule, name: str, flat_input: bool = False) -> Callable[..., Analyzer]:
    """iNNvestigate's sequential presets: epsilon (bias kept) for Dense, ``conv_rule`` for
    convolutions; the ``_flat`` forms use the flat rule on the input layer."""
    def lrp_sequential_preset(model: Any, epsilon: float = 0.1, input_layer_rule: Any = None,
                              max_pooling: str = "winner_take_all", canonizers: Any = None
                              ) -> Analyzer:
        if flat_input:
            if input_layer_rule not in (None, "flat", "Flat"):
                raise ValueError(f"{name} uses the flat rule on the input layer; "
                                 f"input_layer_rule={input_layer_rule!r} is not allowed "
                                 "(use the preset without '_flat' for another input rule)")
            input_layer_rule = "flat"
        dense = EpsilonRule(epsilon, bias=True)
        return _lrp(conv_rule, name, dense_rule=dense, conv_rule=conv_rule)(
            model, input_layer_rule=input_layer_rule, max_pooling=max_pooling,
            canonizers=canonizers)
    return lrp_sequential_preset


def _layer_names(layers: Any) -> list[str]:
    names = []
    for layer in layers:
        names.append(layer.name)
        if hasattr(layer, "layers"):  # a nested model: all its layers
            names += _layer_names(layer.layers)
        inner = getattr(layer, "layer", None)  # TimeDistributed and other wrappers
        if inner is not None:
            names.append(inner.name)
    return names


def _preset_b_flat_until_idx(model: Any, until_layer_idx: int | None = None,
                             epsilon: float = 0.1, max_pooling: str = "winner_take_all",
                             canonizers: Any = None) -> Analyzer:
    """Preset B flat, and the flat rule for every layer with a kernel among
    ``model.layers[0..until_layer_idx]`` (iNNvestigate's index: ``model.layers`` of the given
    model, its InputLayer included for functional models)."""
    analyzer = _preset(AlphaBetaRule(2.0, 1.0), "lrp.sequential_preset_b_flat_until_idx",
                       flat_input=True)(model, epsilon=epsilon, max_pooling=max_pooling,
                                        canonizers=canonizers)
    if until_layer_idx is None:
        return analyzer
    n = len(model.layers)
    if isinstance(until_layer_idx, bool) or not isinstance(until_layer_idx, int) or \
            not -n <= until_layer_idx < n:
        raise ValueError(f"until_layer_idx must be an index into model.layers (0..{n - 1}, "
                         f"'{model.name}' has {n} layers); got {until_layer_idx!r}")
    stop = until_layer_idx % n
    in_range = layer_name(*_layer_names(model.layers[: stop + 1]))

    def weight_layer_in_range(op: Any, step: Any = None) -> bool:
        # as iNNvestigate: the flat rule replaces the rule of layers with a kernel only
        return is_kernel_layer(op, step) and in_range(op, step)

    composite = analyzer.composite
    composite.rules.insert(0, (weight_layer_in_range, FlatRule()))
    return RelevanceAnalyzer(model, composite, relu_output=False, canonizers=canonizers,
                             name="lrp.sequential_preset_b_flat_until_idx")


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
    "input": InputAnalyzer,
    "random": RandomAnalyzer,
    "gradient": Gradient,
    "gradient.baseline": BaselineGradient,
    "input_t_gradient": InputTimesGradient,
    "deconvnet": Deconvnet,
    "guided_backprop": GuidedBackprop,
    "integrated_gradients": IntegratedGradients,
    "smoothgrad": SmoothGrad,
    "deep_taylor": _deep_taylor,
    "deep_taylor.bounded": _deep_taylor_bounded,
    "lrp": _lrp_custom,
    "lrp.z": _lrp_z,
    "lrp.epsilon": _lrp_epsilon,
    "lrp.z_plus": _lrp(ZPlusRule(), "lrp.z_plus", add_rule=ZPlusRule()),
    "lrp.z_plus_fast": _lrp(ZPlusRule(), "lrp.z_plus_fast", add_rule=ZPlusRule()),
    "lrp.w_square": _lrp(WSquareRule(), "lrp.w_square"),
    "lrp.flat": _lrp(FlatRule(), "lrp.flat"),
    "lrp.alpha_beta": _lrp_alpha_beta,
    "lrp.alpha_1_beta_0": _alpha_beta_fixed(1.0, 0.0, "lrp.alpha_1_beta_0"),
    "lrp.alpha_1_beta_0_IB": _alpha_beta_fixed(1.0, 0.0, "lrp.alpha_1_beta_0_IB", bias=False),
    "lrp.alpha_2_beta_1": _alpha_beta_fixed(2.0, 1.0, "lrp.alpha_2_beta_1"),
    "lrp.alpha_2_beta_1_IB": _alpha_beta_fixed(2.0, 1.0, "lrp.alpha_2_beta_1_IB", bias=False),
    "lrp.sequential_preset_a": _preset(AlphaBetaRule(1.0, 0.0), "lrp.sequential_preset_a"),
    "lrp.sequential_preset_b": _preset(AlphaBetaRule(2.0, 1.0), "lrp.sequential_preset_b"),
    "lrp.sequential_preset_a_flat": _preset(AlphaBetaRule(1.0, 0.0),
                                            "lrp.sequential_preset_a_flat", flat_input=True),
    "lrp.sequential_preset_b_flat": _preset(AlphaBetaRule(2.0, 1.0),
                                            "lrp.sequential_preset_b_flat", flat_input=True),
    "lrp.sequential_preset_b_flat_until_idx": _preset_b_flat_until_idx,
}

#: Options of iNNvestigate's base classes that have no meaning here.
_INNVESTIGATE_ONLY = ("disable_model_checks", "allow_lambda_layers", "reverse_verbose",
                      "reverse_clip_values", "reverse_project_bottleneck_layers",
                      "reverse_check_min_max_values", "reverse_check_finite",
                      "reverse_keep_tensors", "reverse_reapply_on_copied_layers",
                      "bn_layer_rule", "bn_layer_fuse_mode", "until_layer_rule")


def list_analyzers() -> list[str]:
    """Names accepted by :func:`create_analyzer`."""
    return list(_ANALYZERS)


def analyzer_options(name: str) -> list[str]:
    """Keyword options of analyzer ``name`` (besides ``neuron_selection_mode``)."""
    params = inspect.signature(_ANALYZERS[_check_name(name)]).parameters
    out = [p for p in params if p != "model" and params[p].kind in
           (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        out += [p for p in ("input_layer_rule", "max_pooling", "canonizers") if p not in out]
    return out


def _name_hint(name: str) -> str:
    """The equivalent of an unknown name, where there is one."""
    text = str(name)
    lowered = {k.lower(): k for k in _ANALYZERS}
    if text.lower() in lowered:
        return f" Names are case-sensitive: use {lowered[text.lower()]!r}."
    if text.endswith("_IB"):
        base = text[:-3]
        if base in _ANALYZERS and "bias" in analyzer_options(base):
            return f" Use {base!r} with bias=False (ignore the bias)."
    match = re.fullmatch(r"lrp\.alpha_(\d+(?:\.\d+)?)_beta_(\d+(?:\.\d+)?)(_IB)?", text)
    if match:
        alpha, beta, ib = match.groups()
        return (f" Use 'lrp.alpha_beta' with alpha={alpha}, beta={beta}"
                f"{', bias=False' if ib else ''}.")
    if text.startswith(("pattern.", "deep_lift", "lrp.rule_until_index")):
        return " iNNvestigate 2.1.2 has no such analyzer either (it was in iNNvestigate 1.x)."
    close = difflib.get_close_matches(text, list(_ANALYZERS), n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _check_name(name: str) -> str:
    if name not in _ANALYZERS:
        raise ValueError(f"unknown analyzer {name!r}.{_name_hint(name)} Known analyzers: "
                         f"{', '.join(_ANALYZERS)}.")
    return name


def create_analyzer(name: str, model: Any, neuron_selection_mode: str = "max_activation",
                    **kwargs: Any) -> Analyzer:
    """Create the analyzer ``name`` for ``model`` (see :func:`list_analyzers`), like
    ``innvestigate.create_analyzer``.

    Unsupported layers raise :class:`analyzers.UnsupportedLayerError` here, before any
    computation (the gradient family, ``input`` and ``random`` accept any differentiable
    single-input model). Keyword arguments are the analyzer's options (e.g. ``low``/``high``
    for ``deep_taylor.bounded``, ``epsilon`` for ``lrp.epsilon``; see
    :func:`analyzer_options`). ``neuron_selection_mode``: ``"max_activation"`` (default;
    each sample's top logit, or the outputs given to ``analyze``), ``"index"`` (``analyze``
    needs ``neuron_selection``) or ``"all"`` (the sum of all outputs).
    """
    _check_name(name)
    if neuron_selection_mode not in NEURON_SELECTION_MODES:
        raise ValueError(f"neuron_selection_mode must be one of "
                         f"{', '.join(map(repr, NEURON_SELECTION_MODES))}; "
                         f"got {neuron_selection_mode!r}")
    options = analyzer_options(name)
    unknown = [k for k in kwargs if k not in options]
    if unknown:
        valid = ", ".join(options + ["neuron_selection_mode"])
        extra = ""
        if any(k in _INNVESTIGATE_ONLY for k in unknown):
            extra = " (an iNNvestigate option that has no equivalent here)"
        raise ValueError(f"analyzer {name!r} has no option "
                         f"{', '.join(repr(k) for k in unknown)}{extra}; its options are: "
                         f"{valid}")
    analyzer = _ANALYZERS[name](model, **kwargs)
    analyzer.name = name
    analyzer.neuron_selection_mode = neuron_selection_mode
    analyzer.settings = (name, dict(kwargs))
    return analyzer
