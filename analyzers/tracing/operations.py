"""What each TensorFlow operation is to the relevance rules: the table behind
:mod:`analyzers.tracing.roles`, and :func:`register_operation` to extend it.

Every operation type has one :class:`Operation` entry with a ``kind``:

``constant``
    Its output does not depend on the values of its inputs (``Shape``, ``ZerosLike``).
``non_differentiable``
    Comparisons, ``ArgMax``, rounding, casts to integers: an input-dependent value that
    carries no relevance (a mask, an index).
``hold``
    ``StopGradient``: its input is held constant.
``statistic``
    ``Rsqrt``, ``Sqrt``, ``Reciprocal``: held constant where its input is a statistic (derived
    from a reduction such as ``Mean``: a normalising standard deviation or norm, AttnLRP's
    rule for LayerNormalization); elsewhere an elementwise nonlinearity.
``linear``
    Moves, copies, sums or pools values (``Reshape``, ``ConcatV2``, ``GatherV2``'s params,
    ``Mean``, ``AvgPool``; ``Max`` and ``MaxPool`` route to the winner): relevance by its
    gradient, which for a linear map is the z rule.
``affine``
    Elementwise and linear (``AddV2``, ``Sub``, ``BiasAdd``, ``Neg``, ``Cast``).
``scale``
    ``Mul``: linear in one signal times a constant or held factor; a product of two signals
    otherwise (an elementwise function where both are functions of one tensor, e.g. GELU's
    ``x * (1 + erf(x))``).
``divide``
    ``RealDiv``: linear in its numerator; an elementwise nonlinearity in its denominator.
``elementwise``
    An elementwise nonlinearity (``Tanh``, ``Erf``, ``Exp``, ``Maximum``, ``Pow``): the
    identity rule, applied to the whole elementwise function of one tensor it belongs to.
``contraction``
    ``MatMul``, ``BatchMatMulV2``, ``Einsum``, convolutions: with one signal operand a linear
    map (with a constant operand, a weight layer: the epsilon rule); with two, a bilinear
    product (each factor gets an equal share in AttnLRP).
``softmax``
    ``Softmax``: AttnLRP's rule ``R_in = x * (R - s * sum(R))``, which is its gradient times
    its input; under CP-LRP the attention weights are held constant.

``inputs`` names the input positions that can carry relevance (``None``: all);
``passthrough`` marks operations that only move values (attention weights are followed
through them); ``reduction`` marks reductions (what makes a ``statistic``).
"""

from __future__ import annotations

from dataclasses import dataclass

#: The kinds an operation can have (see the module docstring).
KINDS = ("constant", "non_differentiable", "hold", "statistic", "linear", "affine", "scale",
         "divide", "elementwise", "contraction", "softmax")


@dataclass(frozen=True)
class Operation:
    """What one TensorFlow operation type is to the rules (see the module docstring)."""

    kind: str
    inputs: tuple[int, ...] | None = None
    passthrough: bool = False
    reduction: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown operation kind {self.kind!r}; one of {', '.join(KINDS)}")


def _table() -> dict[str, Operation]:
    table: dict[str, Operation] = {}

    def add(kind: str, names: str, inputs: tuple[int, ...] | None = None,
            passthrough: bool = False, reduction: bool = False) -> None:
        for name in names.split():
            table[name] = Operation(kind, inputs, passthrough, reduction)

    add("constant", "Const Placeholder Shape ShapeN Size Rank ZerosLike OnesLike Range")
    add("non_differentiable",
        "Less LessEqual Greater GreaterEqual Equal NotEqual LogicalAnd LogicalOr LogicalNot "
        "ArgMax ArgMin Floor Ceil Round Rint Sign IsNan IsInf IsFinite FloorDiv FloorMod "
        "BroadcastArgs BroadcastGradientArgs")
    add("hold", "StopGradient PreventGradient")
    add("statistic", "Rsqrt Sqrt Reciprocal Inv")
    add("linear", "Reshape Transpose Squeeze ExpandDims Identity Snapshot IdentityN "
                  "EnsureShape CheckNumerics", (0,), passthrough=True)
    table["IdentityN"] = Operation("linear", None, passthrough=True)
    add("linear", "StridedSlice Slice GatherV2 Gather ResourceGather Tile BroadcastTo Pad "
                  "PadV2 MirrorPad ReverseV2 Roll Unpack SplitV DepthToSpace SpaceToDepth "
                  "ExtractImagePatches ExtractVolumePatches AvgPool AvgPool3D MaxPool "
                  "MaxPool3D MaxPoolV2 Cumsum MatrixBandPart ResizeNearestNeighbor "
                  "ResizeBilinear", (0,))
    add("linear", "Mean Sum Max Min", (0,), reduction=True)
    add("linear", "ConcatV2 Pack AddN")
    table["Split"] = Operation("linear", (1,))
    table["Fill"] = Operation("linear", (1,))
    table["Concat"] = Operation("linear", None)
    table["SelectV2"] = table["Select"] = Operation("linear", (1, 2))
    table["ScatterNd"] = Operation("linear", (1,))
    table["TensorScatterUpdate"] = Operation("linear", (0, 2))
    table["TensorScatterAdd"] = Operation("linear", (0, 2))
    add("affine", "AddV2 Add Sub BiasAdd Neg")
    table["Cast"] = Operation("affine", (0,), passthrough=True)
    add("scale", "Mul MulNoNan")
    add("divide", "RealDiv DivNoNan Div")
    add("elementwise", "Tanh Sigmoid Erf Erfc Exp Expm1 Log Log1p Softplus Softsign Relu Relu6 "
                       "Elu Selu LeakyRelu Square Abs Sin Cos Atan Sinh Cosh Asinh Maximum "
                       "Minimum Pow SquaredDifference ClipByValue")
    add("contraction", "MatMul BatchMatMul BatchMatMulV2 BatchMatMulV3 Einsum Conv2D Conv3D "
                       "DepthwiseConv2dNative")
    table["Conv2DBackpropInput"] = Operation("contraction", (1, 2))
    table["Conv3DBackpropInputV2"] = Operation("contraction", (1, 2))
    add("softmax", "Softmax")
    return table


_OPERATIONS = _table()

#: Roles :func:`register_operation` accepts, and the kind each one stands for.
_PUBLIC_ROLES = {"linear": "linear", "elementwise": "elementwise", "product": "contraction",
                 "hold": "hold", "constant": "constant"}


def operation(op_type: str) -> Operation | None:
    """The entry of ``op_type``, or ``None`` if it has no rule."""
    return _OPERATIONS.get(op_type)


def register_operation(op_type: str, role: str, inputs: tuple[int, ...] | None = None
                       ) -> None:
    """Give the TensorFlow operation type ``op_type`` a rule (or replace its rule).

    Parameters
    ----------
    op_type
        The operation's type as TensorFlow names it (``node.op`` of a GraphDef, e.g.
        ``"Cumprod"``), as the refusal message of an unsupported layer quotes it.
    role
        ``"linear"``: the operation is linear in the inputs ``inputs`` (relevance by its
        gradient, the z rule); ``"elementwise"``: an elementwise nonlinearity (the identity
        rule); ``"product"``: a product of its inputs (one input a signal: linear; several:
        each gets an equal share); ``"hold"``: its output is held constant (no relevance
        passes); ``"constant"``: its output does not depend on its inputs' values.
    inputs
        Input positions that carry relevance (``None``: all).
    """
    if role not in _PUBLIC_ROLES:
        raise ValueError(f"role must be one of {', '.join(map(repr, _PUBLIC_ROLES))}; "
                         f"got {role!r}")
    if not isinstance(op_type, str) or not op_type:
        raise ValueError(f"op_type must be a TensorFlow operation type name, got {op_type!r}")
    _OPERATIONS[op_type] = Operation(_PUBLIC_ROLES[role],
                                     None if inputs is None else tuple(int(i) for i in inputs))


def registered_operations() -> dict[str, str]:
    """Operation type -> kind, for every operation with a rule (a copy)."""
    return {name: entry.kind for name, entry in sorted(_OPERATIONS.items())}


__all__ = ["KINDS", "Operation", "operation", "register_operation", "registered_operations"]
