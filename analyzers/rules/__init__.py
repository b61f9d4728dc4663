"""Relevance rules: one small class per rule, one module per formula.

A rule maps ``(op, inputs, output relevance)`` to the relevance of each input:
``rule(op, xs, r, nonnegative=False) -> list[tensor]``. ``op`` is a
:class:`~analyzers.ops.base.LayerOp`; ``nonnegative=True`` tells a rule that every input is
known to be >= 0 (it may then skip the negative-input terms; the result is the same).

All rules use the gradient-as-relevance identity: for a linear map ``z = f(x)`` with
weights ``w``, ``sum_j w_ij s_j`` is the vector-Jacobian product of ``f`` at ``s``, so
``R_i = x_i * sum_j w_ij R_j / z_j`` is ``x * VJP(f, R / z)``. The rules are generic over
the layer's rank (Dense, Conv1D/2D/3D, transposed convolutions, pooling) because ``f`` is
the layer's own map evaluated with modified weights.

Denominators are stabilized by adding ``eps * sign(z)`` (``sign(0) = +1``), so there is
never a division by zero.

Modules: :mod:`~analyzers.rules.base` (:class:`Rule`, shared helpers),
:mod:`~analyzers.rules.epsilon` (epsilon, z), :mod:`~analyzers.rules.gamma` (gamma),
:mod:`~analyzers.rules.alpha_beta` (alpha-beta, z+, and iNNvestigate's alpha-beta X and literal
``x w+``),
:mod:`~analyzers.rules.bounded` (z^B), :mod:`~analyzers.rules.input_independent` (w^2, flat),
:mod:`~analyzers.rules.passing` (gradient, identity, gate, the whole layer's gradient),
:mod:`~analyzers.rules.recurrent` (a recurrent layer's loop walked backwards with the rules of
its cell's parts), :mod:`~analyzers.rules.softmax` (AttnLRP's softmax rule),
:mod:`~analyzers.rules.constant` (absorbing layers), :mod:`~analyzers.rules.traced` (the
operations of a layer's call: custom layers, attention). Fused fast paths that compute a
formula with fewer layer calls live in the private ``_fused`` module, behind one switch.
"""

from analyzers.rules.alpha_beta import AlphaBetaRule, AlphaBetaXRule, ZPlusFastRule, ZPlusRule
from analyzers.rules.base import Rule, stabilize
from analyzers.rules.bounded import BoundedRule
from analyzers.rules.constant import ConstantRule
from analyzers.rules.epsilon import EpsilonRule, ZRule
from analyzers.rules.gamma import GammaRule
from analyzers.rules.input_independent import FlatRule, WSquareRule
from analyzers.rules.passing import GateRule, GradientRule, IdentityRule, LayerGradientRule
from analyzers.rules.recurrent import RecurrentRule
from analyzers.rules.softmax import SoftmaxRule
from analyzers.rules.traced import TracedRule

__all__ = [
    "AlphaBetaRule", "AlphaBetaXRule", "BoundedRule", "ConstantRule", "EpsilonRule",
    "FlatRule", "GammaRule", "GateRule", "GradientRule", "IdentityRule", "LayerGradientRule",
    "RecurrentRule", "Rule", "SoftmaxRule", "TracedRule",
    "WSquareRule", "ZPlusFastRule", "ZPlusRule", "ZRule", "stabilize",
]
