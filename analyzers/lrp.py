"""The named LRP and deep Taylor analyzers (``deep_taylor*``, ``lrp*``) and the attention-aware
ones (``attnlrp``, ``cp_lrp``): for each name, the composite of rules that
:class:`~analyzers.relevance.RelevanceAnalyzer` applies.

Each is registered here under its iNNvestigate name (:func:`analyzers.registry.register`),
in the order of :func:`analyzers.list_analyzers`; every builder passes the
:class:`~analyzers.settings.Settings` it is given on to the analyzer. With
``compat="innvestigate"`` in the settings a builder takes iNNvestigate 2.1.2's composite
instead (:func:`analyzers.composites.innvestigate_lrp_composite`,
:func:`~analyzers.composites.innvestigate_deep_taylor_composite`) and BatchNormalization is
left unfolded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from analyzers import tracing
from analyzers.canonizers import BatchNormFolder, CentredLayerNorm, InnvestigateBatchNorm
from analyzers.composites import (
    INNVESTIGATE_PRESET_BATCH_NORM_RULE,
    Composite,
    attention_composite,
    innvestigate_deep_taylor_composite,
    innvestigate_lrp_composite,
    is_kernel_layer,
    layer_map_composite,
    layer_name,
)
from analyzers.errors import UnsupportedLayerError
from analyzers.ops import supported_layer_names
from analyzers.ops.traced import TracedOp
from analyzers.registry import register
from analyzers.relevance import RelevanceAnalyzer
from analyzers.rules import (
    AlphaBetaRule,
    BoundedRule,
    EpsilonRule,
    FlatRule,
    Rule,
    WSquareRule,
    ZPlusFastRule,
    ZPlusRule,
    ZRule,
)
from analyzers.settings import Settings, is_innvestigate

#: ``(model, **options, settings=...) -> RelevanceAnalyzer``.
Builder = Callable[..., RelevanceAnalyzer]


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


def _lrp(kernel_rule: Rule, relu_output: bool = False,
         innvestigate: dict[str, Rule] | None = None, **fixed: Any) -> Builder:
    """The builder that applies ``kernel_rule`` to every kernel layer (and the composite
    options ``fixed``); with ``compat="innvestigate"``, iNNvestigate's composite of the same
    rules, ``innvestigate`` overriding some (``kernel_rule``, ``batch_norm_rule``)."""
    def build(model: Any, input_layer_rule: Any = None, max_pooling: str = "winner_take_all",
              canonizers: Any = None, *, settings: Settings | None = None
              ) -> RelevanceAnalyzer:
        input_rule = _input_rule(input_layer_rule)
        if is_innvestigate(settings):
            rules = {k: v for k, v in fixed.items() if k != "add_rule"}
            rules.update({"kernel_rule": kernel_rule, **(innvestigate or {})})
            composite = innvestigate_lrp_composite(input_layer_rule=input_rule,
                                                   max_pooling=max_pooling, **rules)
            canonizers = [InnvestigateBatchNorm()] if canonizers is None else canonizers
        else:
            composite = layer_map_composite(kernel_rule, input_layer_rule=input_rule,
                                            max_pooling=max_pooling, **fixed)
        return RelevanceAnalyzer(model, composite, relu_output=relu_output,
                                 canonizers=canonizers, settings=settings)
    return build


@register("deep_taylor")
def _deep_taylor(model: Any, input_rule: Any = None, max_pooling: str = "winner_take_all",
                 canonizers: Any = None, *, settings: Settings | None = None
                 ) -> RelevanceAnalyzer:
    return _deep_taylor_analyzer(model, _input_rule(input_rule), max_pooling, canonizers,
                                 settings)


def _deep_taylor_analyzer(model: Any, input_rule: Rule | None, max_pooling: str,
                          canonizers: Any, settings: Settings | None) -> RelevanceAnalyzer:
    """Deep Taylor: z+ at every kernel layer, ``input_rule`` at the first."""
    if is_innvestigate(settings):
        composite = innvestigate_deep_taylor_composite(input_rule, max_pooling)
        canonizers = [] if canonizers is None else canonizers  # (BatchNorm by its gradient)
    else:
        composite = layer_map_composite(ZPlusRule(), input_layer_rule=input_rule,
                                        add_rule=ZPlusRule(), max_pooling=max_pooling)
    return RelevanceAnalyzer(model, composite, relu_output=True, canonizers=canonizers,
                             settings=settings)


@register("deep_taylor.bounded")
def _deep_taylor_bounded(model: Any, low: Any = None, high: Any = None,
                         max_pooling: str = "winner_take_all", canonizers: Any = None, *,
                         settings: Settings | None = None) -> RelevanceAnalyzer:
    if low is None or high is None:
        raise ValueError("deep_taylor.bounded needs the input range: pass low=... and "
                         "high=... (scalars or one value per channel)")
    return _deep_taylor_analyzer(model, BoundedRule(low, high), max_pooling, canonizers,
                                 settings)


@register("lrp")
def _lrp_custom(model: Any, composite: Composite | None = None, rule: Rule | None = None,
                input_layer_rule: Any = None, max_pooling: str = "winner_take_all",
                relu_output: bool = False, canonizers: Any = None, *,
                settings: Settings | None = None) -> RelevanceAnalyzer:
    if (composite is None) == (rule is None):
        raise ValueError("'lrp' needs exactly one of composite=Composite(...) or "
                         "rule=<Rule for all weight layers>")
    if composite is not None:  # (compat="innvestigate": max-pooling ties, as given otherwise)
        return RelevanceAnalyzer(model, composite, relu_output=relu_output,
                                 canonizers=canonizers, settings=settings)
    return _lrp(rule, relu_output=relu_output)(model, input_layer_rule=input_layer_rule,
                                               max_pooling=max_pooling, canonizers=canonizers,
                                               settings=settings)


@register("lrp.z")
def _lrp_z(model: Any, bias: bool = True, *, settings: Settings | None = None, **kw: Any
           ) -> RelevanceAnalyzer:
    return _lrp(ZRule(bias=bias))(model, settings=settings, **kw)


@register("lrp.epsilon")
def _lrp_epsilon(model: Any, epsilon: float = 1e-7, bias: bool = True, *,
                 settings: Settings | None = None, **kw: Any) -> RelevanceAnalyzer:
    return _lrp(EpsilonRule(epsilon, bias=bias))(model, settings=settings, **kw)


register("lrp.z_plus")(_lrp(ZPlusRule(), add_rule=ZPlusRule()))
register("lrp.z_plus_fast")(_lrp(ZPlusRule(), add_rule=ZPlusRule(),
                                 innvestigate={"kernel_rule": ZPlusFastRule()}))
register("lrp.w_square")(_lrp(WSquareRule()))
register("lrp.flat")(_lrp(FlatRule()))


@register("lrp.alpha_beta")
def _lrp_alpha_beta(model: Any, alpha: float = 1.0, beta: float = 0.0, bias: bool = True, *,
                    settings: Settings | None = None, **kw: Any) -> RelevanceAnalyzer:
    return _lrp(AlphaBetaRule(alpha, beta, bias=bias))(model, settings=settings, **kw)


def _alpha_beta_fixed(alpha: float, beta: float, bias: bool = True) -> Builder:
    """``lrp.alpha_A_beta_B`` (``bias=True``) and ``..._IB`` (``bias=False``); both also take
    ``bias=`` (iNNvestigate's fixed classes do not)."""
    def lrp_alpha_beta_fixed(model: Any, bias: bool = bias, input_layer_rule: Any = None,
                             max_pooling: str = "winner_take_all",
                             canonizers: Any = None, *, settings: Settings | None = None
                             ) -> RelevanceAnalyzer:
        return _lrp(AlphaBetaRule(alpha, beta, bias=bias))(
            model, input_layer_rule=input_layer_rule, max_pooling=max_pooling,
            canonizers=canonizers, settings=settings)
    return lrp_alpha_beta_fixed


register("lrp.alpha_1_beta_0")(_alpha_beta_fixed(1.0, 0.0))
register("lrp.alpha_1_beta_0_IB")(_alpha_beta_fixed(1.0, 0.0, bias=False))
register("lrp.alpha_2_beta_1")(_alpha_beta_fixed(2.0, 1.0))
register("lrp.alpha_2_beta_1_IB")(_alpha_beta_fixed(2.0, 1.0, bias=False))


def _preset(conv_rule: Rule, flat_input: bool = False) -> Builder:
    """iNNvestigate's sequential presets: epsilon (bias kept) for Dense, ``conv_rule`` for
    convolutions; the ``_flat`` forms use the flat rule on the input layer."""
    def lrp_sequential_preset(model: Any, epsilon: float = 0.1, input_layer_rule: Any = None,
                              max_pooling: str = "winner_take_all", canonizers: Any = None,
                              *, settings: Settings | None = None) -> RelevanceAnalyzer:
        if flat_input:
            if input_layer_rule not in (None, "flat", "Flat"):
                name = "this preset" if settings is None else settings.name
                raise ValueError(f"{name} uses the flat rule on the input layer; "
                                 f"input_layer_rule={input_layer_rule!r} is not allowed "
                                 "(use the preset without '_flat' for another input rule)")
            input_layer_rule = "flat"
        dense = EpsilonRule(epsilon, bias=True)
        innvestigate = {"batch_norm_rule": INNVESTIGATE_PRESET_BATCH_NORM_RULE}
        return _lrp(conv_rule, dense_rule=dense, conv_rule=conv_rule,
                    innvestigate=innvestigate)(
            model, input_layer_rule=input_layer_rule, max_pooling=max_pooling,
            canonizers=canonizers, settings=settings)
    return lrp_sequential_preset


register("lrp.sequential_preset_a")(_preset(AlphaBetaRule(1.0, 0.0)))
register("lrp.sequential_preset_b")(_preset(AlphaBetaRule(2.0, 1.0)))
register("lrp.sequential_preset_a_flat")(_preset(AlphaBetaRule(1.0, 0.0), flat_input=True))
register("lrp.sequential_preset_b_flat")(_preset(AlphaBetaRule(2.0, 1.0), flat_input=True))


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


@register("lrp.sequential_preset_b_flat_until_idx")
def _preset_b_flat_until_idx(model: Any, until_layer_idx: int | None = None,
                             epsilon: float = 0.1, max_pooling: str = "winner_take_all",
                             canonizers: Any = None, *, settings: Settings | None = None
                             ) -> RelevanceAnalyzer:
    """Preset B flat, and the flat rule for every layer with a kernel among
    ``model.layers[0..until_layer_idx]`` (iNNvestigate's index: ``model.layers`` of the given
    model, its InputLayer included for functional models)."""
    analyzer = _preset(AlphaBetaRule(2.0, 1.0), flat_input=True)(
        model, epsilon=epsilon, max_pooling=max_pooling, canonizers=canonizers,
        settings=settings)
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
    # (compat="innvestigate": after its first pair, TimeDistributed by the gradient)
    composite.rules.insert(1 if is_innvestigate(settings) else 0,
                           (weight_layer_in_range, FlatRule()))
    if canonizers is None and is_innvestigate(settings):
        canonizers = [InnvestigateBatchNorm()]
    return RelevanceAnalyzer(model, composite, relu_output=False, canonizers=canonizers,
                             settings=settings)


def _attention_lrp(convention: str) -> Builder:
    """``attnlrp`` / ``cp_lrp``: :func:`~analyzers.composites.attention_composite` with
    LayerNormalization's centring kept linear (:class:`~analyzers.canonizers.CentredLayerNorm`);
    a layer traced into its operations is refused if one of them has no rule under
    ``convention``."""
    def build(model: Any, epsilon: float = 1e-6, gamma: float | None = None,
              max_pooling: str = "winner_take_all", *, settings: Settings | None = None
              ) -> RelevanceAnalyzer:
        if gamma is not None and not gamma >= 0:
            raise ValueError(f"gamma must be >= 0 (or None: off), got {gamma!r}")
        composite = attention_composite(convention, epsilon, gamma, max_pooling)
        analyzer = RelevanceAnalyzer(model, composite,
                                     canonizers=(BatchNormFolder(), CentredLayerNorm()),
                                     settings=settings)
        for step in analyzer.graph.steps:
            op = step.op
            reason = op.unsupported(convention) if isinstance(op, TracedOp) else None
            if reason is not None:
                raise UnsupportedLayerError(op.name, type(op.layer).__name__,
                                            supported_layer_names(), reason)
        return analyzer
    return build


register("attnlrp")(_attention_lrp(tracing.ATTNLRP))
register("cp_lrp")(_attention_lrp(tracing.CP_LRP))
