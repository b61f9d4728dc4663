"""Flatten a Keras model (Functional, Sequential, nested) into a list of steps.

A :class:`Graph` is the engine's own, runnable form of a model: steps in execution order,
each an op with the integer ids of the tensors it reads and writes. Nested models are
inlined; a final softmax is stripped (the model is explained at its logits, like
iNNvestigate's ``model_wo_softmax``). Every unsupported layer is reported here, before
any computation, by :class:`~analyzers.errors.UnsupportedLayerError`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

import keras
import tensorflow as tf

from analyzers.compat import is_functional, nodes_by_depth
from analyzers.errors import UnsupportedLayerError
from analyzers.ops import LayerOp, make_ops, supported_layer_names
from analyzers.ops.activations import GATES
from analyzers.ops.gates import MultiplyOp
from analyzers.ops.structural import IdentityOp, LayerCallOp


@dataclass(frozen=True)
class Step:
    """One layer call: ``outputs = op(inputs)``, with tensor ids.

    ``input_nonnegative`` is True if every input is known to be >= 0 (a ReLU output, or
    pooled / reshaped / merged ReLU outputs); ``is_input_layer`` is True for a weight
    layer fed by the model input through weightless shape layers only.
    """

    op: LayerOp
    inputs: tuple[int, ...]
    output: int
    input_nonnegative: bool = False
    is_input_layer: bool = False


@dataclass
class Graph:
    """A model as steps. ``input_id``/``output_id`` name the model's input and output."""

    steps: list[Step]
    input_id: int
    output_id: int
    input_shape: tuple[Any, ...]
    n_outputs: int
    name: str = "model"
    notes: list[str] = field(default_factory=list)
    #: Keras layer name -> the tensor id(s) of its output, one per call (the model input
    #: under its input's name). Canonizers keep ids, so a layer whose output a rewrite
    #: removed (a convolution with its BatchNormalization folded in) names an id no step
    #: writes any more.
    layer_outputs: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def forward(self, x: tf.Tensor) -> tf.Tensor:
        """Run the graph (softmax stripped): the explained output (logits)."""
        return self.forward_all(x)[self.output_id]

    def forward_all(self, x: tf.Tensor) -> dict[int, tf.Tensor]:
        """Run the graph, returning every tensor by id."""
        values: dict[int, tf.Tensor] = {self.input_id: x}
        for step in self.steps:
            values[step.output] = step.op.forward([values[i] for i in step.inputs])
        return values

    def consumers(self) -> dict[int, list[int]]:
        """Tensor id -> indices of the steps that read it."""
        out: dict[int, list[int]] = {}
        for k, step in enumerate(self.steps):
            for i in step.inputs:
                out.setdefault(i, []).append(k)
        return out


class _Flattener:
    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.ids = itertools.count()
        self.layer_outputs: dict[str, list[int]] = {}

    def new_id(self) -> int:
        return next(self.ids)

    def record(self, layer: Any, output_ids: list[int]) -> list[int]:
        """Note ``output_ids`` as the output of ``layer`` (by name); returns them."""
        if len(output_ids) == 1:
            self.layer_outputs.setdefault(layer.name, []).append(output_ids[0])
        return output_ids

    def emit(self, layer: Any, input_ids: list[int]) -> list[int]:
        if isinstance(layer, keras.Model):
            return self.record(layer, self.inline(layer, input_ids))
        if not isinstance(layer, keras.layers.Layer):
            name = getattr(layer, "name", repr(layer))
            raise UnsupportedLayerError(name, type(layer).__name__, supported_layer_names(),
                                        "a backend operation, not a layer")
        if isinstance(layer, keras.layers.InputLayer):
            return list(input_ids)
        current = tuple(input_ids)
        for op in make_ops(layer):
            out = self.new_id()
            self.steps.append(Step(op, current, out))
            current = (out,)
        return self.record(layer, list(current))

    def inline(self, model: Any, input_ids: list[int]) -> list[int]:
        if isinstance(model, keras.Sequential):
            current = list(input_ids)
            for layer in model.layers:
                current = self.emit(layer, current)
            return current
        if not is_functional(model):
            raise UnsupportedLayerError(
                model.name, type(model).__name__, supported_layer_names(),
                "subclassed models cannot be traced; build it with the functional API",
            )
        inputs = list(model.inputs)
        if len(inputs) != len(input_ids):
            raise ValueError(f"model '{model.name}' expects {len(inputs)} inputs, "
                             f"got {len(input_ids)}")
        mapping = {id(t): i for t, i in zip(inputs, input_ids)}
        by_depth = nodes_by_depth(model)
        for depth in sorted(by_depth, reverse=True):
            for node in by_depth[depth]:
                if not node.operation or node.is_input:
                    continue
                in_ids = [mapping[id(t)] for t in node.input_tensors]
                out_ids = self.emit(node.operation, in_ids)
                if len(out_ids) != len(node.outputs):
                    raise UnsupportedLayerError(
                        node.operation.name, type(node.operation).__name__,
                        supported_layer_names(), "layers with several outputs")
                for t, o in zip(node.outputs, out_ids):
                    mapping[id(t)] = o
        return [mapping[id(t)] for t in model.outputs]


def _strip_softmax(steps: list[Step], output_id: int, notes: list[str]) -> list[Step]:
    """Drop a softmax that produces the model output (activation layer or fused)."""
    for k in range(len(steps) - 1, -1, -1):
        step = steps[k]
        if step.output != output_id:
            continue
        op = step.op
        if op.activation_name == "softmax":
            steps = list(steps)
            steps[k] = replace(step, op=op.without_activation())
            notes.append(f"softmax of layer '{op.name}' stripped: explaining the logits")
        elif isinstance(op, (IdentityOp, LayerCallOp)) and len(step.inputs) == 1:
            # look through e.g. a Flatten/Dropout after the softmax
            steps = _strip_softmax(steps[:k], step.inputs[0], notes) + steps[k:]
        break
    for step in steps:
        if step.op.activation_name == "softmax":
            raise UnsupportedLayerError(
                step.op.name, type(step.op.layer).__name__, supported_layer_names(),
                "softmax is only supported as the model's last activation")
    return steps


#: Ops a gate passes through unchanged in value (reshaping, identity layers).
_GATE_THROUGH = (LayerCallOp, IdentityOp)


def mark_gates(steps: list[Step]) -> None:
    """Decide which inputs of every ``Multiply`` are gates (outputs of a sigmoid /
    hard_sigmoid, directly or through reshaping layers) and set ``op.gate_inputs``.

    Raises :class:`UnsupportedLayerError` for a Multiply without exactly one non-gate
    input, and for a sigmoid / hard_sigmoid whose output reaches anything but gates.
    """
    origin: dict[int, Step] = {}  # gate tensor id -> the step applying the sigmoid
    for step in steps:
        if step.op.activation_name in GATES:
            origin[step.output] = step
        elif (isinstance(step.op, _GATE_THROUGH) and len(step.inputs) == 1
              and step.inputs[0] in origin):
            origin[step.output] = origin[step.inputs[0]]
    consumers: dict[int, list[Step]] = {}
    for step in steps:
        for i in step.inputs:
            consumers.setdefault(i, []).append(step)
    for step in steps:
        op = step.op
        if isinstance(op, MultiplyOp):
            flags = tuple(i in origin for i in step.inputs)
            if flags.count(False) != 1:
                what = "two or more non-gate tensors" if flags.count(False) > 1 else \
                    "gates only"
                raise UnsupportedLayerError(
                    op.name, type(op.layer).__name__, supported_layer_names(),
                    f"a Multiply of {what}: only a product of one tensor with gates "
                    "(outputs of sigmoid / hard_sigmoid) is explained")
            op.gate_inputs = flags
        if step.output in origin:
            for user in consumers.get(step.output, []):
                if not (isinstance(user.op, MultiplyOp) or user.output in origin):
                    source = origin[step.output].op
                    raise UnsupportedLayerError(
                        source.name, type(source.layer).__name__, supported_layer_names(),
                        f"activation '{source.activation_name}' is only supported as a "
                        f"gate (an input of Multiply); its output reaches "
                        f"'{user.op.name}'")


def annotate_steps(steps: list[Step], input_id: int) -> list[Step]:
    """Set ``input_nonnegative`` and ``is_input_layer`` on every step."""
    nonneg: dict[int, bool] = {input_id: False}
    from_input: dict[int, bool] = {input_id: True}  # reached through weightless ops only
    out = []
    for step in steps:
        ins_nonneg = all(nonneg.get(i, False) for i in step.inputs)
        ins_from_input = any(from_input.get(i, False) for i in step.inputs)
        op = step.op
        nonneg[step.output] = op.output_nonnegative or (op.preserves_nonnegative
                                                        and ins_nonneg)
        from_input[step.output] = ins_from_input and not op.has_weights and not op.mixes_inputs
        is_input_layer = ins_from_input and op.has_weights
        out.append(replace(step, input_nonnegative=ins_nonneg, is_input_layer=is_input_layer))
    return out


def build_graph(model: Any) -> Graph:
    """Flatten ``model`` into a :class:`Graph` (softmax stripped, steps annotated).

    Raises
    ------
    UnsupportedLayerError
        For any layer no rule handles (named, with its class and the supported list).
    ValueError
        If the model is not built or has several inputs or outputs.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"expected a keras.Model, got {type(model).__name__}")
    if not model.built:
        raise ValueError(f"model '{model.name}' is not built: call it on data or build it "
                         "with an input shape before creating an analyzer")
    try:
        inputs = model.inputs
        outputs = model.outputs
    except (AttributeError, ValueError) as err:
        raise ValueError(f"model '{model.name}' has no defined inputs/outputs "
                         f"({err}); build it with keras.Input") from err
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"analyzers explain models with one input and one output; "
                         f"'{model.name}' has {len(inputs)} inputs and {len(outputs)} outputs")
    flat = _Flattener()
    input_id = flat.new_id()
    (output_id,) = flat.inline(model, [input_id])
    notes: list[str] = []
    steps = _strip_softmax(flat.steps, output_id, notes)
    for step in steps:
        if step.op.activation_name in GATES and step.output == output_id:
            raise UnsupportedLayerError(
                step.op.name, type(step.op.layer).__name__, supported_layer_names(),
                f"activation '{step.op.activation_name}' is only supported as a gate "
                "(an input of Multiply), not as the model's output")
    mark_gates(steps)
    steps = annotate_steps(steps, input_id)
    out_shape = outputs[0].shape
    layer_outputs = {name: tuple(ids) for name, ids in flat.layer_outputs.items()}
    input_name = getattr(inputs[0], "name", None)
    if input_name and input_name not in layer_outputs:
        layer_outputs[input_name] = (input_id,)
    return Graph(steps=steps, input_id=input_id, output_id=output_id,
                 input_shape=tuple(inputs[0].shape), n_outputs=int(out_shape[-1]),
                 name=model.name, notes=notes, layer_outputs=layer_outputs)


__all__ = ["Graph", "Step", "annotate_steps", "build_graph", "mark_gates"]
