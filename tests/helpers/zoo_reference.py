"""Matrix-form relevance of a whole Sequential chain of single layers (the zoo's ``chain``
models), independent of the engine: every layer's affine map is read off the Keras layer
(:func:`analyzers_reference.dense_matrix`) and the rules are applied in numpy, in float64.

Layers by kind (a ``TimeDistributed`` layer by its inner layer's kind, with the matrix of
the wrapped layer):

* Dense / Conv / BatchNormalization: the analyzer's rule for that layer (:data:`RULES`); a
  BatchNormalization right after an unwrapped kernel layer with a linear activation is
  composed into it first (the engine folds it there, and so documents);
* max pooling (global too): winner-take-all, the first maximum in row-major order;
* average pooling (global too): in proportion to the inputs;
* Flatten / Reshape: relevance reshaped; activations, dropout, noise, a final softmax:
  relevance unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import analyzers_reference as ref
import keras
import numpy as np

L = keras.layers

#: ``(x, w, b, r) -> relevance`` of a kernel layer.
KernelRule = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]

_KERNEL = (L.Dense, L.Conv1D, L.Conv2D, L.Conv3D)
_PASS = (L.Activation, L.ReLU, L.LeakyReLU, L.ELU, L.Softmax, L.Dropout, L.SpatialDropout1D,
         L.SpatialDropout2D, L.SpatialDropout3D, L.GaussianNoise)
_MOVE = (L.Flatten, L.Reshape)
_MAX = {L.MaxPooling1D: L.AveragePooling1D, L.MaxPooling2D: L.AveragePooling2D,
        L.MaxPooling3D: L.AveragePooling3D, L.GlobalMaxPooling1D: L.GlobalAveragePooling1D,
        L.GlobalMaxPooling2D: L.GlobalAveragePooling2D,
        L.GlobalMaxPooling3D: L.GlobalAveragePooling3D}
_AVG = (L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D, L.GlobalAveragePooling1D,
        L.GlobalAveragePooling2D, L.GlobalAveragePooling3D)


def _z(bias: bool = True, eps: float = 1e-12) -> KernelRule:
    return lambda x, w, b, r: ref.rule_z(x, w, b, r, eps=eps, bias=bias)


def _ab(alpha: float, beta: float, bias: bool = True) -> KernelRule:
    return lambda x, w, b, r: ref.rule_alpha_beta(x, w, b, r, alpha, beta, bias=bias)


def _bounded(low: float, high: float) -> KernelRule:
    return lambda x, w, b, r: ref.rule_bounded(x, w, b, r, np.full_like(x, low),
                                               np.full_like(x, high))


_Z_PLUS: KernelRule = ref.rule_z_plus


def _preset(conv: KernelRule, flat_first: bool) -> Callable[[str, bool], KernelRule]:
    def rule(kind: str, first: bool) -> KernelRule:
        if first and flat_first:
            return ref.rule_flat
        return _z(bias=True, eps=0.1) if kind == "dense" else conv
    return rule


def _every(rule: KernelRule, first_rule: KernelRule | None = None
           ) -> Callable[[str, bool], KernelRule]:
    return lambda kind, first: first_rule if (first and first_rule is not None) else rule


#: Analyzer name (with the options the zoo tests give it) -> ``(kind, first) -> rule``.
RULES: dict[str, Callable[[str, bool], KernelRule]] = {
    "lrp": _every(_z()),
    "lrp.z": _every(_z()),
    "lrp.epsilon": _every(_z(eps=1e-9)),
    "lrp.z_plus": _every(_Z_PLUS),
    "lrp.z_plus_fast": _every(_Z_PLUS),
    "lrp.w_square": _every(ref.rule_w_square),
    "lrp.flat": _every(ref.rule_flat),
    "lrp.alpha_beta": _every(_ab(1.0, 0.0)),
    "lrp.alpha_1_beta_0": _every(_ab(1.0, 0.0)),
    "lrp.alpha_1_beta_0_IB": _every(_ab(1.0, 0.0, bias=False)),
    "lrp.alpha_2_beta_1": _every(_ab(2.0, 1.0)),
    "lrp.alpha_2_beta_1_IB": _every(_ab(2.0, 1.0, bias=False)),
    "deep_taylor": _every(_Z_PLUS),
    "lrp.sequential_preset_a": _preset(_ab(1.0, 0.0), flat_first=False),
    "lrp.sequential_preset_b": _preset(_ab(2.0, 1.0), flat_first=False),
    "lrp.sequential_preset_a_flat": _preset(_ab(1.0, 0.0), flat_first=True),
    "lrp.sequential_preset_b_flat": _preset(_ab(2.0, 1.0), flat_first=True),
    "lrp.sequential_preset_b_flat_until_idx": _preset(_ab(2.0, 1.0), flat_first=True),
}
#: The analyzers that explain ``max(0, logit)``.
RELU_OUTPUT = ("deep_taylor", "deep_taylor.bounded")


def rules_for(name: str, low: float, high: float) -> Callable[[str, bool], KernelRule] | None:
    """The kernel rules of analyzer ``name`` (``None``: no matrix form here)."""
    if name == "deep_taylor.bounded":
        return _every(_Z_PLUS, _bounded(low, high))
    return RULES.get(name)


def _inner(layer: Any) -> Any:
    return layer.layer if isinstance(layer, L.TimeDistributed) else layer


def _affine(layer: Any, in_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, tuple]:
    """``(W, b, out_shape)`` of a kernel layer without its activation."""
    inner = _inner(layer)
    saved = getattr(inner, "activation", None)
    if saved is not None:
        inner.activation = keras.activations.linear
    try:
        return ref.dense_matrix(layer, in_shape)
    finally:
        if saved is not None:
            inner.activation = saved


def _membership(layer: Any, in_shape: tuple[int, ...]) -> np.ndarray:
    """Window membership ``[n_in, n_out]`` of a max pooling (its averaging twin's pattern)."""
    inner = _inner(layer)
    twin = _MAX[type(inner)].from_config(
        {k: v for k, v in inner.get_config().items() if k not in ("name",)})
    if isinstance(layer, L.TimeDistributed):
        twin = L.TimeDistributed(twin)
    w, _, _ = ref.dense_matrix(twin, in_shape)
    return w > 0


class _Step:
    """One layer of the chain in matrix form."""

    def __init__(self, kind: str, layer: Any, in_shape: tuple[int, ...],
                 w: np.ndarray | None = None, b: np.ndarray | None = None) -> None:
        self.kind, self.layer, self.in_shape, self.w, self.b = kind, layer, in_shape, w, b

    def __repr__(self) -> str:
        return f"_Step({self.kind}, {self.layer.name})"


def _steps(model: keras.Model) -> list[_Step]:
    shape = tuple(model.inputs[0].shape[1:])
    steps: list[_Step] = []
    for layer in model.layers:
        inner = _inner(layer)
        out_shape = tuple(layer.compute_output_shape((None,) + shape)[1:])
        if isinstance(inner, _KERNEL + (L.BatchNormalization,)):
            w, b, _ = _affine(layer, shape)
            kind = "dense" if isinstance(inner, L.Dense) else "conv"
            prev = steps[-1] if steps else None
            if (isinstance(layer, L.BatchNormalization) and prev is not None
                    and prev.kind in ("dense", "conv")
                    and not isinstance(prev.layer, L.TimeDistributed)
                    and getattr(prev.layer, "activation", None) in (None,
                                                                    keras.activations.linear)):
                prev.w, prev.b = prev.w @ w, prev.b @ w + b  # folded, as the engine does
            else:
                steps.append(_Step(kind, layer, shape, w, b))
        elif type(inner) in _MAX:
            steps.append(_Step("max", layer, shape, _membership(layer, shape)))
        elif isinstance(inner, _AVG):
            w, _, _ = ref.dense_matrix(layer, shape)
            steps.append(_Step("avg", layer, shape, w > 0))
        elif isinstance(inner, _MOVE + _PASS):
            steps.append(_Step("pass", layer, shape))
        else:
            raise ValueError(f"no matrix form for layer {layer.name} ({type(layer).__name__})")
        shape = out_shape
    return steps


def _forward(model: keras.Model, steps: list[_Step], x: np.ndarray) -> tuple[list, np.ndarray]:
    """Per-step inputs (flat, float64) and the logits of one sample (a final softmax left
    out)."""
    inputs = []
    h = x.astype(np.float64).reshape(-1)
    for step in steps:
        inputs.append(h)
        if step.kind in ("dense", "conv"):
            z = h @ step.w + step.b
            act = getattr(_inner(step.layer), "activation", None)
            if step is steps[-1] or step.layer is model.layers[-1]:
                h = z  # the output layer: its softmax stripped
            else:
                shaped = z.astype(np.float32)[None]
                h = np.asarray(act(shaped) if act is not None else shaped,
                               np.float64).reshape(-1)
        elif isinstance(_inner(step.layer), (L.Softmax, L.Activation)) and \
                step is steps[-1]:
            pass  # a final softmax layer: stripped
        else:
            h = np.asarray(step.layer(h.astype(np.float32).reshape((1,) + step.in_shape)),
                           np.float64).reshape(-1)
    return inputs, h


def chain_relevance(model: keras.Model, name: str, x: np.ndarray, selection: np.ndarray,
                    low: float, high: float) -> np.ndarray:
    """Relevance of analyzer ``name`` for each sample of ``x`` (explaining output
    ``selection[i]``), in matrix form."""
    rules = rules_for(name, low, high)
    if rules is None:
        raise ValueError(f"no matrix form of analyzer {name!r}")
    steps = _steps(model)
    first = next(k for k, s in enumerate(steps) if s.kind in ("dense", "conv"))
    out = np.zeros(x.shape, np.float64)
    for n in range(len(x)):
        inputs, logits = _forward(model, steps, x[n])
        r = np.zeros_like(logits)
        target = logits[selection[n]]
        r[selection[n]] = max(target, 0.0) if name in RELU_OUTPUT else target
        for k in range(len(steps) - 1, -1, -1):
            step, h = steps[k], inputs[k]
            if step.kind in ("dense", "conv"):
                r = rules(step.kind, k == first)(h, step.w, step.b, r)
            elif step.kind == "max":
                r = ref.pool_winner_take_all(h, step.w, r)
            elif step.kind == "avg":
                r = ref.pool_proportional(h, step.w, r)
            r = r.reshape(-1)
        out[n] = r.reshape(x.shape[1:])
    return out
