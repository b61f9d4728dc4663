"""The registry of supported layers: one :class:`Support` per op class.

A registration names the Keras classes an op handles, how it is built from a layer (with
the check of the layer's configuration) and its default rule. The supported list
(:data:`SUPPORTED_LAYERS`, :func:`supported_layer_names`), the message of
:class:`~analyzers.errors.UnsupportedLayerError` and the list in docs/analyzers.md
(:func:`supported_layers_markdown`, checked by a test) are all derived from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from analyzers import tracing
from analyzers.errors import GRADIENT_FAMILY, UnsupportedLayerError
from analyzers.ops.activations import ELEMENTWISE, activation_name
from analyzers.ops.base import LayerOp
from analyzers.ops.embedding import EmbeddingOp
from analyzers.ops.gates import MultiplyOp
from analyzers.ops.kernel import (
    AffineOp,
    ConvOp,
    ConvTransposeOp,
    DenseOp,
    DepthwiseConvOp,
    EinsumDenseOp,
    separable_ops,
)
from analyzers.ops.normalization import GroupNormOp, LayerNormOp
from analyzers.ops.pooling.layers import GlobalPoolOp, PoolOp
from analyzers.ops.recurrent.layers import BidirectionalOp, MaskingOp, RecurrentOp
from analyzers.ops.structural import (
    ActivationOp,
    AddOp,
    ConcatenateOp,
    IdentityOp,
    LayerCallOp,
    SoftmaxOp,
    TimeDistributedOp,
)
from analyzers.ops.traced import AttentionOp, TracedOp
from analyzers.rules import ConstantRule, GateRule, GradientRule, IdentityRule, Rule, ZRule

L = keras.layers

#: Marker rule of a layer with weights: the composite gives its rule.
WEIGHTS = "weights"


@dataclass(frozen=True)
class Support:
    """One registration.

    Parameters
    ----------
    op
        The op class (documentation and ``isinstance`` checks).
    classes
        The Keras layer classes it handles.
    build
        ``layer -> op`` or a list of ops (a chain), raising ``ValueError`` with the reason
        for a configuration it does not handle.
    rule
        ``(op, max_pooling) -> Rule``, or :data:`WEIGHTS` for a layer with weights.
    doc
        The entry in the supported-layers list (docs/analyzers.md).
    """

    op: type[LayerOp]
    classes: tuple[type, ...]
    build: Callable[[Any], LayerOp | list[LayerOp]]
    rule: Callable[[LayerOp, str], Rule] | str
    doc: str

    def __post_init__(self) -> None:
        if not (self.rule == WEIGHTS or callable(self.rule)):
            raise TypeError(f"registration of {self.op.__name__} has no default rule "
                            f"(got {self.rule!r}); give a rule or WEIGHTS")
        if not self.classes:
            raise TypeError(f"registration of {self.op.__name__} names no Keras class")

    def default_rule(self, op: LayerOp, max_pooling: str) -> Rule | None:
        """The rule for ``op`` (``None``: a weight layer, the composite's choice)."""
        return None if self.rule == WEIGHTS else self.rule(op, max_pooling)


REGISTRY: list[Support] = []


def register(op: type[LayerOp], classes: tuple[type, ...], rule: Any, doc: str,
             build: Callable[[Any], Any] | None = None) -> Support:
    """Add a registration (``build`` defaults to ``op(layer)``); a Keras class may be
    registered once only."""
    support = Support(op, tuple(classes), build or op, rule, doc)
    if any(s.op is op for s in REGISTRY):
        raise TypeError(f"op class {op.__name__} is registered already")
    taken = {cls for s in REGISTRY for cls in s.classes}
    twice = [cls.__name__ for cls in support.classes if cls in taken]
    if twice:
        raise TypeError(f"layer classes registered twice: {', '.join(twice)}")
    REGISTRY.append(support)
    return support


def _ranks(prefix: str, ranks: str = "123", suffix: str = "D") -> tuple[type, ...]:
    return tuple(getattr(L, f"{prefix}{r}{suffix}") for r in ranks)


def _check_relu(layer: Any) -> ActivationOp:
    if float(layer.threshold) != 0.0:
        raise ValueError("ReLU with threshold != 0")
    if float(layer.negative_slope) != 0.0:
        return ActivationOp(layer, "leaky_relu", fn=layer.call)
    if layer.max_value is None:  # a plain ReLU: the same op as activation="relu"
        return ActivationOp(layer, "relu")
    return ActivationOp(layer, "relu", fn=layer.call)  # clipped: passed by its derivative


def _build_conv(layer: Any) -> ConvOp:
    return ConvOp(layer)


def _build_depthwise(layer: Any) -> LayerOp | list[LayerOp]:
    if isinstance(layer, (L.SeparableConv1D, L.SeparableConv2D)):
        return separable_ops(layer)
    return DepthwiseConvOp(layer)


def _build_activation(layer: Any) -> ActivationOp:
    if isinstance(layer, L.ReLU):
        return _check_relu(layer)
    if isinstance(layer, L.LeakyReLU):
        return ActivationOp(layer, "leaky_relu", fn=layer.call)
    if isinstance(layer, L.ELU):
        return ActivationOp(layer, "elu", fn=layer.call)
    if isinstance(layer, L.Softmax):
        return ActivationOp(layer, "softmax")
    return ActivationOp(layer, layer.activation)


def _build_layer_norm(layer: Any) -> LayerNormOp:
    if getattr(layer, "rms_scaling", False):
        raise ValueError("LayerNormalization with rms_scaling")
    return LayerNormOp(layer)


def _build_time_distributed(layer: Any) -> TimeDistributedOp:
    """TimeDistributed around one layer (around a model: inlined by the graph builder,
    one TimeDistributed op per step of the model)."""
    inner = layer.layer
    if isinstance(inner, (L.TimeDistributed, keras.Model)):
        raise ValueError(f"TimeDistributed around {type(inner).__name__}")
    op = _build(inner)
    if isinstance(op, list) or isinstance(op, MultiplyOp):
        raise ValueError(f"TimeDistributed around {type(inner).__name__}")
    return TimeDistributedOp(layer, op)


def _max_pooling_rule(op: LayerOp, max_pooling: str) -> Rule:
    return GradientRule() if max_pooling == "winner_take_all" else ZRule()


def _pooling_rule(op: LayerOp, max_pooling: str) -> Rule:
    return _max_pooling_rule(op, max_pooling) if op.is_max else ZRule()


def _build_einsum_dense(layer: Any) -> EinsumDenseOp:
    if getattr(layer, "quantization_mode", None):
        raise ValueError(f"quantized EinsumDense ({layer.quantization_mode})")
    return EinsumDenseOp(layer)


#: The analyzers that explain attention, a softmax inside the model and custom layers.
ATTENTION_ANALYZERS = ("attnlrp", "cp_lrp")


def _attention_only(op: LayerOp, max_pooling: str) -> Rule:
    """The default rule of what only AttnLRP / CP-LRP explain: a refusal, naming them; but a
    traced layer whose output depends on no input value (a learned class token, position
    ids) is a constant under every analyzer."""
    if isinstance(op, TracedOp) and not any(op.plan(tracing.CP_LRP).relevant_inputs):
        return ConstantRule()
    if isinstance(op, SoftmaxOp):
        what = "a softmax inside the model: AttnLRP's softmax rule explains it"
    else:
        what = "explained through the operations its call runs, by AttnLRP / CP-LRP"
    raise UnsupportedLayerError(op.name, type(op.layer).__name__, supported_layer_names(),
                                what, working=ATTENTION_ANALYZERS + GRADIENT_FAMILY)


_gradient = lambda op, mp: GradientRule()  # noqa: E731
_identity = lambda op, mp: IdentityRule()  # noqa: E731
_ACTS = ", ".join(a for a in ELEMENTWISE)

register(DenseOp, (L.Dense,), WEIGHTS, "Dense")
register(ConvOp, _ranks("Conv"), WEIGHTS,
         "Conv1D/2D/3D (strides, dilations, `same`/`valid`/`causal`, any kernel shape, "
         "`groups`)", _build_conv)
register(DepthwiseConvOp, _ranks("DepthwiseConv", "12") + _ranks("SeparableConv", "12"),
         WEIGHTS, "DepthwiseConv1D/2D; SeparableConv1D/2D (a depthwise step, then a pointwise "
         "convolution)", _build_depthwise)
register(ConvTransposeOp, _ranks("Conv", suffix="DTranspose"), WEIGHTS,
         "Conv1D/2D/3DTranspose")
register(PoolOp, _ranks("MaxPooling") + _ranks("AveragePooling"), _pooling_rule,
         "Max/AveragePooling1D/2D/3D",
         lambda layer: PoolOp(layer, is_max=type(layer).__name__.startswith("Max")))
register(GlobalPoolOp, _ranks("GlobalMaxPooling") + _ranks("GlobalAveragePooling"),
         _pooling_rule, "GlobalMax/GlobalAveragePooling1D/2D/3D",
         lambda layer: GlobalPoolOp(layer, is_max=type(layer).__name__.startswith("GlobalMax")))
register(LayerCallOp, (L.Flatten, L.Reshape, L.Permute) + _ranks("ZeroPadding")
         + _ranks("Cropping") + _ranks("UpSampling"), _gradient,
         "Flatten, Reshape, Permute; ZeroPadding, Cropping, UpSampling 1D/2D/3D")
register(IdentityOp, (L.InputLayer, L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D,
                      L.SpatialDropout3D, L.GaussianNoise, L.GaussianDropout, L.AlphaDropout,
                      L.ActivityRegularization), _identity,
         "Dropout, SpatialDropout, GaussianNoise/GaussianDropout/AlphaDropout, "
         "ActivityRegularization; InputLayer")
register(ActivationOp, (L.Activation, L.ReLU, L.LeakyReLU, L.ELU, L.Softmax), _identity,
         f"Activation (`linear`, {_ACTS}; aliases swish, hard_swish: relevance passed "
         "unchanged; `sigmoid`/`hard_sigmoid` only as gates of Multiply; `softmax` last, "
         "or inside under `attnlrp` / `cp_lrp`), the same as `activation=` of Dense and "
         "convolutions; ReLU (`max_value`, `negative_slope`; not `threshold`), LeakyReLU, "
         "ELU; Softmax",
         _build_activation)
register(AddOp, (L.Add, L.Average), lambda op, mp: ZRule(), "Add, Average",
         lambda layer: AddOp(layer, mean=isinstance(layer, L.Average)))
register(ConcatenateOp, (L.Concatenate,), _gradient, "Concatenate")
register(MultiplyOp, (L.Multiply,), lambda op, mp: GateRule(),
         "Multiply of one tensor by gates (outputs of sigmoid / hard_sigmoid, directly or "
         "through Reshape / Flatten / Permute / UpSampling, broadcast): the gates are held "
         "constant, the other input gets all relevance")
register(AffineOp, (L.BatchNormalization,), WEIGHTS,
         "BatchNormalization (folded into the kernel layer before it, or after it where "
         "that layer has no zero padding; else an elementwise affine layer)")
register(LayerNormOp, (L.LayerNormalization,), WEIGHTS,
         "LayerNormalization (not `rms_scaling`; mean and std held constant; under `attnlrp` "
         "/ `cp_lrp` the std only)",
         _build_layer_norm)
register(GroupNormOp, (L.GroupNormalization,), WEIGHTS,
         "GroupNormalization (mean and std held constant)")
register(EinsumDenseOp, (L.EinsumDense,), WEIGHTS,
         "EinsumDense (any equation and `bias_axes`; not quantized)", _build_einsum_dense)
register(EmbeddingOp, (L.Embedding,), lambda op, mp: ConstantRule(),
         "Embedding (a lookup: its vectors are constants that keep the relevance they get, "
         "as a learned position table added to the tokens does)")
register(AttentionOp, (L.MultiHeadAttention,), _attention_only,
         "MultiHeadAttention (any heads, `attention_axes`, masks, biases; not "
         "`return_attention_scores`): analyzers `attnlrp` and `cp_lrp`, through the "
         "operations of its call")
register(TimeDistributedOp, (L.TimeDistributed,),
         lambda op, mp: op.inner.standard_rule(mp),
         "TimeDistributed (any of these, or a nested Sequential / Functional model: its steps "
         "run on the frames folded into the batch)",
         _build_time_distributed)
register(RecurrentOp, (L.LSTM, L.GRU, L.SimpleRNN) + _ranks("ConvLSTM") + (L.RNN,), WEIGHTS,
         "LSTM, GRU (`reset_after` either way), SimpleRNN, ConvLSTM1D/2D/3D, RNN around their "
         "cells (`return_sequences`, `go_backwards`, masks; a fixed number of timesteps): "
         "gates held constant, see [Recurrent models](recurrent-models.md)")
register(BidirectionalOp, (L.Bidirectional,), WEIGHTS,
         "Bidirectional around those (`merge_mode` concat, sum or ave)")
register(MaskingOp, (L.Masking,), _gradient,
         "Masking (masked timesteps get no relevance; recurrent layers read its mask)")

#: Custom layers (classes defined outside Keras, ``Lambda``) and ``keras.ops`` calls in a
#: functional model, explained through the operations their call runs: matched by
#: :func:`analyzers.ops.traced.explained_by_operations`, not by class (so not in REGISTRY).
CUSTOM = Support(TracedOp, (L.Layer,), TracedOp, _attention_only,
                 "custom layers (classes defined outside Keras, `Lambda`) and `keras.ops` calls "
                 "in a functional model: analyzers `attnlrp` and `cp_lrp`, through the "
                 "operations of their call, where every operation has a rule (one whose "
                 "output ignores its inputs' values, such as a learned class token: every "
                 "analyzer)")
#: A softmax that is not the model's output (made from an activation step by the graph).
SOFTMAX_INSIDE = Support(SoftmaxOp, (L.Softmax,), SoftmaxOp, _attention_only,
                         "a softmax inside the model (Softmax, Activation, or a layer's "
                         "activation): analyzers `attnlrp` and `cp_lrp`")

#: Every supported layer class (besides nested Functional / Sequential models).
SUPPORTED_LAYERS: tuple[type, ...] = tuple(cls for s in REGISTRY for cls in s.classes)


def supported_layer_names() -> list[str]:
    """Class names of the supported layers."""
    return sorted({cls.__name__ for cls in SUPPORTED_LAYERS})


def supported_layers() -> list[str]:
    """What the relevance analyzers support, one entry per registration (classes and the
    configurations handled): the list in docs/analyzers.md. The gradient family needs none
    of it. Class names only: :func:`supported_layer_names`."""
    return [s.doc for s in (*REGISTRY, CUSTOM, SOFTMAX_INSIDE)] + [
        "nested Functional and Sequential models"]


def supported_layers_markdown() -> str:
    """The list of supported layers in docs/analyzers.md, one bullet per registration."""
    return "\n".join(f"- {entry}" for entry in supported_layers())


def support_for(layer: Any) -> Support | None:
    """The registration handling ``layer`` (exact class first, then subclasses)."""
    for s in REGISTRY:
        if type(layer) in s.classes:
            return s
    for s in REGISTRY:
        if isinstance(layer, s.classes):
            return s
    return None


def _unsupported(layer: Any, reason: str = "") -> UnsupportedLayerError:
    if isinstance(layer, L.Lambda):
        reason = "it runs arbitrary Python code: only the gradient family can explain it"
    return UnsupportedLayerError(layer.name, type(layer).__name__, supported_layer_names(),
                                 reason)


def _build(layer: Any) -> LayerOp | list[LayerOp]:
    support = support_for(layer)
    if support is None:
        raise _unsupported(layer)
    built = support.build(layer)
    for op in built if isinstance(built, list) else [built]:
        op.support = support
    return built


def make_ops(layer: Any) -> list[LayerOp]:
    """The op chain of ``layer`` (one op, or several for SeparableConv); raise
    :class:`UnsupportedLayerError` if no registration handles it or its configuration."""
    try:
        built = _build(layer)
    except UnsupportedLayerError:
        raise
    except ValueError as err:  # e.g. an unsupported activation
        raise _unsupported(layer, str(err)) from err
    return built if isinstance(built, list) else [built]


def make_op(layer: Any) -> LayerOp:
    """The op of a single-op layer (see :func:`make_ops`)."""
    ops = make_ops(layer)
    if len(ops) != 1:
        raise ValueError(f"layer '{layer.name}' becomes {len(ops)} steps; use make_ops")
    return ops[0]


__all__ = ["CUSTOM", "REGISTRY", "SOFTMAX_INSIDE", "SUPPORTED_LAYERS", "Support", "WEIGHTS",
           "activation_name", "make_op", "make_ops", "register", "support_for",
           "supported_layer_names", "supported_layers", "supported_layers_markdown"]
