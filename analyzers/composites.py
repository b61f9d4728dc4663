"""Composites: map layer predicates to rules (first match wins).

A :class:`Composite` is an ordered list of ``(predicate, rule)`` pairs. A predicate is a
function ``(op, step) -> bool`` over a :class:`~analyzers.ops.base.LayerOp` and its
:class:`~analyzers.model.graph.Step` (``step.is_input_layer``, ``step.input_nonnegative``);
``op.layer`` is the Keras layer (the inner layer of a ``TimeDistributed``).

:func:`layer_map_composite` builds the composites used by the named analyzers: a rule for
weight layers (optionally another for the first weight layer, and per Dense / conv layer),
plus the fixed treatment of the other layers:

* average pooling (and global average pooling): proportional to the inputs (``ZRule``);
* max pooling (and global max pooling): winner-take-all (``GradientRule``) by default,
  proportional (``ZRule`` on the average-pooling surrogate) with
  ``max_pooling="proportional"``;
* ``Add`` / ``Average``: in proportion to each input's contribution (``ZRule``); under the
  z+ analyzers (deep Taylor, ``lrp.z_plus``) in proportion to the inputs' positive parts
  (``ZPlusRule``), which keeps them conservative behind residual sums;
* a BatchNormalization that could not be folded, LayerNormalization, GroupNormalization:
  the weight-layer rule (on the diagonal affine form);
* ``Multiply`` by gates: the other factor gets all relevance (``GateRule``);
* activations and dropout: relevance unchanged (``IdentityRule``);
* Flatten, Reshape, padding, cropping, up-sampling, Concatenate: ``GradientRule`` (exact
  redistribution).

These defaults are declared with each op's registration (:mod:`analyzers.ops.factory`);
an op without one is refused there, so no layer silently gets gradient semantics.

:func:`innvestigate_lrp_composite` and :func:`innvestigate_deep_taylor_composite` are
iNNvestigate 2.1.2's choices instead (``compat="innvestigate"``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import keras

from analyzers.ops.base import LayerOp
from analyzers.ops.gates import MultiplyOp
from analyzers.ops.kernel import (
    AffineOp,
    ConvOp,
    ConvTransposeOp,
    DenseOp,
    DepthwiseConvOp,
    KernelOp,
)
from analyzers.ops.normalization import DiagonalOp, GroupNormOp, LayerNormOp
from analyzers.ops.pooling.layers import GlobalPoolOp, PoolOp
from analyzers.ops.recurrent.layers import BidirectionalOp, RecurrentOp
from analyzers.ops.structural import ActivationOp, AddOp, SoftmaxOp, TimeDistributedOp
from analyzers.ops.traced import TracedOp
from analyzers.rules import (
    AlphaBetaRule,
    AlphaBetaXRule,
    EpsilonRule,
    GammaRule,
    LayerGradientRule,
    RecurrentRule,
    Rule,
    SoftmaxRule,
    TracedRule,
    ZPlusRule,
    ZRule,
)

Predicate = Callable[[LayerOp, Any], bool]


def _base(op: LayerOp) -> LayerOp:
    return op.inner if isinstance(op, TimeDistributedOp) else op


# -- predicates ----------------------------------------------------------------------
def is_kernel_layer(op: LayerOp, step: Any = None) -> bool:
    """Dense, Conv*, Conv*Transpose (BatchNormalization folded in or not)."""
    return isinstance(_base(op), KernelOp)


def is_dense(op: LayerOp, step: Any = None) -> bool:
    """A Dense layer."""
    return isinstance(_base(op), DenseOp)


def is_conv(op: LayerOp, step: Any = None) -> bool:
    """A convolution (grouped, depthwise, either step of a separable one) or transposed
    convolution (any rank)."""
    return isinstance(_base(op), (ConvOp, ConvTransposeOp, DepthwiseConvOp))


def is_batch_norm(op: LayerOp, step: Any = None) -> bool:
    """A BatchNormalization left as an elementwise affine layer (not folded)."""
    return isinstance(_base(op), AffineOp)


def is_normalization(op: LayerOp, step: Any = None) -> bool:
    """A LayerNormalization or GroupNormalization (statistics held constant)."""
    return isinstance(_base(op), (LayerNormOp, GroupNormOp, DiagonalOp))


def is_gate_multiply(op: LayerOp, step: Any = None) -> bool:
    """A Multiply by gates."""
    return isinstance(_base(op), MultiplyOp)


def is_average_pooling(op: LayerOp, step: Any = None) -> bool:
    """AveragePooling* or GlobalAveragePooling*."""
    base = _base(op)
    return isinstance(base, (PoolOp, GlobalPoolOp)) and not base.is_max


def is_max_pooling(op: LayerOp, step: Any = None) -> bool:
    """MaxPooling* or GlobalMaxPooling*."""
    base = _base(op)
    return isinstance(base, (PoolOp, GlobalPoolOp)) and base.is_max


def is_add(op: LayerOp, step: Any = None) -> bool:
    """Add or Average."""
    return isinstance(_base(op), AddOp)


def is_traced(op: LayerOp, step: Any = None) -> bool:
    """A layer explained through the operations its call runs (MultiHeadAttention, custom
    layers, ``keras.ops`` calls)."""
    return isinstance(_base(op), TracedOp)


def is_softmax(op: LayerOp, step: Any = None) -> bool:
    """A softmax inside the model (not its output)."""
    return isinstance(_base(op), SoftmaxOp)


def is_input_layer(op: LayerOp, step: Any = None) -> bool:
    """A weight layer fed by the model input (through weightless shape layers only)."""
    return bool(step is not None and step.is_input_layer)


def layer_class(*classes: type) -> Predicate:
    """Predicate: the Keras layer is an instance of one of ``classes``."""
    def predicate(op: LayerOp, step: Any = None) -> bool:
        return isinstance(op.layer, classes)
    return predicate


def layer_name(*names: str) -> Predicate:
    """Predicate: the Keras layer's name is one of ``names``."""
    def predicate(op: LayerOp, step: Any = None) -> bool:
        return op.layer.name in names or op.name in names
    return predicate


def always(op: LayerOp, step: Any = None) -> bool:
    """Matches every layer."""
    return True


# -- composite -----------------------------------------------------------------------
def standard_rule(op: LayerOp, max_pooling: str = "winner_take_all") -> Rule | None:
    """The registered default rule of ``op`` (see module docstring); ``None`` for layers
    with weights, which need a rule from the composite."""
    return op.standard_rule(max_pooling)


class Composite:
    """Ordered ``(predicate, rule)`` pairs; the first matching pair gives a layer's rule.

    A layer that no pair matches gets ``default`` if given, else the standard treatment of
    weightless layers (:func:`standard_rule`: proportional average pooling and Add,
    winner-take-all max pooling, gates held constant, identity for activations, exact
    redistribution for shape layers). A layer with
    weights that no pair matches (and no ``default``) is an error, raised when the analyzer
    is created.

    Parameters
    ----------
    rules
        ``[(predicate, rule), ...]``.
    default
        Rule for every unmatched layer (optional).
    max_pooling
        Standard max-pooling treatment: ``"winner_take_all"`` or ``"proportional"``.
    """

    def __init__(self, rules: Sequence[tuple[Predicate, Rule]], default: Rule | None = None,
                 max_pooling: str = "winner_take_all") -> None:
        if max_pooling not in ("winner_take_all", "proportional"):
            raise ValueError(f"max_pooling must be 'winner_take_all' or 'proportional', "
                             f"got {max_pooling!r}")
        self.rules = list(rules)
        self.default = default
        self.max_pooling = max_pooling
        for pair in self.rules:
            if not (isinstance(pair, tuple) and len(pair) == 2 and callable(pair[0])
                    and callable(pair[1])):
                raise ValueError(f"a composite holds (predicate, rule) pairs; got {pair!r}")

    def rule_for(self, op: LayerOp, step: Any = None) -> Rule:
        """The rule for ``op`` (first match, else the default or standard treatment).

        A recurrent layer gets a :class:`~analyzers.rules.RecurrentRule` holding the rule
        this composite gives each part of its cell (its linear parts like weight layers, its
        sums like ``Add``; only parts that read the layer's input as input layers)."""
        if isinstance(op, (RecurrentOp, BidirectionalOp)):
            return RecurrentRule({name: self.rule_for(part, _part_step(part, step))
                                  for name, part in op.parts().items()})
        for predicate, rule in self.rules:
            if predicate(op, step):
                return rule
        if self.default is not None:
            return self.default
        rule = standard_rule(op, self.max_pooling)
        if rule is None:
            raise ValueError(f"no rule of the composite matches layer '{op.name}' "
                             f"({type(op.layer).__name__}); add a (predicate, rule) pair for "
                             "it or give the composite a default rule")
        return rule

    def __repr__(self) -> str:
        names = ", ".join(f"({getattr(p, '__name__', p)}, {r!r})" for p, r in self.rules)
        return f"Composite([{names}], default={self.default!r})"


def _part_step(part: LayerOp, step: Any) -> Any:
    """The step a cell's part is matched with: its layer's, but a part that does not read the
    layer's input (a sum, a map of the state alone) is never an input layer."""
    if step is None or getattr(part, "reads_input", True):
        return step
    return replace(step, is_input_layer=False)


def layer_map_composite(kernel_rule: Rule, *, input_layer_rule: Rule | None = None,
                        dense_rule: Rule | None = None, conv_rule: Rule | None = None,
                        batch_norm_rule: Rule | None = None,
                        normalization_rule: Rule | None = None,
                        add_rule: Rule | None = None,
                        max_pooling: str = "winner_take_all") -> Composite:
    """The composite of the named LRP / deep Taylor analyzers (see module docstring).

    Parameters
    ----------
    kernel_rule
        Rule for Dense / Conv / ConvTranspose layers.
    input_layer_rule
        Rule for the weight layer(s) that read the model input (overrides the others).
    dense_rule, conv_rule
        Rules for Dense or convolution layers specifically.
    batch_norm_rule
        Rule for a BatchNormalization that could not be folded (default ``kernel_rule``).
    normalization_rule
        Rule for LayerNormalization / GroupNormalization (default ``batch_norm_rule``).
    add_rule
        Rule for ``Add`` / ``Average`` (default: in proportion to the signed inputs). The
        z+ analyzers use ``ZPlusRule`` there: split by the inputs' positive parts, so a
        residual branch whose output is negative gets no relevance it could not pass on.
    max_pooling
        ``"winner_take_all"`` (default) or ``"proportional"``.
    """
    pairs: list[tuple[Predicate, Rule]] = []
    if input_layer_rule is not None:
        pairs.append((is_input_layer, input_layer_rule))
    if dense_rule is not None:
        pairs.append((is_dense, dense_rule))
    if conv_rule is not None:
        pairs.append((is_conv, conv_rule))
    pairs += [(is_kernel_layer, kernel_rule), (is_batch_norm, batch_norm_rule or kernel_rule),
              (is_normalization, normalization_rule or batch_norm_rule or kernel_rule)]
    if add_rule is not None:
        pairs.append((is_add, add_rule))
    return Composite(pairs, max_pooling=max_pooling)


def attention_composite(convention: str, epsilon: float = 1e-6, gamma: float | None = None,
                        max_pooling: str = "winner_take_all") -> Composite:
    """The composite of ``attnlrp`` / ``cp_lrp``: layers explained through their operations
    (attention, custom layers) by ``convention``, a softmax inside the model by AttnLRP's
    softmax rule, Dense / EinsumDense / convolutions by epsilon (or gamma, where ``gamma`` is
    given and > 0), LayerNormalization by the z rule on its centred form (the
    :class:`~analyzers.canonizers.CentredLayerNorm` canonizer), everything else as
    standard (elementwise activations: identity).

    Parameters
    ----------
    convention
        ``"attnlrp"`` or ``"cp_lrp"``.
    epsilon
        The epsilon rule's stabilizer (also the gamma rule's).
    gamma
        The gamma rule's boost for the kernel layers outside attention (``None`` or 0: the
        epsilon rule there).
    max_pooling
        ``"winner_take_all"`` (default) or ``"proportional"``.
    """
    kernel_rule = GammaRule(gamma, epsilon) if gamma else EpsilonRule(epsilon)
    pairs: list[tuple[Predicate, Rule]] = [
        (is_traced, TracedRule(convention, epsilon)),
        (is_softmax, SoftmaxRule()),
        (is_kernel_layer, kernel_rule),
        (is_batch_norm, EpsilonRule(epsilon)),
        (is_normalization, ZRule()),
    ]
    return Composite(pairs, max_pooling=max_pooling)


# -- iNNvestigate 2.1.2's composites ----------------------------------------------------
def _is_time_distributed(op: LayerOp, step: Any = None) -> bool:
    return isinstance(op, TimeDistributedOp)


def _is_input_kernel_layer(op: LayerOp, step: Any = None) -> bool:
    return is_kernel_layer(op, step) and is_input_layer(op, step)


def _is_average(op: LayerOp, step: Any = None) -> bool:
    return is_add(op, step) and bool(getattr(op, "mean", False))


def _is_activation_layer(op: LayerOp, step: Any = None) -> bool:
    """A ``ReLU`` / ``LeakyReLU`` / ``ELU`` layer (iNNvestigate's LRP passes ``Activation``
    layers unchanged, these by their gradient)."""
    return isinstance(op, ActivationOp) and not isinstance(op.layer, keras.layers.Activation)


def innvestigate_rule(rule: Rule) -> Rule:
    """``rule`` as iNNvestigate 2.1.2 computes it: alpha-beta with the whole bias in both
    denominators and no conserving treatment of degenerate neurons; any other rule as it
    is."""
    if isinstance(rule, AlphaBetaRule) and not isinstance(rule, ZPlusRule):
        return AlphaBetaRule(rule.alpha, rule.beta, bias=rule.bias, epsilon=rule.epsilon,
                             conserve_degenerate=False, whole_bias=True)
    return rule


def _check_innvestigate_max_pooling(max_pooling: str) -> None:
    if max_pooling != "winner_take_all":
        raise ValueError(f"compat='innvestigate' passes max pooling by TensorFlow's gradient, "
                         f"as iNNvestigate does; max_pooling={max_pooling!r} has no "
                         "iNNvestigate equivalent (leave it at 'winner_take_all')")


#: iNNvestigate 2.1.2's rule for BatchNormalization in its sequential presets
#: (``AlphaBetaX2m100Rule``): ``2 R_pp - R_pn``.
INNVESTIGATE_PRESET_BATCH_NORM_RULE = AlphaBetaXRule(alpha=(2.0, 0.0), beta=(1.0, 0.0))


def innvestigate_lrp_composite(kernel_rule: Rule, *, input_layer_rule: Rule | None = None,
                               dense_rule: Rule | None = None, conv_rule: Rule | None = None,
                               batch_norm_rule: Rule | None = None,
                               max_pooling: str = "winner_take_all") -> Composite:
    """iNNvestigate 2.1.2's LRP composite of the given rules (each through
    :func:`innvestigate_rule`): the rules at kernel layers (``input_layer_rule`` at those
    that read the input) and at BatchNormalization (which needs
    :class:`~analyzers.canonizers.InnvestigateBatchNorm`: iNNvestigate's surrogate); ``Add``
    by the z rule; ``Average``, ``ReLU`` / ``LeakyReLU`` / ``ELU`` layers, normalisations,
    gates and ``TimeDistributed`` by the layer's gradient; the rest as standard (max pooling
    by its gradient, average pooling in proportion, ``Activation`` layers unchanged)."""
    _check_innvestigate_max_pooling(max_pooling)
    gradient = LayerGradientRule()
    pairs: list[tuple[Predicate, Rule]] = [(_is_time_distributed, gradient)]
    if input_layer_rule is not None:
        pairs.append((_is_input_kernel_layer, innvestigate_rule(input_layer_rule)))
    if dense_rule is not None:
        pairs.append((is_dense, innvestigate_rule(dense_rule)))
    if conv_rule is not None:
        pairs.append((is_conv, innvestigate_rule(conv_rule)))
    kernel_rule = innvestigate_rule(kernel_rule)
    pairs += [(is_kernel_layer, kernel_rule),
              (is_batch_norm, innvestigate_rule(batch_norm_rule or kernel_rule)),
              (_is_average, gradient), (is_add, ZRule()), (_is_activation_layer, gradient),
              (is_normalization, gradient), (is_gate_multiply, gradient)]
    return Composite(pairs, max_pooling=max_pooling)


def innvestigate_deep_taylor_composite(input_layer_rule: Rule | None = None,
                                       max_pooling: str = "winner_take_all") -> Composite:
    """iNNvestigate 2.1.2's deep Taylor: z+ at kernel layers (``input_layer_rule``, e.g. z^B,
    at those that read the input), every other layer by its gradient (``Add`` copies
    relevance to each input, average pooling splits it evenly, an unfolded
    BatchNormalization scales it by ``gamma / sqrt(var + eps)``, ``TimeDistributed`` too)."""
    _check_innvestigate_max_pooling(max_pooling)
    gradient = LayerGradientRule()
    pairs: list[tuple[Predicate, Rule]] = [(_is_time_distributed, gradient)]
    if input_layer_rule is not None:
        pairs.append((_is_input_kernel_layer, input_layer_rule))
    pairs.append((is_kernel_layer, ZPlusRule()))
    return Composite(pairs, default=gradient)


__all__ = [
    "Composite", "INNVESTIGATE_PRESET_BATCH_NORM_RULE", "always", "attention_composite",
    "innvestigate_deep_taylor_composite", "innvestigate_lrp_composite", "innvestigate_rule",
    "is_add", "is_average_pooling", "is_batch_norm", "is_conv", "is_dense", "is_gate_multiply",
    "is_input_layer", "is_kernel_layer", "is_max_pooling", "is_normalization", "is_softmax",
    "is_traced", "layer_class", "layer_map_composite", "layer_name", "standard_rule",
]
